package fakeupstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// ---- helpers ----

type sseEv struct {
	Event string // empty for OpenAI
	Data  string
}

// splitSSE splits an SSE byte stream into events. It fails the test on a
// malformed stream (an event not terminated by a blank line is reported as
// a trailing fragment).
func splitSSE(t *testing.T, b []byte) (evs []sseEv, trailing string) {
	t.Helper()
	s := string(b)
	for {
		i := strings.Index(s, "\n\n")
		if i < 0 {
			break
		}
		block := s[:i]
		s = s[i+2:]
		var ev sseEv
		for _, line := range strings.Split(block, "\n") {
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.Event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data = strings.TrimPrefix(line, "data: ")
			default:
				t.Fatalf("unexpected SSE line %q", line)
			}
		}
		evs = append(evs, ev)
	}
	return evs, s
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("invalid JSON %q: %v", s, err)
	}
	return m
}

// get walks a decoded JSON value along a path of keys and indices.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

type result struct {
	resp    *http.Response
	body    []byte
	readErr error
}

func do(t *testing.T, ctx context.Context, method, url, body string, hdr map[string]string) result {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	return result{resp, b, rerr}
}

func post(t *testing.T, url, body string) result {
	t.Helper()
	r := do(t, context.Background(), http.MethodPost, url, body, map[string]string{"Content-Type": "application/json"})
	if r.readErr != nil {
		t.Fatalf("reading body: %v", r.readErr)
	}
	return r
}

func eventNames(evs []sseEv) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Event)
	}
	return out
}

