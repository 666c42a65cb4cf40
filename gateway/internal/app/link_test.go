package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"luthien.dev/controlplane/server"
	"luthien.dev/gateway/internal/config"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

const linkToken = "link-token-0123456789abcdef"

// serveControlPlane serves a control plane that wants token on a
// plaintext loopback port and returns its address.
func serveControlPlane(t *testing.T, token string) string {
	t.Helper()
	srv, err := server.New(server.Config{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := srv.NewGRPCServer()
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(func() {
		srv.Shutdown()
		gs.Stop()
		_ = srv.Close(context.Background())
	})
	return lis.Addr().String()
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestTokenOverPlaintextLoopback checks that the link's token credentials
// are sent over a plaintext connection (gRPC's own token credentials
// require TLS), and that a call's own authorization metadata (the admin's
// forwarded Authorization header) neither replaces nor joins the token.
func TestTokenOverPlaintextLoopback(t *testing.T) {
	addr := serveControlPlane(t, linkToken)
	for _, tt := range []struct {
		name  string
		token string
		want  codes.Code
	}{
		{"right token", linkToken, codes.OK},
		{"wrong token", linkToken + "x", codes.Unauthenticated},
		{"no token", "", codes.Unauthenticated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := linkOptions(config.Config{ControlPlane: addr, ControlPlaneToken: tt.token}, discard())
			if err != nil {
				t.Fatal(err)
			}
			conn, err := grpc.NewClient(addr, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			admin := cpv1.NewPolicyAdminServiceClient(conn)
			if _, err := admin.GetPolicy(ctx, &cpv1.GetPolicyRequest{}); status.Code(err) != tt.want {
				t.Fatalf("GetPolicy: %v, want %v", err, tt.want)
			}
			// As the REST handlers forward an admin's Authorization header.
			forwarded := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+linkToken)
			if _, err := admin.GetPolicy(forwarded, &cpv1.GetPolicyRequest{}); status.Code(err) != tt.want {
				t.Fatalf("GetPolicy with a forwarded authorization header: %v, want %v", err, tt.want)
			}
		})
	}
}

// TestReadyNeedsTheToken checks /ready of a gateway linked to a control
// plane that wants a token: ready with it, not ready with a wrong one
// (the end-to-end suite checks the client calls).
func TestReadyNeedsTheToken(t *testing.T) {
	addr := serveControlPlane(t, linkToken)
	for _, tt := range []struct {
		name  string
		token string
		ready int
	}{
		{"right token", linkToken, http.StatusOK},
		{"wrong token", "wrong-token-0123456789abcdef", http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(nil, func(k string) string {
				return map[string]string{"LUTHIEN_CONTROL_PLANE": addr, "LUTHIEN_CONTROL_PLANE_TOKEN": tt.token}[k]
			})
			if err != nil {
				t.Fatal(err)
			}
			a, err := New(t.Context(), cfg, discard())
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			rec := httptest.NewRecorder()
			a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
			if rec.Code != tt.ready {
				t.Errorf("/ready: %d %s, want %d", rec.Code, rec.Body, tt.ready)
			}
		})
	}
}

// TestInProcessToken checks that an in-process control plane checks a
// configured token, and that the gateway presents it.
func TestInProcessToken(t *testing.T) {
	cfg, err := config.Load(nil, func(k string) string {
		return map[string]string{"LUTHIEN_CONTROL_PLANE_TOKEN": linkToken}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(t.Context(), cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := cpv1.NewPolicyAdminServiceClient(a.conn).GetPolicy(ctx, &cpv1.GetPolicyRequest{}); err != nil {
		t.Fatalf("GetPolicy through the gateway's link: %v", err)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("/ready: %d %s", rec.Code, rec.Body)
	}
}
