package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// stallingUpstream answers with the first events of a stream in the
// request's format, then sends nothing until the request is cancelled,
// which it reports on cancelled.
func stallingUpstream(cancelled chan<- string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the server notices a closed connection once the body is read
		events := anthropicStream[:3]
		if strings.HasSuffix(r.URL.Path, "/chat/completions") {
			events = openAIChunks[:2]
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, ev := range events {
			_, _ = io.WriteString(w, ev)
		}
		_ = http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
			cancelled <- r.URL.Path
		case <-time.After(30 * time.Second):
		}
	})
}

// A stream that goes silent mid-way ends, after the idle timeout, with an
// in-stream error event in the client's format; the upstream request is
// cancelled and the call recorded with the error. Both with a policy
// watching the stream and without.
func TestUpstreamIdleTimeout(t *testing.T) {
	const idle = 150 * time.Millisecond
	for _, inspect := range []bool{false, true} {
		cancelled := make(chan string, 1)
		g := startGateway(t, Config{UpstreamIdleTimeout: idle}, &passPolicy{inspect: inspect}, stallingUpstream(cancelled))
		for _, f := range formats {
			t.Run(f.name+map[bool]string{false: " relayed", true: " policed"}[inspect], func(t *testing.T) {
				start := time.Now()
				resp, body, err := g.post(t, f, true)
				if err != nil {
					t.Fatalf("body cut: %v", err)
				}
				if elapsed := time.Since(start); elapsed < idle {
					t.Errorf("answered after %v, before the idle timeout of %v", elapsed, idle)
				}
				if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
					t.Fatalf("got %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
				}
				last := lastEvent(body)
				if !strings.HasPrefix(last, f.errorShape) || !strings.Contains(last, "upstream sent nothing for 150ms") {
					t.Errorf("last event %s, want an error in the %s format naming the idle timeout; body:\n%s", last, f.name, body)
				}
				if f.name == "anthropic" && !strings.Contains(body, "event: error\n") {
					t.Errorf("no error event:\n%s", body)
				}
				select {
				case <-cancelled:
				case <-time.After(5 * time.Second):
					t.Error("upstream request not cancelled")
				}
				if rec := g.recs.next(t); !strings.Contains(rec.Error, "upstream sent nothing for 150ms") {
					t.Errorf("recorded error %q", rec.Error)
				}
			})
		}
	}
}

// An upstream that never sends its headers gets, after the header timeout,
// a 504 in the client's format, streamed or not, policed or not, and on
// the forwarded routes; the upstream request is cancelled.
func TestUpstreamHeaderTimeout(t *testing.T) {
	const wait = 150 * time.Millisecond
	cancelled := make(chan string, 16)
	silent := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the server notices a closed connection once the body is read
		select {
		case <-r.Context().Done():
			cancelled <- r.URL.Path
		case <-time.After(30 * time.Second):
		}
	})
	for _, inspect := range []bool{false, true} {
		g := startGateway(t, Config{UpstreamHeaderTimeout: wait}, &passPolicy{inspect: inspect}, silent)
		for _, f := range formats {
			for _, stream := range []bool{false, true} {
				resp, body, err := g.post(t, f, stream)
				if err != nil || resp.StatusCode != http.StatusGatewayTimeout || !strings.HasPrefix(body, f.errorShape) ||
					!strings.Contains(body, "upstream sent no response headers within 150ms") {
					t.Errorf("%s stream=%v inspect=%v: got %d %s (%v), want a 504 in the client's format", f.name, stream, inspect, resp.StatusCode, body, err)
				}
				select {
				case <-cancelled:
				case <-time.After(5 * time.Second):
					t.Errorf("%s stream=%v: upstream request not cancelled", f.name, stream)
				}
				if rec := g.recs.next(t); !strings.Contains(rec.Error, "no response headers") {
					t.Errorf("%s: recorded error %q", f.name, rec.Error)
				}
			}
		}
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/models", nil)
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusGatewayTimeout || !strings.HasPrefix(string(body), formats[0].errorShape) {
			t.Errorf("/v1/models: got %d %s", resp.StatusCode, body)
		}
		<-cancelled
	}
}

// A whole response whose body stalls after its headers, read for the
// response policies, is a 504 once the idle timeout passes.
func TestUpstreamIdleTimeoutWholeResponse(t *testing.T) {
	g := startGateway(t, Config{UpstreamIdleTimeout: 100 * time.Millisecond}, &passPolicy{inspect: true},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "500")
			_, _ = io.WriteString(w, `{"id":"msg_1","type":"message",`)
			_ = http.NewResponseController(w).Flush()
			<-r.Context().Done()
		}))
	for _, f := range formats {
		resp, body, err := g.post(t, f, false)
		if err != nil || resp.StatusCode != http.StatusGatewayTimeout || !strings.HasPrefix(body, f.errorShape) ||
			!strings.Contains(body, "upstream sent nothing for 100ms") {
			t.Errorf("%s: got %d %s (%v)", f.name, resp.StatusCode, body, err)
		}
	}
}
