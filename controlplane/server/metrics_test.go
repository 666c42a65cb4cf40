package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// startWith serves a Server of cfg (with a test logger) through the real
// gRPC stack on bufconn.
func startWith(t *testing.T, cfg Config) *testServer {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	lis := bufconn.Listen(1 << 20)
	gs := srv.NewGRPCServer()
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testServer{srv: srv, policy: cpv1.NewPolicyServiceClient(conn), admin: cpv1.NewPolicyAdminServiceClient(conn), conn: conn}
}

// requestFor is a request for the policy service.
func requestFor(t *testing.T) *cpv1.ApplyRequestPoliciesRequest {
	t.Helper()
	return &cpv1.ApplyRequestPoliciesRequest{CallId: "call-" + t.Name(), Format: anthropic,
		Body: []byte(`{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)}
}

// injectTraceContext puts ctx's span into the call's metadata, as a
// traced client does.
func injectTraceContext(ctx context.Context) context.Context {
	carrier := propagation.MapCarrier{}
	Propagator().Inject(ctx, carrier)
	return metadata.AppendToOutgoingContext(ctx, "traceparent", carrier.Get("traceparent"))
}

// gathered adds up the values (the counts of histograms) of the series of
// name in reg whose labels include want.
func gathered(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			total += value(m)
		}
	}
	return total
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

// Live policy calls count their decisions by class, phase and outcome and
// time the policy by phase; the gRPC server counts every call by method
// and code, refused ones included.
func TestServerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts := startWith(t, Config{PolicyConfigPath: allCapsConfig, Metrics: reg})
	ctx := testContext(t)
	req, err := ts.policy.ApplyRequestPolicies(ctx, requestFor(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"quiet", "LOUD"} {
		if _, err := ts.policy.ApplyResponsePolicy(ctx, &cpv1.ApplyResponsePolicyRequest{CallId: "c", Format: anthropic,
			PolicyRevision: req.GetPolicyRevision(), Response: &cpv1.Message{Content: []*cpv1.ContentBlock{textBlock(text)}}}); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := ts.policy.StreamChunkPolicy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []*cpv1.StreamChunkPolicyRequest{startMsg(req.GetPolicyRevision())}
	for _, ev := range streamEvents() {
		msgs = append(msgs, eventMsg(ev))
	}
	for _, m := range append(msgs, endMsg()) {
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	_ = stream.CloseSend()
	for {
		if _, err := stream.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.policy.ApplyRequestPolicies(ctx, &cpv1.ApplyRequestPoliciesRequest{Format: anthropic}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("call without an id: %v, want InvalidArgument", err)
	}

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"luthien_policy_decisions_total", map[string]string{"class": "all_caps", "phase": "request", "outcome": "continue"}, 1},
		{"luthien_policy_decisions_total", map[string]string{"class": "all_caps", "phase": "response", "outcome": "modify"}, 1},
		{"luthien_policy_decisions_total", map[string]string{"class": "all_caps", "phase": "response", "outcome": "pass"}, 1},
		{"luthien_policy_decisions_total", map[string]string{"class": "all_caps", "phase": "stream", "outcome": "modify"}, 1},
		{"luthien_policy_decisions_total", nil, 4}, // the refused call decided nothing
		{"luthien_policy_duration_seconds", map[string]string{"class": "all_caps", "phase": "request"}, 1},
		{"luthien_policy_duration_seconds", map[string]string{"class": "all_caps", "phase": "response"}, 2},
		{"luthien_policy_duration_seconds", map[string]string{"class": "all_caps", "phase": "stream_event"}, float64(len(streamEvents()))},
		{"luthien_policy_duration_seconds", map[string]string{"class": "all_caps", "phase": "stream_end"}, 1},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "ApplyRequestPolicies", "grpc_code": "OK"}, 1},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "ApplyRequestPolicies", "grpc_code": "InvalidArgument"}, 1},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "StreamChunkPolicy", "grpc_code": "OK"}, 1},
		{"grpc_server_handling_seconds", map[string]string{"grpc_method": "ApplyResponsePolicy"}, 2},
		{"luthien_store_queue_depth", nil, 0},
		{"luthien_cache_lookups_total", map[string]string{"result": "hit"}, 0},
	} {
		if got := gathered(t, reg, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	// Every collector is there, with or without samples yet.
	fams, _ := reg.Gather()
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	for _, name := range []string{"luthien_store_events_written_total", "luthien_store_events_dropped_total", "luthien_store_write_errors_total",
		"luthien_store_queue_bytes", "luthien_activity_events_dropped_total", "luthien_activity_publish_dropped_total"} {
		if !names[name] {
			t.Errorf("no %s", name)
		}
	}
}

// A registerer takes one server's metrics: a second server on it is an
// error, not a panic.
func TestServerMetricsRegisterOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	startWith(t, Config{Metrics: reg})
	if srv, err := New(Config{Metrics: reg}); err == nil {
		_ = srv.Close(context.Background())
		t.Fatal("a second server registered on the same registry")
	}
}