func waitDone(t *testing.T, s *Server, seq int) Request {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range s.Requests() {
			if r.Seq == seq && r.Done {
				return r
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("request %d did not finish", seq)
	return Request{}
}

const anthropicStreamBody = `{"model":"claude-x","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
const openAIStreamBody = `{"model":"gpt-x","stream":true,"messages":[{"role":"user","content":"hi"}]}`

// ---- Anthropic ----

func TestAnthropicStreamDefaultText(t *testing.T) {
	s := New()
	defer s.Close()
	r := post(t, s.URL+"/v1/messages", anthropicStreamBody)
	if r.resp.StatusCode != 200 {
		t.Fatalf("status %d", r.resp.StatusCode)
	}
	if ct := r.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := r.resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q", cc)
	}
	evs, rest := splitSSE(t, r.body)
	if rest != "" {
		t.Fatalf("trailing %q", rest)
	}
	want := []string{"message_start", "content_block_start",
		"content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop"}
	if got := eventNames(evs); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	wantStart := `{"type":"message_start","message":{"id":"msg_fake1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":` +
		fmt.Sprint(len(anthropicStreamBody)/4) + `,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`
	if evs[0].Data != wantStart {
		t.Errorf("message_start\n got %s\nwant %s", evs[0].Data, wantStart)
	}
	if evs[1].Data != `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` {
		t.Errorf("content_block_start %s", evs[1].Data)
	}
	var pieces []string
	for _, e := range evs[2:7] {
		m := decode(t, e.Data)
		if get(m, "delta", "type") != "text_delta" || get(m, "index") != 0.0 {
			t.Errorf("bad delta %s", e.Data)
		}
		pieces = append(pieces, get(m, "delta", "text").(string))
	}
	if want := []string{"Hello", " from", " the", " fake", " upstream."}; !reflect.DeepEqual(pieces, want) {
		t.Errorf("pieces %q, want %q", pieces, want)
	}
	if evs[7].Data != `{"type":"content_block_stop","index":0}` {
		t.Errorf("content_block_stop %s", evs[7].Data)
	}
	if evs[8].Data != `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}` {
		t.Errorf("message_delta %s", evs[8].Data)
	}
	if evs[9].Data != `{"type":"message_stop"}` {
		t.Errorf("message_stop %s", evs[9].Data)
	}
	if got := r.resp.Header.Get("request-id"); got != "req_fake1" {
		t.Errorf("request-id %q", got)
	}
	rec := waitDone(t, s, 1)
	if !bytes.Equal(rec.Sent, r.body) {
		t.Errorf("Sent differs from what the client read")
	}
	if rec.Status != 200 || rec.Cancelled {
		t.Errorf("status %d cancelled %v", rec.Status, rec.Cancelled)
	}
}

func TestAnthropicStreamThinkingToolsPings(t *testing.T) {
	s := New()
	defer s.Close()
	s.Enqueue(Scenario{
		Thinking:  "Let me think.",
		Text:      "Running it.",
		ToolCalls: []ToolCall{{Name: "bash", Arguments: `{"command":"ls -la"}`}, {ID: "toolu_custom", Name: "read", Arguments: `{"path":"/etc/hosts"}`}},
		ArgChunks: 4,
		Pings:     true,
	})
	r := post(t, s.URL+"/v1/messages?beta=true", anthropicStreamBody)
	evs, rest := splitSSE(t, r.body)
	if rest != "" {
		t.Fatalf("trailing %q", rest)
	}
	want := []string{"message_start",
		"content_block_start", "ping", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop", // thinking: 3 words + signature
		"content_block_start", "content_block_delta", "content_block_delta", "content_block_stop", // text: 2 words
		"content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop",
		"content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop",
		"message_delta", "message_stop"}
	if got := eventNames(evs); !reflect.DeepEqual(got, want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
	if evs[2].Data != `{"type":"ping"}` {
		t.Errorf("ping %s", evs[2].Data)
	}
	if evs[1].Data != `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}` {
		t.Errorf("thinking start %s", evs[1].Data)
	}
	// Reassemble blocks.
	type block struct {
		start map[string]any
		text  strings.Builder
		sig   string
	}
	blocks := map[int]*block{}
	for _, e := range evs {
		m := decode(t, e.Data)
		if m["type"] != e.Event {
			t.Errorf("event %s has type %v", e.Event, m["type"])
		}
		switch e.Event {
		case "content_block_start":
			idx := int(m["index"].(float64))
			if _, dup := blocks[idx]; dup || idx != len(blocks) {
				t.Errorf("block index %d out of order", idx)
			}
			blocks[idx] = &block{start: m["content_block"].(map[string]any)}
		case "content_block_delta":
			b := blocks[int(m["index"].(float64))]
			d := m["delta"].(map[string]any)
			switch d["type"] {
			case "thinking_delta":
				b.text.WriteString(d["thinking"].(string))
			case "signature_delta":
				b.sig = d["signature"].(string)
			case "text_delta":
				b.text.WriteString(d["text"].(string))
			case "input_json_delta":
				b.text.WriteString(d["partial_json"].(string))
			default:
				t.Errorf("unknown delta %v", d["type"])
			}
		}
	}
	if len(blocks) != 4 {
		t.Fatalf("%d blocks", len(blocks))
	}
	if blocks[0].start["type"] != "thinking" || blocks[0].text.String() != "Let me think." || blocks[0].sig == "" {
		t.Errorf("thinking block %v %q %q", blocks[0].start, blocks[0].text.String(), blocks[0].sig)
	}
	if blocks[1].start["type"] != "text" || blocks[1].text.String() != "Running it." {
		t.Errorf("text block %v %q", blocks[1].start, blocks[1].text.String())
	}
	if blocks[2].start["type"] != "tool_use" || blocks[2].start["id"] != "toolu_fake1_0" || blocks[2].start["name"] != "bash" ||
		blocks[2].text.String() != `{"command":"ls -la"}` {
		t.Errorf("tool block 0 %v %q", blocks[2].start, blocks[2].text.String())
	}
	if evs[12].Data != `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_fake1_0","name":"bash","input":{}}}` {
		t.Errorf("tool start %s", evs[11].Data)
	}
	if blocks[3].start["id"] != "toolu_custom" || blocks[3].text.String() != `{"path":"/etc/hosts"}` {
		t.Errorf("tool block 1 %v %q", blocks[3].start, blocks[3].text.String())
	}
	md := decode(t, evs[len(evs)-2].Data)
	if get(md, "delta", "stop_reason") != "tool_use" {
		t.Errorf("stop_reason %v", get(md, "delta", "stop_reason"))
	}
	// 3 thinking + 2 text + 4 + 4 argument deltas.
	if get(md, "usage", "output_tokens") != 13.0 {
		t.Errorf("output_tokens %v", get(md, "usage", "output_tokens"))
	}
	if rec, _ := s.LastRequest(); rec.RawQuery != "beta=true" || rec.Path != "/v1/messages" {
		t.Errorf("recorded path %q query %q", rec.Path, rec.RawQuery)
	}
}

func TestAnthropicNonStream(t *testing.T) {
	s := New()
	defer s.Close()
	s.Enqueue(Scenario{
		Thinking:  "Hmm.",
		Text:      "Sure <b>&</b>.",
		ToolCalls: []ToolCall{{Name: "bash", Arguments: `{"command": "ls"}`}},
		Usage:     &Usage{InputTokens: 10, OutputTokens: 20, CacheCreation: 3, CacheRead: 4},
	})
	r := post(t, s.URL+"/v1/messages", `{"model":"claude-y","max_tokens":5,"messages":[]}`)
	if r.resp.StatusCode != 200 || r.resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", r.resp.StatusCode, r.resp.Header.Get("Content-Type"))
	}
	sig := decode(t, string(r.body))["content"].([]any)[0].(map[string]any)["signature"].(string)
	if sig == "" {
		t.Fatal("empty signature")
	}
	want := `{"id":"msg_fake1","type":"message","role":"assistant","model":"claude-y","content":[` +
		`{"type":"thinking","thinking":"Hmm.","signature":"` + sig + `"},` +
		`{"type":"text","text":"Sure <b>&</b>."},` +
		`{"type":"tool_use","id":"toolu_fake1_0","name":"bash","input":{"command":"ls"}}],` +
		`"stop_reason":"tool_use","stop_sequence":null,` +
		`"usage":{"input_tokens":10,"cache_creation_input_tokens":3,"cache_read_input_tokens":4,"output_tokens":20}}`
	if string(r.body) != want {
		t.Errorf("body\n got %s\nwant %s", r.body, want)
	}
	rec := waitDone(t, s, 1)
	if !bytes.Equal(rec.Sent, r.body) {
		t.Error("Sent differs")
	}
}

