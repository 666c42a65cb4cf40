package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// classBuilder builds the policy registered under a class; any other
// class is invalid.
type classBuilder map[string]policy.Policy

func (b classBuilder) Resolve(class string, cfg map[string]any) (string, map[string]any, error) {
	return class, cfg, nil
}

func (b classBuilder) Build(class string, _ map[string]any) (policy.Policy, error) {
	p, ok := b[class]
	if !ok {
		return nil, fmt.Errorf("unknown policy class %q", class)
	}
	return p, nil
}

// serveAdmin serves an AdminService over a store running the policy of
// class "active" from builder, on bufconn, and returns a client and the
// store.
func serveAdmin(t *testing.T, builder Builder) (cpv1.PolicyAdminServiceClient, *Revisions) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := NewRevisions(builder, logger, "active", nil, "startup")
	if err != nil {
		t.Fatalf("NewRevisions: %v", err)
	}
	return serveAdminService(t, NewAdminService(store, nil, nil, nil)), store
}

// serveAdminService serves admin on bufconn and returns a client.
func serveAdminService(t *testing.T, admin *AdminService) cpv1.PolicyAdminServiceClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(8 << 20))
	cpv1.RegisterPolicyAdminServiceServer(gs, admin)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(8<<20)))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return cpv1.NewPolicyAdminServiceClient(conn)
}
