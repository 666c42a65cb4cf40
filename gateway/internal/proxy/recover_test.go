package proxy

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// wholeResponse is a complete upstream response in the request's format.
func wholeResponse(path string) string {
	if strings.HasSuffix(path, "/chat/completions") {
		return `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`
	}
	return `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}`
}

// truncatingUpstream announces a longer body than it sends: half a JSON
// response, or (with X-Upstream-SSE) half of a stream's first event. It
// answers whole when X-Upstream-Whole is set.
func truncatingUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		body, ct := wholeResponse(r.URL.Path), "application/json"
		if r.Header.Get("X-Upstream-SSE") != "" {
			body, ct = anthropicStream[0], "text/event-stream"
			if strings.HasSuffix(r.URL.Path, "/chat/completions") {
				body = openAIChunks[0]
			}
		}
		w.Header().Set("Content-Type", ct)
		if r.Header.Get("X-Upstream-Whole") != "" {
			_, _ = io.WriteString(w, body)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)+100))
		_, _ = io.WriteString(w, body[:len(body)/2])
	})
}

// A response cut short by upstream, read whole for the response policies
// (as under all_caps), is a 502 in the client's format, whether the client
// asked for a stream or not; so is a stream cut before its first event.
// Nothing panics and the gateway goes on serving.
func TestTruncatedUpstreamBody(t *testing.T) {
	g := startGateway(t, Config{}, &passPolicy{inspect: true}, truncatingUpstream())
	for _, f := range formats {
		for _, tc := range []struct {
			name        string
			stream, sse bool
		}{{"whole", false, false}, {"stream asked, whole answered", true, false}, {"stream", true, true}} {
			cut := f
			if tc.sse {
				cut.header = mergeHeader(f.header, "X-Upstream-SSE", "1")
			}
			resp, body, err := g.post(t, cut, tc.stream)
			if err != nil || resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(body, f.errorShape) ||
				!strings.Contains(body, "upstream response broke off") {
				t.Errorf("%s %s: got %d %q (%v), want a 502 in the client's format", f.name, tc.name, resp.StatusCode, body, err)
			}
			if rec := g.recs.next(t); !strings.Contains(rec.Error, "broke off") || rec.Status != http.StatusBadGateway {
				t.Errorf("%s %s: recorded %d %q", f.name, tc.name, rec.Status, rec.Error)
			}
		}
		whole := f
		whole.header = mergeHeader(f.header, "X-Upstream-Whole", "1")
		if resp, body, err := g.post(t, whole, false); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s: gateway stopped serving: %d %s (%v)", f.name, resp.StatusCode, body, err)
		}
		if rec := g.recs.next(t); rec.Error != "" {
			t.Errorf("%s: whole response recorded with error %q", f.name, rec.Error)
		}
	}
	if logs := g.logs.String(); strings.Contains(logs, "panic") {
		t.Errorf("a panic was logged:\n%s", logs)
	}
}

func mergeHeader(h map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for hk, hv := range h {
		out[hk] = hv
	}
	return out
}

// explodingTransport answers requests marked X-Explode with a body that
// yields before, then panics once release is closed; it sends the others
// upstream.
type explodingTransport struct {
	contentType, before string
	release             chan struct{}
}

func (e explodingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Explode") == "" {
		return http.DefaultTransport.RoundTrip(r)
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {e.contentType}},
		Body: &explodingBody{r: strings.NewReader(e.before), release: e.release}, ContentLength: -1, Request: r}, nil
}

type explodingBody struct {
	r       io.Reader
	release chan struct{}
}

func (b *explodingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n == 0 {
		<-b.release
		panic("upstream body exploded")
	}
	return n, err
}

func (b *explodingBody) Close() error { return nil }