// ---- OpenAI ----

func TestOpenAIStreamTextToolsUsage(t *testing.T) {
	s := New()
	defer s.Close()
	s.Enqueue(Scenario{
		Text:      "On it.",
		Thinking:  "ignored for OpenAI",
		ToolCalls: []ToolCall{{Name: "bash", Arguments: `{"command":"ls"}`}, {Name: "noargs"}},
		ArgChunks: 2,
	})
	body := `{"model":"gpt-x","stream":true,"stream_options":{"include_usage":true},"messages":[]}`
	r := post(t, s.URL+"/v1/chat/completions", body)
	if ct := r.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	evs, rest := splitSSE(t, r.body)
	if rest != "" {
		t.Fatalf("trailing %q", rest)
	}
	// role, 2 text, tool0 head + 2 args, tool1 head + 2 args, finish, usage, DONE
	if len(evs) != 12 {
		t.Fatalf("%d events: %v", len(evs), evs)
	}
	for _, e := range evs {
		if e.Event != "" {
			t.Errorf("OpenAI event has a name %q", e.Event)
		}
	}
	if evs[11].Data != "[DONE]" {
		t.Errorf("last %q", evs[11].Data)
	}
	wantFirst := `{"id":"chatcmpl-fake1","object":"chat.completion.chunk","created":1700000001,"model":"gpt-x","system_fingerprint":"fp_fake","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`
	if evs[0].Data != wantFirst {
		t.Errorf("first chunk\n got %s\nwant %s", evs[0].Data, wantFirst)
	}
	var text strings.Builder
	args := map[int]*strings.Builder{}
	names := map[int]string{}
	ids := map[int]string{}
	var finish any
	for i, e := range evs[:10] {
		m := decode(t, e.Data)
		if m["id"] != "chatcmpl-fake1" || m["object"] != "chat.completion.chunk" || m["model"] != "gpt-x" || m["created"] != 1700000001.0 {
			t.Errorf("chunk %d header: %s", i, e.Data)
		}
		if u, ok := m["usage"]; !ok || u != nil {
			t.Errorf("chunk %d: usage should be null: %s", i, e.Data)
		}
		if f := get(m, "choices", 0, "finish_reason"); f != nil {
			if i != 9 {
				t.Errorf("finish_reason on chunk %d", i)
			}
			finish = f
		}
		d := get(m, "choices", 0, "delta").(map[string]any)
		if c, ok := d["content"].(string); ok {
			text.WriteString(c)
		}
		if tcs, ok := d["tool_calls"].([]any); ok {
			tc := tcs[0].(map[string]any)
			idx := int(tc["index"].(float64))
			if args[idx] == nil {
				args[idx] = &strings.Builder{}
				ids[idx], _ = tc["id"].(string)
				names[idx], _ = get(tc, "function", "name").(string)
				if tc["type"] != "function" || get(tc, "function", "arguments") != "" {
					t.Errorf("tool head %s", e.Data)
				}
				continue
			}
			if _, hasID := tc["id"]; hasID {
				t.Errorf("argument chunk with id: %s", e.Data)
			}
			args[idx].WriteString(get(tc, "function", "arguments").(string))
		}
	}
	if text.String() != "On it." {
		t.Errorf("text %q", text.String())
	}
	if finish != "tool_calls" {
		t.Errorf("finish %v", finish)
	}
	if evs[9].Data != `{"id":"chatcmpl-fake1","object":"chat.completion.chunk","created":1700000001,"model":"gpt-x","system_fingerprint":"fp_fake","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null}` {
		t.Errorf("finish chunk %s", evs[9].Data)
	}
	if ids[0] != "call_fake1_0" || names[0] != "bash" || args[0].String() != `{"command":"ls"}` {
		t.Errorf("tool 0: %q %q %q", ids[0], names[0], args[0].String())
	}
	if ids[1] != "call_fake1_1" || names[1] != "noargs" || args[1].String() != `{}` {
		t.Errorf("tool 1: %q %q %q", ids[1], names[1], args[1].String())
	}
	// 2 text deltas + 2 + 2 argument deltas.
	wantUsage := fmt.Sprintf(`{"id":"chatcmpl-fake1","object":"chat.completion.chunk","created":1700000001,"model":"gpt-x","system_fingerprint":"fp_fake","choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":6,"total_tokens":%d}}`,
		len(body)/4, len(body)/4+6)
	if evs[10].Data != wantUsage {
		t.Errorf("usage chunk\n got %s\nwant %s", evs[10].Data, wantUsage)
	}
	if got := r.resp.Header.Get("x-request-id"); got != "req_fake1" {
		t.Errorf("x-request-id %q", got)
	}
}

