package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"luthien.dev/bench/fakeupstream"
)

// An unmodified stream reaches the client byte-identical, and the request
// reaches upstream byte-identical with its headers, query and unknown
// fields.
func TestPassthroughFidelity(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		cases := []struct {
			name, path, body string
			header           map[string]string
			sc               fakeupstream.Scenario
		}{
			{"anthropic stream", "/v1/messages?beta=true",
				anthropicBody(true, `,"temperature":0.3,"top_p":0.9,"stop_sequences":["END"],"system":[{"type":"text","text":"be brief","cache_control":{"type":"ephemeral"}}],"metadata":{"user_id":"user_abc_account__session_5f1c"},"context_management":{"edits":[]},"thinking":{"type":"enabled","budget_tokens":1024}`),
				anthropicHeaders,
				fakeupstream.Scenario{Text: "Héllo wörld 👋, naïve café", Thinking: "let me think", Pings: true,
					ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: `{"command":"ls -la"}`}}, Extra: map[string]any{"container": nil}}},
			{"anthropic", "/v1/messages", anthropicBody(false, `,"service_tier":"auto"`), anthropicHeaders,
				fakeupstream.Scenario{Text: "plain", Extra: map[string]any{"future_field": map[string]any{"x": 1}}}},
			{"openai stream", "/v1/chat/completions", openaiBody(true, `,"stream_options":{"include_usage":true},"temperature":0,"seed":7,"unknown_field":[1,2]`), openaiHeaders,
				fakeupstream.Scenario{Text: "Ünïcode ✓ text", ToolCalls: []fakeupstream.ToolCall{{Name: "get_weather", Arguments: `{"city":"Paris"}`}}}},
			// Larger than the HTTP server's write buffer: its length is
			// upstream's, not one the server counts at the end.
			{"openai", "/v1/chat/completions", openaiBody(false, `,"logprobs":false`), openaiHeaders, fakeupstream.Scenario{Text: strings.Repeat("plain ", 2000)}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e.up.Enqueue(tc.sc)
				h := map[string]string{"anthropic-beta": "interleaved-thinking-2025-05-14,some-future-beta", "X-Custom-Header": "kept"}
				for k, v := range tc.header {
					h[k] = v
				}
				resp, body := e.do(t, http.MethodPost, tc.path, tc.body, h)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				got, ok := e.up.LastFinished(5 * time.Second)
				if !ok {
					t.Fatal("upstream saw no request")
				}
				if string(got.Body) != tc.body {
					t.Errorf("upstream body differs:\n got %s\nwant %s", got.Body, tc.body)
				}
				if !bytes.Equal(body, got.Sent) {
					t.Errorf("client body differs from upstream's bytes:\n got %q\nwant %q", body, got.Sent)
				}
				if got.Header.Get("anthropic-beta") != h["anthropic-beta"] || got.Header.Get("X-Custom-Header") != "kept" {
					t.Errorf("headers not forwarded: %v", got.Header)
				}
				if strings.Contains(tc.path, "?") && got.RawQuery != "beta=true" {
					t.Errorf("query not forwarded: %q", got.RawQuery)
				}
				if resp.Header.Get("X-Call-ID") == "" {
					t.Error("no X-Call-ID header")
				}
				// A whole response keeps upstream's length (the client has it
				// before the gateway records the call).
				if !strings.Contains(tc.name, "stream") && resp.ContentLength != int64(len(got.Sent)) {
					t.Errorf("Content-Length %d, want upstream's %d", resp.ContentLength, len(got.Sent))
				}
			})
		}
	})
}

