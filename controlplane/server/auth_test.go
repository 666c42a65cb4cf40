package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"luthien.dev/controlplane/internal/calltest"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

const linkToken = "link-token-0123456789abcdef"

// startWithToken serves a Server whose calls need token on bufconn and
// returns a raw connection that presents no credentials of its own.
func startWithToken(t *testing.T, token string) *grpc.ClientConn {
	t.Helper()
	srv, err := New(Config{Token: token, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	lis := bufconn.Listen(1 << 20)
	gs := srv.NewGRPCServer()
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(func() {
		srv.Shutdown()
		gs.Stop()
		_ = srv.Close(context.Background())
	})
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// linkCalls are one call of each kind, returning the call's error: unary
// admin and policy calls, a call of the gateway (a bidirectional stream
// carrying its record), a server stream, server reflection (another
// bidirectional stream) and health.
var linkCalls = []struct {
	name string
	call func(ctx context.Context, conn *grpc.ClientConn) error
}{
	{"SetPolicy", func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := cpv1.NewPolicyAdminServiceClient(conn).SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "all_caps"}})
		return err
	}},
	{"Call", func(ctx context.Context, conn *grpc.ClientConn) error {
		// A whole call, its record in end: refused at start, or done.
		_, err := calltest.Run(ctx, conn, calltest.Call{
			Start:  &cpv1.CallStart{CallId: "c1", Format: anthropic, Body: []byte(`{"model":"m","messages":[]}`)},
			Record: &cpv1.CallRecord{Summary: &cpv1.CallSummary{Status: 200}},
		})
		return err
	}},
	{"ApplyRequestPolicies", func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := cpv1.NewPolicyServiceClient(conn).ApplyRequestPolicies(ctx, &cpv1.ApplyRequestPoliciesRequest{
			CallId: "c1", Format: anthropic, Body: []byte(`{"model":"m","messages":[]}`)})
		return err
	}},
	{"StreamActivity", func(ctx context.Context, conn *grpc.ClientConn) error {
		// An accepted stream waits for events: it is still open when the
		// wait ends. A refused one ends at once.
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		st, err := cpv1.NewActivityServiceClient(conn).StreamActivity(ctx, &cpv1.StreamActivityRequest{})
		if err != nil {
			return err
		}
		if _, err = st.Recv(); status.Code(err) == codes.DeadlineExceeded {
			return nil
		}
		return err
	}},
	{"ServerReflectionInfo", func(ctx context.Context, conn *grpc.ClientConn) error {
		st, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			return err
		}
		// io.EOF: the server ended the call; Recv says how.
		if err := st.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		_, err = st.Recv()
		return err
	}},
	{"Health", func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return status.Error(codes.Unavailable, resp.GetStatus().String())
		}
		return err
	}},
}

// TestTokenAuth checks that a control plane with a token refuses every
// call without it, server reflection included, answers health checks
// that present no token, and refuses a wrong token everywhere.
func TestTokenAuth(t *testing.T) {
	conn := startWithToken(t, linkToken)
	for _, tt := range []struct {
		name  string
		md    []string
		want  codes.Code
		probe codes.Code // what health answers
	}{
		{name: "no token", want: codes.Unauthenticated, probe: codes.OK},
		{name: "wrong token", md: []string{"authorization", "Bearer " + linkToken + "x"}, want: codes.Unauthenticated, probe: codes.Unauthenticated},
		{name: "token without the bearer scheme", md: []string{"authorization", linkToken}, want: codes.Unauthenticated, probe: codes.Unauthenticated},
		{name: "right token", md: []string{"authorization", "Bearer " + linkToken}, want: codes.OK, probe: codes.OK},
		{name: "scheme in other case", md: []string{"authorization", "bearer " + linkToken}, want: codes.OK, probe: codes.OK},
		{name: "right token among others", md: []string{"authorization", "Basic abc", "authorization", "Bearer " + linkToken}, want: codes.OK, probe: codes.OK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range linkCalls {
				ctx := testContext(t)
				if len(tt.md) > 0 {
					ctx = metadata.AppendToOutgoingContext(ctx, tt.md...)
				}
				want := tt.want
				if c.name == "Health" {
					want = tt.probe
				}
				if got := status.Code(c.call(ctx, conn)); got != want {
					t.Errorf("%s: %v, want %v", c.name, got, want)
				}
			}
		})
	}
}

// TestNoTokenAcceptsEveryone checks that a control plane without a token
// (the in-process one) needs no credentials.
func TestNoTokenAcceptsEveryone(t *testing.T) {
	conn := startWithToken(t, "")
	for _, c := range linkCalls {
		if err := c.call(testContext(t), conn); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
