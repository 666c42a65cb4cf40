// Package server is the embeddable entry point of the control plane. It
// builds the policy services from a Config and serves them on a gRPC
// server: over the network in cmd/controlplane, or in-process (on an
// in-memory connection) inside the gateway. The contract is the same in
// both modes.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"luthien.dev/controlplane/internal/policy"
	"luthien.dev/controlplane/internal/service"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// maxRecvMsgSize bounds a message the server accepts. Requests carry whole
// LLM request bodies (long conversations, images), far beyond gRPC's
// 4 MiB default.
const maxRecvMsgSize = 64 << 20

// defaultPolicy is the policy class run when no configuration file is
// given.
const defaultPolicy = "noop"

// startupActor is the changed_by of the default policy a control plane
// starts with; a policy from a file has the file's path.
const startupActor = "startup"

// Config configures a Server.
type Config struct {
	// PolicyConfigPath is the policy configuration file (YAML, see
	// config/policies); empty runs the noop policy.
	PolicyConfigPath string
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Recorder, when set, also receives the policy events of every call
	// (decisions, bypasses, judge verdicts), which are always stored and
	// published to the activity feed.
	Recorder policy.Recorder
	// DatabaseURL, when set, is the PostgreSQL database (migrated at
	// start) that stores the record of every call and keeps the active
	// policy across restarts (its row wins over PolicyConfigPath, which
	// only seeds an empty database) and, without RedisURL, carries policy
	// changes to the other replicas (LISTEN/NOTIFY). Empty: a bounded
	// in-memory store answers the history queries.
	DatabaseURL string
	// RedisURL, when set, carries the activity feed between every gateway
	// and control plane sharing it, holds the response cache, and carries
	// policy changes to the other replicas (pub/sub on the channel
	// RedisPrefix+"policy").
	// Empty: in-process feed and cache.
	RedisURL string
	// RedisPrefix prefixes the Redis keys and channels of the activity
	// feed and the response cache; empty is DefaultRedisPrefix.
	RedisPrefix string
	// RetentionDays purges calls older than this many days (hourly, in
	// batches); 0 keeps them forever.
	RetentionDays int
	// CacheTTL is how long a cached response is served; 0 disables the
	// response cache (DefaultCacheTTL is the usual value).
	CacheTTL time.Duration
	// CacheMode says which requests are cacheable: "temperature0" (the
	// default when empty: requests with temperature 0), "all" or "off".
	CacheMode string
	// QueueCapacity bounds the store's write queue, in events; 0 is
	// DefaultQueueCapacity. Events beyond it are dropped and counted.
	QueueCapacity int
	// Token, when set, is the shared secret every call must present as
	// `authorization: Bearer <token>` metadata; others are
	// UNAUTHENTICATED. gRPC health answers callers that present no token;
	// server reflection needs it like every service. Empty: every caller is
	// accepted (the in-process control plane, reachable only through its
	// gateway, needs none). The check depends on this setting alone, not on
	// how the server is reached.
	Token string
	// Metrics, when set, receives the control plane's metrics: policy
	// decisions and latency, the write queue, the response cache, the
	// activity feed and the gRPC server's calls (README, "Metrics and
	// tracing"). A registerer takes one server's metrics only.
	Metrics prometheus.Registerer
	// TracerProvider, when set, traces every gRPC call but health checks,
	// joining the caller's trace (W3C trace context in the metadata).
	TracerProvider trace.TracerProvider
}

// Server is the control plane: the policy services, the admin service and
// gRPC health, ready to be registered on a gRPC server.
type Server struct {
	logger    *slog.Logger
	auth      *tokenAuth
	policies  *service.PolicyService
	calls     *service.CallService
	admin     *service.AdminService
	activity  *service.ActivityService
	history   *service.HistoryService
	health    *health.Server
	recording *recording
	conns     *connections
	telemetry telemetry
	closeOnce sync.Once
	closeErr  error
	// stopReplica stops listening for policy changes and closes the
	// database and Redis connections.
	stopReplica func()
}

// servedServices are the services whose health the server reports.
var servedServices = []string{
	cpv1.PolicyService_ServiceDesc.ServiceName,
	cpv1.CallService_ServiceDesc.ServiceName,
	cpv1.PolicyAdminService_ServiceDesc.ServiceName,
	cpv1.ActivityService_ServiceDesc.ServiceName,
	cpv1.HistoryService_ServiceDesc.ServiceName,
}