func TestOpenAIStreamWithoutUsage(t *testing.T) {
	s := New()
	defer s.Close()
	r := post(t, s.URL+"/v1/chat/completions", openAIStreamBody)
	evs, _ := splitSSE(t, r.body)
	// role + 5 words + finish + DONE
	if len(evs) != 8 {
		t.Fatalf("%d events", len(evs))
	}
	for _, e := range evs[:7] {
		if _, ok := decode(t, e.Data)["usage"]; ok {
			t.Errorf("usage present without include_usage: %s", e.Data)
		}
	}
	if get(decode(t, evs[6].Data), "choices", 0, "finish_reason") != "stop" {
		t.Errorf("finish chunk %s", evs[6].Data)
	}
	if evs[7].Data != "[DONE]" {
		t.Errorf("last %q", evs[7].Data)
	}
}

func TestOpenAINonStream(t *testing.T) {
	s := New()
	defer s.Close()
	s.Enqueue(Scenario{Text: "Hi there."}, Scenario{ToolCalls: []ToolCall{{ID: "call_x", Name: "f", Arguments: `{"a":1}`}}, Usage: &Usage{InputTokens: 7, OutputTokens: 2, CacheRead: 5}})
	r := post(t, s.URL+"/v1/chat/completions", `{"model":"gpt-z","messages":[]}`)
	want := `{"id":"chatcmpl-fake1","object":"chat.completion","created":1700000001,"model":"gpt-z","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9},"system_fingerprint":"fp_fake"}`
	if string(r.body) != want {
		t.Errorf("body\n got %s\nwant %s", r.body, want)
	}
	r = post(t, s.URL+"/v1/chat/completions", `{"model":"gpt-z","messages":[]}`)
	want = `{"id":"chatcmpl-fake2","object":"chat.completion","created":1700000002,"model":"gpt-z","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_x","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}],"refusal":null},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9,"prompt_tokens_details":{"cached_tokens":5}},"system_fingerprint":"fp_fake"}`
	if string(r.body) != want {
		t.Errorf("body\n got %s\nwant %s", r.body, want)
	}
}

// ---- splitting ----

func TestChunksOneRunePerDelta(t *testing.T) {
	s := New()
	defer s.Close()
	text := "héllo wörld 🌍 日本"
	n := utf8.RuneCountInString(text)

	s.Enqueue(Scenario{Text: text, Chunks: 1000})
	r := post(t, s.URL+"/v1/messages", anthropicStreamBody)
	evs, _ := splitSSE(t, r.body)
	var got []string
	for _, e := range evs {
		if e.Event == "content_block_delta" {
			got = append(got, get(decode(t, e.Data), "delta", "text").(string))
		}
	}
	if len(got) != n || strings.Join(got, "") != text {
		t.Errorf("anthropic: %d deltas %q", len(got), got)
	}
	for _, g := range got {
		if utf8.RuneCountInString(g) != 1 {
			t.Errorf("delta %q is not one rune", g)
		}
	}

	s.Enqueue(Scenario{Text: text, Chunks: n})
	r = post(t, s.URL+"/v1/chat/completions", openAIStreamBody)
	evs, _ = splitSSE(t, r.body)
	got = nil
	for _, e := range evs[1:] {
		if e.Data == "[DONE]" {
			continue
		}
		if c, ok := get(decode(t, e.Data), "choices", 0, "delta", "content").(string); ok {
			got = append(got, c)
		}
	}
	if len(got) != n || strings.Join(got, "") != text {
		t.Errorf("openai: %d deltas %q", len(got), got)
	}
}

func TestSplitting(t *testing.T) {
	if got := splitRunes("abcdefgh", 3); !reflect.DeepEqual(got, []string{"abc", "def", "gh"}) {
		t.Errorf("splitRunes %q", got)
	}
	if got := splitRunes("ab", 5); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("splitRunes %q", got)
	}
	if got := splitWords("  lead and\ttrail  "); !reflect.DeepEqual(got, []string{"  lead", " and", "\ttrail  "}) {
		t.Errorf("splitWords %q", got)
	}
	if got := splitWords("one"); !reflect.DeepEqual(got, []string{"one"}) {
		t.Errorf("splitWords %q", got)
	}
	if got := splitText("x y", 1); !reflect.DeepEqual(got, []string{"x y"}) {
		t.Errorf("splitText %q", got)
	}
}

// ---- errors ----