// all_caps uppercases text in both formats, streamed and not, and leaves
// tool calls byte-identical.
func TestAllCaps(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.setPolicy(t, "all_caps", nil)
		tools := []fakeupstream.ToolCall{{Name: "Bash", Arguments: `{"command":"ls -la /tmp"}`}}
		sc := fakeupstream.Scenario{Text: "hello straße, café 👋", Chunks: 7, ToolCalls: tools}
		const want = "HELLO STRASSE, CAFÉ 👋"

		t.Run("anthropic stream", func(t *testing.T) {
			e.up.Enqueue(sc)
			resp, body := e.do(t, http.MethodPost, "/v1/messages", anthropicBody(true, ""), anthropicHeaders)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			evs := parseSSE(t, body)
			validateAnthropic(t, evs)
			text, args := anthropicContent(t, evs)
			if text != want {
				t.Errorf("text %q, want %q", text, want)
			}
			if args != tools[0].Arguments {
				t.Errorf("tool arguments %q changed", args)
			}
			// Every non-text event is upstream's exact bytes.
			up, _ := e.up.LastFinished(5 * time.Second)
			for _, ev := range evs {
				if !strings.Contains(ev.data, "text_delta") && !bytes.Contains(up.Sent, []byte(ev.data)) {
					t.Errorf("event not passed through byte-identical: %s", ev.data)
				}
			}
		})
		t.Run("anthropic", func(t *testing.T) {
			e.up.Enqueue(sc)
			_, body := e.do(t, http.MethodPost, "/v1/messages", anthropicBody(false, ""), anthropicHeaders)
			var m struct {
				Content []struct {
					Type, Text string
					Input      json.RawMessage
				}
				StopReason string `json:"stop_reason"`
			}
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if len(m.Content) != 2 || m.Content[0].Text != want || string(m.Content[1].Input) != tools[0].Arguments || m.StopReason != "tool_use" {
				t.Errorf("unexpected message: %s", body)
			}
		})
		t.Run("openai stream", func(t *testing.T) {
			e.up.Enqueue(sc)
			_, body := e.do(t, http.MethodPost, "/v1/chat/completions", openaiBody(true, `,"stream_options":{"include_usage":true}`), openaiHeaders)
			evs := parseSSE(t, body)
			validateOpenAI(t, evs)
			text, args, finish := openaiContent(t, evs)
			if text != want || args != tools[0].Arguments || finish != "tool_calls" {
				t.Errorf("got text %q args %q finish %q", text, args, finish)
			}
		})
		t.Run("openai", func(t *testing.T) {
			e.up.Enqueue(sc)
			_, body := e.do(t, http.MethodPost, "/v1/chat/completions", openaiBody(false, ""), openaiHeaders)
			var c struct {
				Choices []struct {
					Message struct {
						Content   string
						ToolCalls []struct{ Function struct{ Arguments string } } `json:"tool_calls"`
					}
					FinishReason string `json:"finish_reason"`
				}
				SystemFingerprint string `json:"system_fingerprint"`
			}
			if err := json.Unmarshal(body, &c); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if len(c.Choices) != 1 || c.Choices[0].Message.Content != want || len(c.Choices[0].Message.ToolCalls) != 1 ||
				c.Choices[0].Message.ToolCalls[0].Function.Arguments != tools[0].Arguments || c.Choices[0].FinishReason != "tool_calls" {
				t.Errorf("unexpected completion: %s", body)
			}
			if c.SystemFingerprint != "fp_fake" {
				t.Errorf("unknown fields of the response lost: %s", body)
			}
		})
	})
}

// Upstream errors come back with their status and body unchanged; an error
// mid-stream becomes an in-stream error event.
func TestUpstreamErrors(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		for _, policy := range []string{"noop", "all_caps"} {
			e.setPolicy(t, policy, nil)
			for _, st := range []int{400, 429, 500, 529} {
				for _, f := range []struct {
					path, body string
					h          map[string]string
				}{{"/v1/messages", anthropicBody(true, ""), anthropicHeaders}, {"/v1/chat/completions", openaiBody(false, ""), openaiHeaders}} {
					e.up.Enqueue(fakeupstream.Scenario{Status: st, ErrorBody: `{"error":"prompt is too long: 1 > 0","n":` + string(rune('0'+st%10)) + `}`})
					resp, body := e.do(t, http.MethodPost, f.path, f.body, f.h)
					up, _ := e.up.LastFinished(5 * time.Second)
					if resp.StatusCode != st || !bytes.Equal(body, up.Sent) {
						t.Errorf("%s %s %d: got %d %s, want upstream's %s", policy, f.path, st, resp.StatusCode, body, up.Sent)
					}
				}
			}
			e.up.Enqueue(fakeupstream.Scenario{Text: "one two three four five", ErrorAfter: 4})
			_, body := e.do(t, http.MethodPost, "/v1/messages", anthropicBody(true, ""), anthropicHeaders)
			evs := parseSSE(t, body)
			if last := evs[len(evs)-1]; last.name != "error" || !strings.Contains(last.data, "overloaded_error") {
				t.Errorf("%s: mid-stream error not relayed: %s", policy, body)
			}
			e.up.Enqueue(fakeupstream.Scenario{Text: "one two three four five", ErrorAfter: 3})
			_, body = e.do(t, http.MethodPost, "/v1/chat/completions", openaiBody(true, ""), openaiHeaders)
			evs = parseSSE(t, body)
			if last := evs[len(evs)-1]; !strings.Contains(last.data, `"error"`) {
				t.Errorf("%s: openai mid-stream error not relayed: %s", policy, body)
			}
		}
	})
}