// New loads and builds the initial policy and returns a Server. An
// invalid policy configuration is an error.
func New(cfg Config) (*Server, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	registry, err := policy.Builtin()
	if err != nil {
		return nil, fmt.Errorf("new control plane: %w", err)
	}
	class, policyCfg, origin := defaultPolicy, map[string]any{}, startupActor
	if cfg.PolicyConfigPath != "" {
		class, policyCfg, err = policy.LoadFile(cfg.PolicyConfigPath)
		if err != nil {
			return nil, fmt.Errorf("new control plane: %w", err)
		}
		origin = cfg.PolicyConfigPath
	}
	store, err := service.NewRevisions(registry, logger, class, policyCfg, origin)
	if err != nil {
		if cfg.PolicyConfigPath != "" {
			return nil, fmt.Errorf("new control plane: policy from %s: %w", cfg.PolicyConfigPath, err)
		}
		return nil, fmt.Errorf("new control plane: default policy: %w", err)
	}

	conns, err := connect(cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("new control plane: %w", err)
	}
	rep, stopReplica, err := startReplica(cfg, conns, store, logger)
	if err != nil {
		conns.close()
		return nil, fmt.Errorf("new control plane: %w", err)
	}
	rec, err := newRecording(cfg, conns, logger)
	if err != nil {
		stopReplica()
		conns.close()
		return nil, fmt.Errorf("new control plane: %w", err)
	}
	recorder := service.NewEventRecorder(rec.queue, rec.hub, cfg.Recorder)
	responses := service.NewResponseCache(rec.cache, recorder, logger)
	var publisher service.Publisher
	if rep != nil {
		publisher = rep
	}
	var policyHistory service.PolicyHistory // nil: the store's, in memory
	if conns.pool != nil {
		policyHistory = rep
	}

	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, name := range servedServices {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	policies := service.NewPolicyService(store, logger, recorder)
	s := &Server{
		logger:      logger,
		auth:        newTokenAuth(cfg.Token),
		policies:    policies,
		calls:       service.NewCallService(policies, responses, rec.queue, rec.hub, rec.stopping),
		admin:       service.NewAdminService(store, registry, publisher, policyHistory),
		activity:    service.NewActivityService(rec.hub, rec.stopping),
		history:     service.NewHistoryService(rec.history, service.Counters{Queue: rec.queue, Cache: rec.cache, Activity: rec.hub}, logger),
		health:      hs,
		stopReplica: stopReplica,
		recording:   rec,
		conns:       conns,
	}
	if err := s.instrument(cfg, registry); err != nil {
		_ = s.Close(context.Background()) // nothing is queued yet
		return nil, fmt.Errorf("new control plane: %w", err)
	}
	return s, nil
}

// Register registers every service of the control plane (policy, call,
// policy admin, activity, history) and gRPC health on r.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	cpv1.RegisterPolicyServiceServer(r, s.policies)
	cpv1.RegisterCallServiceServer(r, s.calls)
	cpv1.RegisterPolicyAdminServiceServer(r, s.admin)
	cpv1.RegisterActivityServiceServer(r, s.activity)
	cpv1.RegisterHistoryServiceServer(r, s.history)
	healthpb.RegisterHealthServer(r, s.health)
}

// NewGRPCServer returns a gRPC server with every interceptor chained
// (metrics with Config.Metrics, logging, panic recovery, then the token
// check when Config.Token is set), tracing with Config.TracerProvider,
// the services registered and server reflection enabled. opts are
// applied after the server's own options (transport credentials among
// them: TLS is the listener's business, see cmd/controlplane).
func (s *Server) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	unary := []grpc.UnaryServerInterceptor{logUnary(s.logger), recoverUnary(s.logger)}
	stream := []grpc.StreamServerInterceptor{logStream(s.logger), recoverStream(s.logger)}
	if s.auth != nil {
		unary, stream = append(unary, authUnary(s.auth)), append(stream, authStream(s.auth))
	}
	unary, stream = s.telemetry.interceptors(unary, stream)
	base := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		// A pool of goroutines serves the calls: a call costs a hand-off
		// instead of a new goroutine and its stack growth.
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
	}
	base = append(base, s.telemetry.serverOptions()...)
	gs := grpc.NewServer(append(base, opts...)...)
	s.Register(gs)
	reflection.Register(gs)
	return gs
}

// Shutdown reports every service NOT_SERVING, so that health checks fail
// before the server stops, stops following policy changes and ends the
// activity streams (so that a graceful stop does not wait for them). Call
// Close after the gRPC server stopped.
func (s *Server) Shutdown() {
	s.health.Shutdown()
	s.stopReplica()
	s.recording.shutdown()
}

// Close shuts the server down (see Shutdown) if it was not, writes the
// queued records until ctx ends, then closes the database pool and the
// Redis client. It returns an error when records were left unwritten.
// Only the first call does anything.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.Shutdown()
		s.closeErr = s.recording.close(ctx)
		s.conns.close()
	})
	return s.closeErr
}
