package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"luthien.dev/bench/fakeupstream"
)

// rawPathRequest sends a request whose path goes on the wire exactly as
// written, and does not follow redirects.
func rawPathRequest(t *testing.T, e *env, method, rawPath, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = rawPath
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Only the supported paths go upstream, with the gateway's provider key.
// Dot-segments, encoded slashes and dots, backslashes and control
// characters get a 400 in the client's format before anything goes
// upstream; the supported paths still work, query included.
func TestHardeningPaths(t *testing.T) {
	forEachMode(t, options{clientKey: "gw-secret", providerKeys: true}, func(t *testing.T, e *env) {
		anth := map[string]string{"Content-Type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "gw-secret"}
		oai := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer gw-secret"}
		const anthShape, oaiShape = `{"type":"error","error":{"type":"invalid_request_error"`, `{"error":{"message":`
		for _, tc := range []struct {
			method, path string
			header       map[string]string
			shape        string
		}{
			{"GET", "/v1/models/%2e%2e/%2e%2e/v1/files", anth, anthShape},
			{"GET", "/v1/models/%2e%2e/%2e%2e/v1/files", oai, oaiShape},
			{"GET", "/v1/models/%2E%2E/%2E%2E/v1/files", anth, anthShape},
			{"GET", "/v1/models/.%2e/.%2e/v1/files", oai, oaiShape},
			{"GET", "/v1/models/..%2f..%2fv1%2ffiles", anth, anthShape},
			{"GET", "/v1/models/x%2Fy", oai, oaiShape},
			{"GET", "/v1/models/..%5c..%5cv1%5cfiles", anth, anthShape},
			{"GET", `/v1/models/..\..\v1\files`, anth, anthShape},
			{"GET", "/v1/models/a%00", oai, oaiShape},
			{"GET", "/v1/models/a%0d%0aX-Injected:%20yes", anth, anthShape},
			{"GET", "/v1/models/a%2eb", anth, anthShape},
			{"POST", "/v1/messages/%2e%2e/count_tokens", anth, anthShape},
			{"POST", "/v1/messages%2fcount_tokens", anth, anthShape},
			{"POST", "/v1/chat/completions%2f%2e%2e", oai, oaiShape},
		} {
			resp, body := rawPathRequest(t, e, tc.method, tc.path, anthropicBody(false, ""), tc.header)
			if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(body, tc.shape) ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s %s: got %d %s, want a 400 in the client's format", tc.method, tc.path, resp.StatusCode, body)
			}
		}
		// Literal dot-segments and empty segments never reach a handler:
		// the router answers with a redirect to the cleaned path.
		for _, p := range []string{"/v1/models/../../v1/files", "/v1/models/./x", "/v1/models//x", "/v1//messages"} {
			if resp, body := rawPathRequest(t, e, "GET", p, "", anth); resp.StatusCode < 300 {
				t.Errorf("GET %s: got %d %s", p, resp.StatusCode, body)
			}
		}
		if reqs := e.up.Requests(); len(reqs) != 0 {
			for _, r := range reqs {
				t.Errorf("reached upstream: %s %s with %q", r.Method, r.Path, r.Header.Get("x-api-key")+r.Header.Get("Authorization"))
			}
		}

		for _, tc := range []struct {
			method, path, upPath, upQuery string
			header                        map[string]string
		}{
			{"POST", "/v1/messages?beta=true", "/v1/messages", "beta=true", anth},
			{"POST", "/v1/chat/completions", "/v1/chat/completions", "", oai},
			{"POST", "/v1/messages/count_tokens?beta=true", "/v1/messages/count_tokens", "beta=true", anth},
			{"GET", "/v1/models?limit=5", "/v1/models", "limit=5", anth},
			{"GET", "/v1/models/claude-sonnet-4-5", "/v1/models/claude-sonnet-4-5", "", anth},
			{"HEAD", "/", "/", "", anth},
		} {
			e.up.Reset()
			body := ""
			if tc.method == "POST" {
				body = anthropicBody(false, "")
				if strings.Contains(tc.path, "chat") {
					body = openaiBody(false, "")
				}
			}
			resp, got := rawPathRequest(t, e, tc.method, tc.path, body, tc.header)
			reqs := e.up.Requests()
			if len(reqs) != 1 || reqs[0].Path != tc.upPath || reqs[0].RawQuery != tc.upQuery {
				t.Errorf("%s %s (%d %s): upstream saw %+v", tc.method, tc.path, resp.StatusCode, got, reqs)
				continue
			}
			if key := reqs[0].Header.Get("x-api-key") + reqs[0].Header.Get("Authorization"); !strings.Contains(key, "sk-provider-") {
				t.Errorf("%s %s: upstream got credential %q, want the provider key", tc.method, tc.path, key)
			}
		}
	})
}

// truncatingProvider is an upstream that announces a longer body than it
// sends (half a JSON response, or with X-Truncate-SSE half of a stream's
// first event), unless asked for X-Whole; whole, it answers like the fake
// upstream's default scenario.
func truncatingProvider(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		openai := strings.HasSuffix(r.URL.Path, "/chat/completions")
		body, ct := `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"hello there"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":2}}`, "application/json"
		if openai {
			body = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`
		}
		if r.Header.Get("X-Truncate-SSE") != "" {
			ct = "text/event-stream"
			body = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n"
			if openai {
				body = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"hello\"},\"finish_reason\":null}]}\n\n"
			}
		}
		w.Header().Set("Content-Type", ct)
		if r.Header.Get("X-Whole") != "" {
			_, _ = io.WriteString(w, body)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)+64))
		_, _ = io.WriteString(w, body[:len(body)/2])
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A truncated upstream response under all_caps (read whole for the
// response policy, or a stream cut before its first event) is a 502 in the
// client's format, streamed or not; the gateway goes on serving.
func TestHardeningTruncatedUpstream(t *testing.T) {
	up := truncatingProvider(t)
	forEachMode(t, options{upstreamURL: up.URL}, func(t *testing.T, e *env) {
		e.setPolicy(t, "all_caps", nil)
		for _, f := range []struct {
			name, path, shape string
			body              func(stream bool) string
			header            map[string]string
		}{
			{"anthropic", "/v1/messages", `{"type":"error","error":{"type":"api_error"`, func(s bool) string { return anthropicBody(s, "") }, anthropicHeaders},
			{"openai", "/v1/chat/completions", `{"error":{"message":`, func(s bool) string { return openaiBody(s, "") }, openaiHeaders},
		} {
			for _, tc := range []struct {
				name   string
				stream bool
				header string
			}{{"whole", false, ""}, {"stream asked, whole answered", true, ""}, {"stream", true, "X-Truncate-SSE"}} {
				h := map[string]string{}
				for k, v := range f.header {
					h[k] = v
				}
				if tc.header != "" {
					h[tc.header] = "1"
				}
				resp, body := e.do(t, http.MethodPost, f.path, f.body(tc.stream), h)
				if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(string(body), f.shape) ||
					!strings.Contains(string(body), "upstream response broke off") {
					t.Errorf("%s %s: got %d %s, want a 502 in the client's format", f.name, tc.name, resp.StatusCode, body)
				}
			}
			h := map[string]string{"X-Whole": "1"}
			for k, v := range f.header {
				h[k] = v
			}
			resp, body := e.do(t, http.MethodPost, f.path, f.body(false), h)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "HELLO THERE") {
				t.Errorf("%s: gateway stopped serving: %d %s", f.name, resp.StatusCode, body)
			}
		}
	})
}

// A stream cut mid-way under all_caps still ends with an in-stream error
// (the client already has the stream's start).
func TestHardeningCutStreamUnderPolicy(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.setPolicy(t, "all_caps", nil)
		e.up.Enqueue(fakeupstream.Scenario{Text: "one two three four five", CutAfter: 4})
		resp, body := e.do(t, http.MethodPost, "/v1/chat/completions", openaiBody(true, ""), openaiHeaders)
		evs := parseSSE(t, body)
		if last := evs[len(evs)-1]; resp.StatusCode != http.StatusOK || !strings.Contains(last.data, `"error"`) || !strings.Contains(last.data, "broke off") {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
	})
}
