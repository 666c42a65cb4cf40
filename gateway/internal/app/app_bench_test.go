package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"luthien.dev/bench/fakeupstream"
	"luthien.dev/bench/floor"
	"luthien.dev/gateway/internal/config"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// BenchmarkNonStreamingCall measures one whole non-streamed call through
// the gateway with the in-process control plane and the noop policy:
// "parallel" with as many clients as GOMAXPROCS (CPU per call), "serial"
// one call at a time (latency per call, as nonstream-c1 of make bench),
// beside the benchmark's floor proxy one call at a time ("floor").
func BenchmarkNonStreamingCall(b *testing.B) {
	up := fakeupstream.New()
	defer up.Close()
	up.SetRecording(false)
	a := newBenchApp(b, map[string]string{"ANTHROPIC_BASE_URL": up.AnthropicBaseURL()})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	floorSrv := httptest.NewServer(floor.New(up.AnthropicBaseURL()))
	defer floorSrv.Close()
	body := `{"model":"claude-fake","max_tokens":64,"messages":[{"role":"user","content":"` + strings.Repeat("hello ", 100) + `"}]}`
	call := func(b *testing.B, base string) {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/messages", strings.NewReader(body))
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				call(b, srv.URL)
			}
		})
	})
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			call(b, srv.URL)
		}
	})
	b.Run("floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			call(b, floorSrv.URL)
		}
	})
}

// BenchmarkRequestPolicyRoundTrip measures one ApplyRequestPolicies call
// (noop policy) over the in-process bufconn connection, one at a time:
// what the request policy adds to every call's latency.
func BenchmarkRequestPolicyRoundTrip(b *testing.B) {
	a := newBenchApp(b, nil)
	client := cpv1.NewPolicyServiceClient(a.conn)
	req := &cpv1.ApplyRequestPoliciesRequest{CallId: "bench", Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES,
		Body: []byte(`{"model":"claude-fake","max_tokens":64,"messages":[{"role":"user","content":"` + strings.Repeat("hello ", 100) + `"}]}`)}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.ApplyRequestPolicies(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.GetContinue() == nil {
			b.Fatalf("outcome %v, want continue", resp.GetOutcome())
		}
	}
}

// newBenchApp starts a gateway with the in-process control plane, the
// given settings and quiet logs; it is closed when the benchmark ends.
func newBenchApp(b *testing.B, vars map[string]string) *App {
	b.Helper()
	cfg, err := config.Load(nil, func(k string) string {
		if k == "LUTHIEN_LOG_LEVEL" {
			return "error"
		}
		return vars[k]
	})
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Close)
	return a
}
