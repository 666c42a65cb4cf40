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

// BenchmarkCallRoundTrip measures one call's stream to the in-process
// control plane (noop policy) over bufconn, one at a time, as the gateway
// runs it when it has to wait for the decision: open, start, decision,
// end with a small record, close, done. With the noop policy and no
// cache the gateway does not wait for the decision (the processing
// watch): upstream is called at once, and this is work beside the
// latency path.
func BenchmarkCallRoundTrip(b *testing.B) {
	a := newBenchApp(b, nil)
	client := cpv1.NewCallServiceClient(a.conn)
	start := &cpv1.CallRequest{Msg: &cpv1.CallRequest_Start{Start: &cpv1.CallStart{CallId: "bench",
		Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES,
		Body:   []byte(`{"model":"claude-fake","max_tokens":64,"messages":[{"role":"user","content":"` + strings.Repeat("hello ", 100) + `"}]}`)}}}
	end := &cpv1.CallRequest{Msg: &cpv1.CallRequest_End{End: &cpv1.CallEnd{HttpStatus: 200,
		Record: &cpv1.CallRecord{Summary: &cpv1.CallSummary{Status: 200}}}}}
	b.ReportAllocs()
	for b.Loop() {
		stream, err := client.Call(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if err := stream.Send(start); err != nil {
			b.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil || resp.GetDecision().GetContinue() == nil {
			b.Fatalf("decision %v, %v; want continue", resp, err)
		}
		if err := stream.Send(end); err != nil {
			b.Fatal(err)
		}
		_ = stream.CloseSend()
		if resp, err := stream.Recv(); err != nil || resp.GetDone() == nil {
			b.Fatalf("got %v, %v; want done", resp, err)
		}
		if _, err := stream.Recv(); err != io.EOF {
			b.Fatalf("after done: %v", err)
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
