package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"luthien.dev/gateway/internal/config"
)

// linkServiceConfig balances the calls to a standalone control plane over
// every address its name resolves to (a Kubernetes headless Service, say),
// one connection to each, instead of gRPC's default of sending them all
// to the first address that answers. gRPC resolves the name again when a
// connection closes, which the control plane makes happen every few
// minutes (server.NetworkOptions), so control planes added later get
// their share.
const linkServiceConfig = `{"loadBalancingConfig": [{"round_robin": {}}]}`

// linkKeepalive pings a standalone control plane after 30s without
// traffic, and drops the connection when a ping goes unanswered for 10s:
// a control plane that vanished without closing its connections (a node
// lost, a network partition) leaves the balancing in about 40s instead
// of failing calls until TCP gives up, and no firewall or NAT on the
// path drops an idle link unnoticed. It pings between calls too
// (PermitWithoutStream): an idle gateway must know its link is dead
// before the next call. The control plane accepts pings this often
// (server.MinPingInterval; a test checks).
var linkKeepalive = keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}

// linkOptions returns the dial options of the link to the control plane:
// its transport (TLS or plaintext), for a standalone control plane the
// balancing and keepalive above, and, with a token, the token on every
// call. Every call's own authorization metadata is dropped first: the
// REST handlers would otherwise forward the admin's Authorization header
// to the control plane.
func linkOptions(cfg config.Config, log *slog.Logger) ([]grpc.DialOption, error) {
	creds := insecure.NewCredentials()
	if cfg.ControlPlaneTLS {
		tlsCfg, err := clientTLS(cfg)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tlsCfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(dropAuthorization(ctx), method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(dropAuthorization(ctx), desc, cc, method, opts...)
		}),
	}
	if cfg.ControlPlane != config.InProcess {
		// A service config published in DNS (TXT records) is ignored: the
		// balancing is the gateway's.
		opts = append(opts, grpc.WithDefaultServiceConfig(linkServiceConfig), grpc.WithDisableServiceConfig(),
			grpc.WithKeepaliveParams(linkKeepalive))
	}
	if cfg.ControlPlaneToken != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken{token: cfg.ControlPlaneToken, secure: cfg.ControlPlaneTLS}))
		if !cfg.ControlPlaneTLS && cfg.ControlPlane != config.InProcess && !config.IsLoopback(config.ControlPlaneAddr(cfg.ControlPlane)) {
			log.Warn("the control plane token travels in clear to a non-loopback address: anyone on the path can read it; "+
				"serve the control plane with TLS and set LUTHIEN_CONTROL_PLANE_CA", "control_plane", cfg.ControlPlane)
		}
	}
	return opts, nil
}

// clientTLS returns the TLS configuration of the dial: the CAs that
// verify the control plane (the system's without one), the name to
// verify, and a client certificate for mutual TLS.
func clientTLS(cfg config.Config) (*tls.Config, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ControlPlaneServerName}
	if cfg.ControlPlaneCA != "" {
		pem, err := os.ReadFile(cfg.ControlPlaneCA)
		if err != nil {
			return nil, fmt.Errorf("control plane CA (LUTHIEN_CONTROL_PLANE_CA): %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("control plane CA (LUTHIEN_CONTROL_PLANE_CA): no PEM certificate in %s", cfg.ControlPlaneCA)
		}
		tlsCfg.RootCAs = pool
	}
	if cfg.ControlPlaneCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.ControlPlaneCert, cfg.ControlPlaneKey)
		if err != nil {
			return nil, fmt.Errorf("control plane client certificate (LUTHIEN_CONTROL_PLANE_CERT, _KEY): %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	return tlsCfg, nil
}

// bearerToken presents the control plane token on every call. Over TLS it
// requires transport security, so gRPC never sends it in clear; over a
// plaintext link (loopback, bufconn, or one the operator chose) it is sent
// as it is, which gRPC's own token credentials refuse to do.
type bearerToken struct {
	token  string
	secure bool
}

var _ credentials.PerRPCCredentials = bearerToken{}

// GetRequestMetadata returns the authorization metadata.
func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity reports whether the token needs TLS.
func (b bearerToken) RequireTransportSecurity() bool { return b.secure }

// dropAuthorization removes a call's own authorization metadata: the link
// token is the only credential the control plane gets.
func dropAuthorization(ctx context.Context) context.Context {
	md, ok := metadata.FromOutgoingContext(ctx)
	if !ok || len(md.Get("authorization")) == 0 {
		return ctx
	}
	md = md.Copy()
	delete(md, "authorization")
	return metadata.NewOutgoingContext(ctx, md)
}