func TestErrorStatuses(t *testing.T) {
	s := New()
	defer s.Close()
	cases := []struct {
		status int
		typ    string
	}{
		{400, "invalid_request_error"}, {401, "authentication_error"}, {403, "permission_error"},
		{404, "not_found_error"}, {413, "request_too_large"}, {429, "rate_limit_error"},
		{500, "api_error"}, {503, "overloaded_error"}, {529, "overloaded_error"},
	}
	for _, c := range cases {
		s.Enqueue(Scenario{Status: c.status})
		r := post(t, s.URL+"/v1/messages", anthropicStreamBody)
		if r.resp.StatusCode != c.status || r.resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%d: got %d %q", c.status, r.resp.StatusCode, r.resp.Header.Get("Content-Type"))
		}
		m := decode(t, string(r.body))
		if m["type"] != "error" || get(m, "error", "type") != c.typ || get(m, "error", "message") == "" {
			t.Errorf("%d: body %s", c.status, r.body)
		}
	}
	oai := []struct {
		status int
		typ    string
		code   any
	}{
		{400, "invalid_request_error", nil}, {401, "invalid_request_error", "invalid_api_key"},
		{404, "invalid_request_error", "model_not_found"}, {429, "requests", "rate_limit_exceeded"},
		{500, "server_error", nil}, {503, "server_error", nil},
	}
	for _, c := range oai {
		s.Enqueue(Scenario{Status: c.status})
		r := post(t, s.URL+"/v1/chat/completions", openAIStreamBody)
		if r.resp.StatusCode != c.status {
			t.Errorf("%d: got %d", c.status, r.resp.StatusCode)
		}
		m := decode(t, string(r.body))
		e, ok := m["error"].(map[string]any)
		if !ok || e["type"] != c.typ || e["code"] != c.code || e["message"] == "" {
			t.Errorf("%d: body %s", c.status, r.body)
		}
		if v, ok := e["param"]; !ok || v != nil {
			t.Errorf("%d: param %v", c.status, v)
		}
	}
	s.Enqueue(Scenario{Status: 418, ErrorBody: "teapot"})
	r := post(t, s.URL+"/v1/chat/completions", openAIStreamBody)
	if r.resp.StatusCode != 418 || string(r.body) != "teapot" {
		t.Errorf("custom error: %d %q", r.resp.StatusCode, r.body)
	}
	if rec, _ := s.LastRequest(); rec.Status != 418 {
		t.Errorf("recorded status %d", rec.Status)
	}
}

func TestErrorAfter(t *testing.T) {
	s := New()
	defer s.Close()
	s.Enqueue(Scenario{ErrorAfter: 3})
	r := post(t, s.URL+"/v1/messages", anthropicStreamBody)
	evs, rest := splitSSE(t, r.body)
	if rest != "" {
		t.Fatalf("trailing %q", rest)
	}
	if got, want := eventNames(evs), []string{"message_start", "content_block_start", "content_block_delta", "error"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v", got)
	}
	if !strings.HasSuffix(string(r.body), "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n") {
		t.Errorf("error event: %q", r.body)
	}

	s.Enqueue(Scenario{ErrorAfter: 2})
	r = post(t, s.URL+"/v1/chat/completions", openAIStreamBody)
	evs, _ = splitSSE(t, r.body)
	if len(evs) != 3 {
		t.Fatalf("%d events", len(evs))
	}
	if evs[2].Data != `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}` {
		t.Errorf("error chunk %s", evs[2].Data)
	}
	rec := waitDone(t, s, 2)
	if !bytes.Equal(rec.Sent, r.body) || rec.Cancelled {
		t.Errorf("Sent/Cancelled: %v", rec.Cancelled)
	}
}

func TestCutAfter(t *testing.T) {
	s := New()
	defer s.Close()
	for _, c := range []struct{ path, body string }{
		{"/v1/messages", anthropicStreamBody},
		{"/v1/chat/completions", openAIStreamBody},
	} {
		s.Reset()
		s.Enqueue(Scenario{CutAfter: 3})
		r := do(t, context.Background(), http.MethodPost, s.URL+c.path, c.body, nil)
		if r.readErr == nil {
			t.Errorf("%s: expected a read error from a cut stream", c.path)
		} else if !errors.Is(r.readErr, io.ErrUnexpectedEOF) {
			t.Logf("%s: read error %v", c.path, r.readErr)
		}
		evs, rest := splitSSE(t, r.body)
		if len(evs) != 3 || rest != "" {
			t.Errorf("%s: %d events, rest %q", c.path, len(evs), rest)
		}
		last, _ := s.LastRequest()
		rec := waitDone(t, s, last.Seq)
		if !bytes.Equal(rec.Sent, r.body) {
			t.Errorf("%s: Sent %q, client read %q", c.path, rec.Sent, r.body)
		}
		if rec.Cancelled {
			t.Errorf("%s: a cut is not a client cancellation", c.path)
		}
	}
	// The server still works after cuts.
	r := post(t, s.URL+"/v1/messages", anthropicStreamBody)
	if evs, _ := splitSSE(t, r.body); len(evs) != 10 {
		t.Errorf("after cut: %d events", len(evs))
	}
}

// ---- recording, queue, responder ----

