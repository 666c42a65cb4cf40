package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// watchGateway starts a gateway over pol that follows pol's processing
// modes, and waits for the first.
func watchGateway(t *testing.T, pol *passPolicy, upstream http.Handler) *testGateway {
	t.Helper()
	g := startGateway(t, Config{}, pol, upstream)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.p.WatchProcessing(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for g.p.processing.mode.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("no processing mode arrived")
		}
		time.Sleep(time.Millisecond)
	}
	return g
}

// okUpstream answers every request with a small message, counting them.
func okUpstream(n *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/v1/chat") {
			_, _ = io.WriteString(w, `{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}]}`)
			return
		}
		_, _ = io.WriteString(w, `{"id":"m","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}`)
	})
}

// With a policy that has no request hook and no cache, the request goes
// upstream while the decision is still to come; the client still gets
// nothing before the decision.
func TestFastPathSendsBeforeTheDecision(t *testing.T) {
	var calls atomic.Int32
	pol := &passPolicy{mode: &cpv1.WatchProcessingResponse{PolicyRevision: "r1"}, hold: make(chan struct{})}
	g := watchGateway(t, pol, okUpstream(&calls))
	for _, f := range formats {
		got := make(chan int, 1)
		go func() {
			resp, _, _ := g.send(f, false, nil)
			if resp == nil {
				got <- 0
				return
			}
			got <- resp.StatusCode
		}()
		deadline := time.Now().Add(5 * time.Second)
		for calls.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if calls.Load() == 0 {
			t.Fatalf("%s: upstream not called while the decision was held", f.name)
		}
		select {
		case st := <-got:
			t.Fatalf("%s: the client got %d before the decision", f.name, st)
		case <-time.After(50 * time.Millisecond):
		}
		pol.hold <- struct{}{}
		if st := <-got; st != http.StatusOK {
			t.Errorf("%s: status %d, want 200", f.name, st)
		}
		calls.Store(0)
	}
}

// A policy activated since the last mode update still decides: on the
// fast path a rejection reaches the client (upstream's answer is
// dropped), and a rewrite goes upstream again, rewritten; a mode with a
// request hook makes calls wait for their decision before upstream.
func TestFastPathHonoursTheDecision(t *testing.T) {
	var calls atomic.Int32
	var bodies atomic.Value
	up := okUpstream(&calls)
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies.Store(string(b))
		up.ServeHTTP(w, r)
	})
	var decision atomic.Value
	pol := &passPolicy{mode: &cpv1.WatchProcessingResponse{PolicyRevision: "r1"},
		decide: func(*cpv1.CallStart) *cpv1.CallDecision { return decision.Load().(*cpv1.CallDecision) }}
	g := watchGateway(t, pol, upstream)
	f := formats[0]

	decision.Store(&cpv1.CallDecision{Outcome: &cpv1.CallDecision_Reject{Reject: &cpv1.Reject{HttpStatus: 403, ErrorType: "permission_error", Message: "blocked"}}})
	resp, body, _ := g.post(t, f, false)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "blocked") {
		t.Errorf("rejected on the fast path: %d %s, want 403 blocked", resp.StatusCode, body)
	}

	rewritten := `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"REWRITTEN"}]}`
	decision.Store(&cpv1.CallDecision{Outcome: &cpv1.CallDecision_Continue{Continue: &cpv1.Continue{Body: []byte(rewritten)}},
		Inspect: cpv1.Inspect_INSPECT_NONE})
	calls.Store(0)
	resp, _, _ = g.post(t, f, false)
	if resp.StatusCode != http.StatusOK || bodies.Load() != rewritten {
		t.Errorf("rewritten on the fast path: %d, upstream's last body %v; want 200 and the rewrite", resp.StatusCode, bodies.Load())
	}

	// A request hook: nothing goes upstream before the decision.
	g.p.processing.mode.Store(&cpv1.WatchProcessingResponse{PolicyRevision: "r2", Request: true})
	decision.Store(&cpv1.CallDecision{Outcome: &cpv1.CallDecision_Reject{Reject: &cpv1.Reject{HttpStatus: 403, Message: "blocked"}}})
	calls.Store(0)
	resp, _, _ = g.post(t, f, false)
	if resp.StatusCode != http.StatusForbidden || calls.Load() != 0 {
		t.Errorf("with a request hook: %d and %d upstream calls, want 403 and none", resp.StatusCode, calls.Load())
	}
}

// A client that leaves in the middle of a policed stream does not cancel
// its call: the policy's stream is closed (stream_end saying why), the
// call ends as any other and its record is kept, with the error.
func TestClientLeavingMidStreamEndsTheCall(t *testing.T) {
	cancelled := make(chan string, 2)
	pol := &passPolicy{inspect: true, ends: make(chan *cpv1.CallEnd, 2)}
	g := startGateway(t, Config{}, pol, stallingUpstream(cancelled))
	for _, f := range formats {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+f.path, strings.NewReader(f.body(true)))
		for k, v := range f.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		if _, err := resp.Body.Read(buf); err != nil {
			t.Fatalf("%s: no first bytes: %v", f.name, err)
		}
		cancel() // the client leaves
		resp.Body.Close()
		select {
		case end := <-pol.ends:
			if end.GetHttpStatus() != http.StatusOK {
				t.Errorf("%s: end says upstream answered %d", f.name, end.GetHttpStatus())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the call never ended", f.name)
		}
		if rec := g.recs.next(t); rec.Status != http.StatusOK || rec.ID == "" {
			t.Errorf("%s: recorded %d %q", f.name, rec.Status, rec.Error)
		}
		select {
		case <-cancelled:
		case <-time.After(5 * time.Second):
			t.Errorf("%s: the upstream request was not cancelled", f.name)
		}
	}
}