// A stream that breaks off upstream ends with an in-stream error.
func TestUpstreamCutMidStream(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		for _, policy := range []string{"noop", "all_caps"} {
			e.setPolicy(t, policy, nil)
			e.up.Enqueue(fakeupstream.Scenario{Text: "one two three four five", CutAfter: 4})
			_, body := e.do(t, http.MethodPost, "/v1/messages", anthropicBody(true, ""), anthropicHeaders)
			evs := parseSSE(t, body)
			if last := evs[len(evs)-1]; last.name != "error" || !strings.Contains(last.data, "broke off") {
				t.Errorf("%s: cut stream did not end in an error event: %s", policy, body)
			}
		}
	})
}

func TestAuth(t *testing.T) {
	t.Run("client key", func(t *testing.T) {
		forEachMode(t, options{clientKey: "gw-secret", providerKeys: true}, func(t *testing.T, e *env) {
			for _, f := range []struct {
				name, path, body, authHeader, prefix, want string
				errShape                                   string
			}{
				{"anthropic", "/v1/messages", anthropicBody(false, ""), "x-api-key", "", "sk-provider-anthropic", `"type":"error"`},
				{"openai", "/v1/chat/completions", openaiBody(false, ""), "Authorization", "Bearer ", "Bearer sk-provider-openai", `"error":{"message"`},
			} {
				resp, body := e.do(t, http.MethodPost, f.path, f.body, map[string]string{"Content-Type": "application/json"})
				if resp.StatusCode != 401 || !strings.Contains(string(body), f.errShape) {
					t.Errorf("%s missing key: %d %s", f.name, resp.StatusCode, body)
				}
				resp, body = e.do(t, http.MethodPost, f.path, f.body, map[string]string{f.authHeader: f.prefix + "wrong"})
				if resp.StatusCode != 401 || !strings.Contains(string(body), f.errShape) {
					t.Errorf("%s wrong key: %d %s", f.name, resp.StatusCode, body)
				}
				if n := len(e.up.Requests()); n != 0 {
					t.Fatalf("%d requests reached upstream without a valid key", n)
				}
				resp, body = e.do(t, http.MethodPost, f.path, f.body, map[string]string{f.authHeader: f.prefix + "gw-secret"})
				if resp.StatusCode != 200 {
					t.Fatalf("%s right key: %d %s", f.name, resp.StatusCode, body)
				}
				up, _ := e.up.LastRequest()
				if got := up.Header.Get(f.authHeader); got != f.want {
					t.Errorf("%s: upstream got credential %q, want the provider key", f.name, got)
				}
				e.up.Reset()
			}
		})
	})
	t.Run("passthrough", func(t *testing.T) {
		forEachMode(t, options{}, func(t *testing.T, e *env) {
			e.do(t, http.MethodPost, "/v1/messages", anthropicBody(false, ""), map[string]string{"Authorization": "Bearer oauth-token-123"})
			up, _ := e.up.LastRequest()
			if up.Header.Get("Authorization") != "Bearer oauth-token-123" {
				t.Errorf("client credential not forwarded: %v", up.Header)
			}
		})
	})
}

func TestBadInput(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		anth := `"type":"error","error":{"type":"invalid_request_error"`
		oai := `"error":{"message"`
		cases := []struct {
			name, path, body string
			status           int
			shape            string
		}{
			{"anthropic malformed", "/v1/messages", `{"model":`, 400, anth},
			{"anthropic empty", "/v1/messages", ``, 400, anth},
			{"anthropic no model", "/v1/messages", `{"max_tokens":5,"messages":[]}`, 400, anth},
			{"anthropic no messages", "/v1/messages", `{"model":"m","max_tokens":5}`, 400, anth},
			{"anthropic no max_tokens", "/v1/messages", `{"model":"m","messages":[]}`, 400, anth},
			{"openai malformed", "/v1/chat/completions", `not json`, 400, oai},
			{"openai empty", "/v1/chat/completions", ``, 400, oai},
			{"openai no model", "/v1/chat/completions", `{"messages":[]}`, 400, oai},
			{"openai no messages", "/v1/chat/completions", `{"model":"m"}`, 400, oai},
			{"too large", "/v1/messages", `{"model":"m","pad":"` + strings.Repeat("x", 11<<20) + `"}`, 413, `"type":"error"`},
			{"unknown path", "/v2/whatever", `{}`, 404, `"error"`},
		}
		for _, tc := range cases {
			resp, body := e.do(t, http.MethodPost, tc.path, tc.body, map[string]string{"Content-Type": "application/json"})
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.shape) ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s: got %d %s", tc.name, resp.StatusCode, body)
			}
		}
		if n := len(e.up.Requests()); n != 0 {
			t.Errorf("%d bad requests reached upstream", n)
		}
		// Still serving.
		resp, body := e.do(t, http.MethodPost, "/v1/messages", anthropicBody(false, ""), anthropicHeaders)
		if resp.StatusCode != 200 {
			t.Fatalf("gateway stopped serving after bad input: %d %s", resp.StatusCode, body)
		}
	})
}