func TestRecordingQueueResponder(t *testing.T) {
	s := New()
	defer s.Close()
	s.Enqueue(Scenario{Text: "first"}, Scenario{Text: "second"})
	s.SetResponder(func(r Request) Scenario {
		if strings.Contains(string(r.Body), "judge") {
			return Scenario{Text: "verdict: allow"}
		}
		return Scenario{Text: "not a judge"}
	})
	s.SetDefault(Scenario{Text: "default"})

	text := func(body []byte) string {
		return get(decode(t, string(body)), "content", 0, "text").(string)
	}
	req := func(body string) string {
		r := do(t, context.Background(), http.MethodPost, s.URL+"/v1/messages", body,
			map[string]string{"x-api-key": "sk-test", "anthropic-version": "2023-06-01", "X-Custom": "a"})
		return text(r.body)
	}
	got := []string{
		req(`{"model":"m","messages":[{"role":"user","content":"judge this"}]}`),
		req(`{"model":"m","messages":[]}`),
		req(`{"model":"m","messages":[{"role":"user","content":"judge this"}]}`),
		req(`{"model":"m","messages":[]}`),
	}
	s.SetResponder(nil)
	got = append(got, req(`{"model":"m"}`))
	want := []string{"first", "second", "verdict: allow", "not a judge", "default"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("answers %q, want %q", got, want)
	}

	// Invalid JSON is rejected and does not consume a scenario.
	s.Enqueue(Scenario{Text: "kept"})
	r := post(t, s.URL+"/v1/messages", `{not json`)
	if r.resp.StatusCode != 400 || get(decode(t, string(r.body)), "error", "type") != "invalid_request_error" {
		t.Errorf("invalid JSON: %d %s", r.resp.StatusCode, r.body)
	}
	if r := post(t, s.URL+"/v1/messages", `{"model":"m"}`); text(r.body) != "kept" {
		t.Errorf("queue consumed by invalid request")
	}

	do(t, context.Background(), http.MethodGet, s.URL+"/v1/models?x=1", "", nil)

	reqs := s.Requests()
	if len(reqs) != 8 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, r := range reqs {
		if r.Seq != i+1 || !r.Done || r.Received.IsZero() {
			t.Errorf("request %d: seq %d done %v", i, r.Seq, r.Done)
		}
	}
	first := reqs[0]
	if first.Method != "POST" || first.Path != "/v1/messages" || first.Header.Get("x-api-key") != "sk-test" ||
		first.Header.Get("X-Custom") != "a" || string(first.Body) != `{"model":"m","messages":[{"role":"user","content":"judge this"}]}` {
		t.Errorf("first request %+v", first)
	}
	if get(first.JSON(), "messages", 0, "content") != "judge this" {
		t.Errorf("JSON() %v", first.JSON())
	}
	if reqs[5].JSON() != nil {
		t.Errorf("JSON() of invalid body should be nil")
	}
	last, ok := s.LastRequest()
	if !ok || last.Path != "/v1/models" || last.RawQuery != "x=1" || last.Method != "GET" {
		t.Errorf("last %+v", last)
	}
	if s.Count("/v1/messages") != 7 || s.Count("/v1/models") != 1 || s.Count("/nope") != 0 {
		t.Errorf("counts %d %d", s.Count("/v1/messages"), s.Count("/v1/models"))
	}
	// Returned copies are independent.
	reqs[0].Header.Set("x-api-key", "changed")
	if s.Requests()[0].Header.Get("x-api-key") != "sk-test" {
		t.Error("Requests does not return copies")
	}

	s.Enqueue(Scenario{Text: "dropped"})
	s.Reset()
	if len(s.Requests()) != 0 || s.Count("/v1/messages") != 0 {
		t.Error("Reset did not clear requests")
	}
	if _, ok := s.LastRequest(); ok {
		t.Error("LastRequest after Reset")
	}
	if r := post(t, s.URL+"/v1/messages", `{"model":"m"}`); text(r.body) != DefaultText {
		t.Errorf("after Reset: %q", text(r.body))
	}
	if last, _ := s.LastRequest(); last.Seq != 9 {
		t.Errorf("seq after Reset %d", last.Seq)
	}
}

