// Package server is the embeddable entry point of the control plane. It
// builds the policy services from a Config and serves them on a gRPC
// server: over the network in cmd/controlplane, or in-process (on an
// in-memory connection) inside the gateway. The contract is the same in
// both modes.
package server

import (
	"fmt"
	"log/slog"

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

// Config configures a Server.
type Config struct {
	// PolicyConfigPath is the policy configuration file (YAML, see
	// config/policies); empty runs the noop policy.
	PolicyConfigPath string
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// Server is the control plane: the policy services, the admin service and
// gRPC health, ready to be registered on a gRPC server.
type Server struct {
	logger   *slog.Logger
	policies *service.PolicyService
	admin    *service.AdminService
	health   *health.Server
}

// servedServices are the services whose health the server reports.
var servedServices = []string{
	cpv1.PolicyService_ServiceDesc.ServiceName,
	cpv1.PolicyAdminService_ServiceDesc.ServiceName,
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
	class, policyCfg := defaultPolicy, map[string]any{}
	if cfg.PolicyConfigPath != "" {
		class, policyCfg, err = policy.LoadFile(cfg.PolicyConfigPath)
		if err != nil {
			return nil, fmt.Errorf("new control plane: %w", err)
		}
	}
	store, err := service.NewStore(registry, logger, class, policyCfg)
	if err != nil {
		if cfg.PolicyConfigPath != "" {
			return nil, fmt.Errorf("new control plane: policy from %s: %w", cfg.PolicyConfigPath, err)
		}
		return nil, fmt.Errorf("new control plane: default policy: %w", err)
	}

	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, name := range servedServices {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	return &Server{
		logger:   logger,
		policies: service.NewPolicyService(store, logger),
		admin:    service.NewAdminService(store, registry),
		health:   hs,
	}, nil
}

// Register registers PolicyService, PolicyAdminService and gRPC health on
// r.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	cpv1.RegisterPolicyServiceServer(r, s.policies)
	cpv1.RegisterPolicyAdminServiceServer(r, s.admin)
	healthpb.RegisterHealthServer(r, s.health)
}

// NewGRPCServer returns a gRPC server with every interceptor chained
// (logging, then panic recovery), the services registered and server
// reflection enabled. opts are applied after the server's own options.
func (s *Server) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	base := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.ChainUnaryInterceptor(logUnary(s.logger), recoverUnary(s.logger)),
		grpc.ChainStreamInterceptor(logStream(s.logger), recoverStream(s.logger)),
	}
	gs := grpc.NewServer(append(base, opts...)...)
	s.Register(gs)
	reflection.Register(gs)
	return gs
}

// Shutdown reports every service NOT_SERVING, so that health checks fail
// before the server stops.
func (s *Server) Shutdown() {
	s.health.Shutdown()
}