func TestUnreachableUpstream(t *testing.T) {
	forEachMode(t, options{upstreamURL: "http://127.0.0.1:1"}, func(t *testing.T, e *env) {
		resp, body := e.do(t, http.MethodPost, "/v1/messages", anthropicBody(true, ""), anthropicHeaders)
		if resp.StatusCode != 502 || !strings.Contains(string(body), `"type":"error"`) {
			t.Errorf("anthropic: got %d %s", resp.StatusCode, body)
		}
		resp, body = e.do(t, http.MethodPost, "/v1/chat/completions", openaiBody(false, ""), openaiHeaders)
		if resp.StatusCode != 502 || !strings.Contains(string(body), `"error":{"message"`) {
			t.Errorf("openai: got %d %s", resp.StatusCode, body)
		}
	})
}

// A client that goes away mid-stream cancels the upstream request.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		for _, policy := range []string{"noop", "all_caps"} {
			e.setPolicy(t, policy, nil)
			e.up.Enqueue(fakeupstream.Scenario{Text: strings.Repeat("word ", 200), Interval: 50 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/v1/messages", strings.NewReader(anthropicBody(true, "")))
			for k, v := range anthropicHeaders {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			if _, err := io.ReadAtLeast(resp.Body, buf, 1); err != nil {
				t.Fatalf("%s: no first bytes: %v", policy, err)
			}
			cancel()
			resp.Body.Close()
			up, _ := e.up.LastRequest()
			if !e.up.WaitCancelled(up.Seq, 10*time.Second) {
				t.Errorf("%s: upstream request not cancelled after the client left", policy)
			}
		}
	})
}

func TestHealthReadyAndForwarded(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		if resp, body := e.do(t, http.MethodGet, "/health", "", nil); resp.StatusCode != 200 {
			t.Errorf("/health: %d %s", resp.StatusCode, body)
		}
		if resp, body := e.do(t, http.MethodGet, "/ready", "", nil); resp.StatusCode != 200 {
			t.Errorf("/ready: %d %s", resp.StatusCode, body)
		}
		resp, body := e.do(t, http.MethodPost, "/v1/messages/count_tokens", `{"model":"m","messages":[]}`, anthropicHeaders)
		if resp.StatusCode != 200 || !strings.Contains(string(body), "input_tokens") || e.up.Count("/v1/messages/count_tokens") != 1 {
			t.Errorf("count_tokens: %d %s", resp.StatusCode, body)
		}
		resp, body = e.do(t, http.MethodGet, "/v1/models", "", anthropicHeaders)
		if resp.StatusCode != 200 || !strings.Contains(string(body), "claude-fake") || e.up.Count("/v1/models") != 1 {
			t.Errorf("models: %d %s", resp.StatusCode, body)
		}
		resp, _ = e.do(t, http.MethodHead, "/", "", nil)
		if resp.StatusCode != 200 || e.up.Count("/") != 1 {
			t.Errorf("HEAD /: %d", resp.StatusCode)
		}
		if e.mode == "split" {
			e.killControlPlane()
			if resp, body := e.do(t, http.MethodGet, "/ready", "", nil); resp.StatusCode != 503 {
				t.Errorf("/ready with the control plane down: %d %s", resp.StatusCode, body)
			}
			// Fails closed, in the client's format.
			resp, body := e.do(t, http.MethodPost, "/v1/messages", anthropicBody(false, ""), anthropicHeaders)
			if resp.StatusCode != 502 || !strings.Contains(string(body), `"type":"error"`) {
				t.Errorf("request with the control plane down: %d %s", resp.StatusCode, body)
			}
		}
	})
}

func TestPolicyAdminAPI(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		resp, body := e.do(t, http.MethodGet, "/api/v1/policy", "", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"noop"`) {
			t.Fatalf("get policy: %d %s", resp.StatusCode, body)
		}
		resp, body = e.do(t, http.MethodPut, "/api/v1/policy", `{"class":"no_such_policy"}`, nil)
		if resp.StatusCode != 400 || !strings.Contains(string(body), "no_such_policy") {
			t.Errorf("invalid policy: %d %s", resp.StatusCode, body)
		}
		e.setPolicy(t, "luthien_proxy.policies.all_caps_policy:AllCapsPolicy", nil)
		e.up.Enqueue(fakeupstream.Scenario{Text: "switched"})
		_, body = e.do(t, http.MethodPost, "/v1/messages", anthropicBody(false, ""), anthropicHeaders)
		if !strings.Contains(string(body), "SWITCHED") {
			t.Errorf("policy switch did not apply to the next request: %s", body)
		}
		resp, body = e.do(t, http.MethodGet, "/api/v1/policy-types", "", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), "all_caps") {
			t.Errorf("policy types: %d %s", resp.StatusCode, body)
		}
	})
}