func TestOtherEndpoints(t *testing.T) {
	s := New()
	defer s.Close()
	body := `{"model":"claude-x","messages":[{"role":"user","content":"count me"}]}`
	r := post(t, s.URL+"/v1/messages/count_tokens", body)
	if string(r.body) != fmt.Sprintf(`{"input_tokens":%d}`, len(body)/4) {
		t.Errorf("count_tokens %s", r.body)
	}
	r = do(t, context.Background(), http.MethodGet, s.URL+"/v1/models", "", nil)
	m := decode(t, string(r.body))
	if m["object"] != "list" || get(m, "data", 0, "id") != "gpt-fake" || get(m, "data", 1, "id") != "claude-fake" {
		t.Errorf("models %s", r.body)
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		r = do(t, context.Background(), method, s.URL+"/", "", nil)
		if r.resp.StatusCode != 200 || len(r.body) != 0 {
			t.Errorf("%s /: %d %q", method, r.resp.StatusCode, r.body)
		}
	}
	r = do(t, context.Background(), http.MethodPost, s.URL+"/v1/nope", "{}", nil)
	if r.resp.StatusCode != 404 || decode(t, string(r.body))["error"] == nil {
		t.Errorf("404: %d %s", r.resp.StatusCode, r.body)
	}
	r = do(t, context.Background(), http.MethodGet, s.URL+"/v1/messages", "", nil)
	if r.resp.StatusCode != 405 {
		t.Errorf("GET /v1/messages: %d", r.resp.StatusCode)
	}
	if s.Count("/") != 2 || len(s.Requests()) != 6 {
		t.Errorf("recorded %d", len(s.Requests()))
	}
}

func TestStopReasonAndExtra(t *testing.T) {
	s := New()
	defer s.Close()
	extra := map[string]any{"service_tier": "fake", "zz_custom": map[string]any{"a": 1}}
	s.Enqueue(Scenario{StopReason: "max_tokens", Extra: extra}, Scenario{StopReason: "max_tokens", Extra: extra}, Scenario{StopReason: "max_tokens", Extra: extra})

	r := post(t, s.URL+"/v1/messages", anthropicStreamBody)
	evs, _ := splitSSE(t, r.body)
	start := decode(t, evs[0].Data)
	if get(start, "message", "service_tier") != "fake" || get(start, "message", "zz_custom", "a") != 1.0 {
		t.Errorf("message_start %s", evs[0].Data)
	}
	if get(decode(t, evs[len(evs)-2].Data), "delta", "stop_reason") != "max_tokens" {
		t.Errorf("message_delta %s", evs[len(evs)-2].Data)
	}

	r = post(t, s.URL+"/v1/chat/completions", openAIStreamBody)
	evs, _ = splitSSE(t, r.body)
	for _, e := range evs[:len(evs)-1] {
		if decode(t, e.Data)["service_tier"] != "fake" {
			t.Errorf("chunk without extra: %s", e.Data)
		}
	}
	if get(decode(t, evs[len(evs)-2].Data), "choices", 0, "finish_reason") != "length" {
		t.Errorf("finish chunk %s", evs[len(evs)-2].Data)
	}

	r = post(t, s.URL+"/v1/chat/completions", `{"model":"m"}`)
	if !strings.HasSuffix(string(r.body), `"system_fingerprint":"fp_fake","service_tier":"fake","zz_custom":{"a":1}}`) {
		t.Errorf("non-stream extra: %s", r.body)
	}
	if get(decode(t, string(r.body)), "choices", 0, "finish_reason") != "length" {
		t.Errorf("non-stream finish %s", r.body)
	}
}

// ---- timing, cancellation, concurrency ----

func TestDelays(t *testing.T) {
	s := New()
	defer s.Close()
	s.Enqueue(Scenario{FirstDelay: 100 * time.Millisecond})
	start := time.Now()
	post(t, s.URL+"/v1/chat/completions", `{"model":"m"}`)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("non-stream FirstDelay not honoured: %v", d)
	}
	s.Enqueue(Scenario{Text: "a b c d", Interval: 20 * time.Millisecond})
	start = time.Now()
	r := post(t, s.URL+"/v1/messages", anthropicStreamBody)
	// 9 events, 8 intervals.
	if d := time.Since(start); d < 160*time.Millisecond {
		t.Errorf("Interval not honoured: %v", d)
	}
	if evs, _ := splitSSE(t, r.body); len(evs) != 9 {
		t.Errorf("%d events", len(evs))
	}
}

