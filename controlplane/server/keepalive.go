package server

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// The connection lifetime of a control plane served over the network.
// Gateways balance calls over every control plane their target resolves
// to, but only when they connect: a connection that lived for ever would
// keep a control plane added later (a scaled-up Deployment behind a
// headless Service) without calls. Closing each connection after
// maxConnectionAge (gRPC adds ±10% jitter, so gateways do not reconnect
// in step) makes the gateways resolve the name again and spread their
// calls over the control planes there are now. The closing connection
// takes no new calls, but the calls on it have maxConnectionAgeGrace to
// finish: a stream policy call lasts as long as the model's streamed
// response, which the gateway bounds only by silence (its upstream idle
// timeout), not by length, so the grace is generous. An activity feed
// still open on the connection then ends, and the browser reconnects.
const (
	maxConnectionAge      = 5 * time.Minute
	maxConnectionAgeGrace = time.Hour
)

// MinPingInterval is the shortest keepalive interval the control plane
// accepts from a gateway: a client that pings more often gets a GOAWAY
// ("too_many_pings") and loses its connection. Gateways ping an idle
// link every 30s, so this leaves room for timer slack.
const MinPingInterval = 15 * time.Second

// KeepaliveEnforcement returns the keepalive policy the control plane
// enforces on its clients: pings no more often than MinPingInterval, on
// idle connections as well (a gateway between calls has no stream open,
// yet must find out that its connection is dead before the next call).
func KeepaliveEnforcement() keepalive.EnforcementPolicy {
	return keepalive.EnforcementPolicy{MinTime: MinPingInterval, PermitWithoutStream: true}
}

// NetworkOptions returns the server options of a control plane served
// over the network (cmd/controlplane; pass them to NewGRPCServer): the
// connection lifetime above and the keepalive policy. An in-process
// control plane has one bufconn connection and no use for them.
func NetworkOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionAge:      maxConnectionAge,
			MaxConnectionAgeGrace: maxConnectionAgeGrace,
		}),
		grpc.KeepaliveEnforcementPolicy(KeepaliveEnforcement()),
	}
}