// A panic while serving a request, in the handler or in the goroutine
// reading upstream's stream, is logged once with its stack and answered
// in the client's format: a 502 while nothing was sent, an in-stream error
// event once a stream began, a broken-off response when part of a whole
// body was written. The gateway goes on serving.
func TestPanicsAreRecovered(t *testing.T) {
	sse := "text/event-stream"
	cases := []struct {
		name        string
		inspect     bool
		stream      bool
		contentType string
		before      func(f format) string
		want        string // "502" or "event"
	}{
		{"policed stream, before any event", true, true, sse, func(format) string { return "" }, "502"},
		{"policed stream, mid-stream", true, true, sse, streamStart, "event"},
		{"relayed stream", false, true, sse, streamStart, "event"},
		{"policed whole response", true, false, "application/json", func(format) string { return `{"id":` }, "502"},
		// A whole response is read before it is answered (relayChecked),
		// so a panic while reading still gets a clean error.
		{"relayed whole response", false, false, "application/json", func(format) string { return `{"id":` }, "502"},
	}
	for _, tc := range cases {
		for _, f := range formats {
			t.Run(tc.name+" "+f.name, func(t *testing.T) {
				g := startGateway(t, Config{}, &passPolicy{inspect: tc.inspect}, truncatingUpstream())
				before := tc.before(f)
				release := make(chan struct{})
				g.p.client.Transport = explodingTransport{contentType: tc.contentType, before: before, release: release}
				boom := f
				boom.header = mergeHeader(f.header, "X-Explode", "1")
				if tc.want != "event" {
					close(release)
				}
				resp, body, err := g.send(boom, tc.stream, func(r io.Reader) {
					if tc.want == "event" { // the panic comes once the client has the stream's start
						if _, err := io.ReadFull(r, make([]byte, len(before))); err != nil {
							t.Errorf("stream's start: %v", err)
						}
						close(release)
					}
				})
				switch tc.want {
				case "502":
					if err != nil || resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(body, f.errorShape) ||
						!strings.Contains(body, "internal error in the gateway") {
						t.Errorf("got %v %q (%v), want a 502 in the client's format", resp, body, err)
					}
				case "event":
					if last := lastEvent(body); err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(last, f.errorShape) ||
						!strings.Contains(last, "internal error in the gateway") || !strings.HasPrefix(body, before) {
						t.Errorf("got %v %q (%v), want the stream's start and an in-stream error event", resp, body, err)
					}
				}
				logs := g.logs.String()
				if n := strings.Count(logs, "panic recovered"); n != 1 || !strings.Contains(logs, "upstream body exploded") ||
					!strings.Contains(logs, "(*explodingBody).Read") {
					t.Errorf("logged %d panics, want one with its stack:\n%s", n, logs)
				}
				if rec := g.recs.next(t); rec.Error != "internal error in the gateway" {
					t.Errorf("recorded error %q", rec.Error)
				}
				whole := f
				whole.header = mergeHeader(f.header, "X-Upstream-Whole", "1")
				if resp, body, err := g.post(t, whole, false); err != nil || resp.StatusCode != http.StatusOK {
					t.Errorf("gateway stopped serving: %d %s (%v)", resp.StatusCode, body, err)
				}
			})
		}
	}
}

// streamStart is the first events of a stream in format f.
func streamStart(f format) string {
	if f.name == "openai" {
		return strings.Join(openAIChunks[:2], "")
	}
	return strings.Join(anthropicStream[:3], "")
}

// A panic on the forwarded routes (count_tokens, models) is recovered the
// same way.
func TestPanicOnForwardedRoute(t *testing.T) {
	g := startGateway(t, Config{}, &passPolicy{}, truncatingUpstream())
	release := make(chan struct{})
	close(release)
	g.p.client.Transport = explodingTransport{contentType: "application/json", release: release}
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages/count_tokens", strings.NewReader(`{}`))
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("X-Explode", "1")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Errorf("got a whole %d answer, want the connection broken off (headers were out)", resp.StatusCode)
	}
	if n := strings.Count(g.logs.String(), "panic recovered"); n != 1 {
		t.Errorf("logged %d panics, want 1:\n%s", n, g.logs.String())
	}
}

// panickingCalls panics when a call's stream is opened.
type panickingCalls struct{ cpv1.CallServiceClient }

func (panickingCalls) Call(context.Context, ...grpc.CallOption) (cpv1.CallService_CallClient, error) {
	panic("policy client exploded")
}

func TestPanicOpeningCall(t *testing.T) {
	g := startGateway(t, Config{}, &passPolicy{inspect: true}, truncatingUpstream())
	g.p.calls = panickingCalls{g.p.calls}
	for _, f := range formats {
		f.header = mergeHeader(f.header, "X-Upstream-Whole", "1")
		f.header["X-Upstream-SSE"] = "1"
		resp, body, err := g.post(t, f, true)
		if err != nil || resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(body, f.errorShape) ||
			!strings.Contains(body, "internal error in the gateway") {
			t.Errorf("%s: got %d %q (%v), want a 502 in the client's format", f.name, resp.StatusCode, body, err)
		}
	}
	logs := g.logs.String()
	if n := strings.Count(logs, "panic recovered"); n != 2 || !strings.Contains(logs, "policy client exploded") {
		t.Errorf("logged %d panics, want one per request with its stack:\n%s", n, logs)
	}
	if strings.Contains(logs, "policy call failed") {
		t.Errorf("the panic was logged twice:\n%s", logs)
	}
}

// Relayed as it comes (as under noop), a response cut short reaches the
// client cut (its Content-Length tells it so) and is recorded as such.
func TestTruncatedRelayRecorded(t *testing.T) {
	g := startGateway(t, Config{}, &passPolicy{}, truncatingUpstream())
	for _, f := range formats {
		resp, _, err := g.post(t, f, false)
		if resp.StatusCode != http.StatusOK || err == nil {
			t.Errorf("%s: got %d (%v), want upstream's status and a cut body", f.name, resp.StatusCode, err)
		}
		if rec := g.recs.next(t); !strings.Contains(rec.Error, "upstream response broke off: unexpected EOF") {
			t.Errorf("%s: recorded error %q", f.name, rec.Error)
		}
	}
}