func TestCancellation(t *testing.T) {
	s := New()
	defer s.Close()
	s.Enqueue(Scenario{Chunks: 1000, Interval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/messages", strings.NewReader(anthropicStreamBody))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	last, ok := s.LastRequest()
	if !ok {
		t.Fatal("not recorded")
	}
	if !s.WaitCancelled(last.Seq, 5*time.Second) {
		t.Fatal("cancellation not observed")
	}
	rec := waitDone(t, s, last.Seq)
	if !rec.Cancelled || len(rec.Sent) == 0 || !strings.HasPrefix(string(rec.Sent), "event: message_start\n") {
		t.Errorf("record: cancelled %v sent %q", rec.Cancelled, rec.Sent)
	}
	if bytes.Contains(rec.Sent, []byte("message_stop")) {
		t.Error("the stream finished although the client went away")
	}

	// A finished request is not cancelled; WaitCancelled returns early.
	post(t, s.URL+"/v1/messages", anthropicStreamBody)
	last, _ = s.LastRequest()
	start := time.Now()
	if s.WaitCancelled(last.Seq, 5*time.Second) {
		t.Error("completed request reported cancelled")
	}
	if time.Since(start) > 2*time.Second {
		t.Error("WaitCancelled did not return early for a finished request")
	}

	// A cancelled non-stream request waiting on FirstDelay.
	s.Enqueue(Scenario{FirstDelay: time.Hour})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	req2, _ := http.NewRequestWithContext(ctx2, http.MethodPost, s.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	if _, err := http.DefaultClient.Do(req2); err == nil {
		t.Fatal("expected a timeout")
	}
	if !s.WaitCancelled(last.Seq+1, 5*time.Second) {
		t.Error("non-stream cancellation not observed")
	}
	// A request that never arrives times out.
	if s.WaitCancelled(1000, 20*time.Millisecond) {
		t.Error("unknown request reported cancelled")
	}
}

func TestConcurrentStreams(t *testing.T) {
	s := New()
	defer s.Close()
	s.SetResponder(func(r Request) Scenario {
		prompt, _ := get(r.JSON(), "messages", 0, "content").(string)
		return Scenario{Text: "echo " + prompt, Chunks: 8, Interval: 5 * time.Millisecond}
	})
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prompt := fmt.Sprintf("prompt number %d", i)
			var path, body string
			if i%2 == 0 {
				path = "/v1/messages"
				body = fmt.Sprintf(`{"model":"m","stream":true,"messages":[{"role":"user","content":%q}]}`, prompt)
			} else {
				path = "/v1/chat/completions"
				body = fmt.Sprintf(`{"model":"m","stream":true,"messages":[{"role":"user","content":%q}]}`, prompt)
			}
			resp, err := http.Post(s.URL+path, "application/json", strings.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				errs <- err
				return
			}
			var text strings.Builder
			for _, block := range strings.Split(string(b), "\n\n") {
				for _, line := range strings.Split(block, "\n") {
					data, ok := strings.CutPrefix(line, "data: ")
					if !ok || data == "[DONE]" {
						continue
					}
					var m map[string]any
					if err := json.Unmarshal([]byte(data), &m); err != nil {
						errs <- err
						return
					}
					if s, ok := get(m, "delta", "text").(string); ok {
						text.WriteString(s)
					}
					if s, ok := get(m, "choices", 0, "delta", "content").(string); ok {
						text.WriteString(s)
					}
				}
			}
			if text.String() != "echo "+prompt {
				errs <- fmt.Errorf("stream %d got %q", i, text.String())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	reqs := s.Requests()
	if len(reqs) != n {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	seen := map[int]bool{}
	for _, r := range reqs {
		if seen[r.Seq] {
			t.Errorf("duplicate seq %d", r.Seq)
		}
		seen[r.Seq] = true
	}
}

func TestCloseAbortsStreams(t *testing.T) {
	s := New()
	s.SetDefault(Scenario{Interval: time.Hour})
	resp, err := http.Post(s.URL+"/v1/messages", "application/json", strings.NewReader(anthropicStreamBody))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	done := make(chan struct{})
	go func() {
		s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on an in-flight stream")
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("expected the aborted stream to fail")
	}
	s.Close() // idempotent
	if r, _ := s.LastRequest(); r.Cancelled {
		t.Error("Close is not a client cancellation")
	}
}

func TestSetRecordingOff(t *testing.T) {
	s := New()
	defer s.Close()
	s.SetDefault(Scenario{Text: "a b c"})
	s.SetRecording(false)
	r := post(t, s.URL+"/v1/messages", anthropicStreamBody)
	if r.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", r.resp.StatusCode, r.body)
	}
	if evs, _ := splitSSE(t, r.body); len(evs) != 8 {
		t.Fatalf("got %d events, want 8 (3 deltas): %s", len(evs), r.body)
	}
	if n := len(s.Requests()); n != 0 {
		t.Fatalf("recording off: %d requests kept, want 0", n)
	}
	s.SetRecording(true)
	post(t, s.URL+"/v1/messages", anthropicStreamBody)
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Seq != 2 {
		t.Fatalf("recording on again: requests %+v, want only seq 2", reqs)
	}
}

// LastFinished waits for the response to be written to its end.
func TestLastFinished(t *testing.T) {
	s := New()
	defer s.Close()
	if _, ok := s.LastFinished(time.Millisecond); ok {
		t.Fatal("a request before any arrived")
	}
	s.Enqueue(Scenario{Text: "slow", FirstDelay: 150 * time.Millisecond})
	go func() {
		resp, err := http.Post(s.AnthropicBaseURL()+"/v1/messages", "application/json",
			strings.NewReader(`{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	for s.Count("/v1/messages") == 0 {
		time.Sleep(time.Millisecond)
	}
	if r, _ := s.LastRequest(); r.Done {
		t.Fatal("the slow response finished at once")
	}
	r, ok := s.LastFinished(5 * time.Second)
	if !ok || !r.Done || !strings.Contains(string(r.Sent), "message_stop") {
		t.Errorf("LastFinished: done %v, sent %q", r.Done, r.Sent)
	}
}
