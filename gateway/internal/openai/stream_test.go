package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"luthien.dev/bench/fakeupstream"
	"luthien.dev/canon"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/dialect/dialecttest"
	"luthien.dev/gateway/internal/sse"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// upstreamEvent is one SSE event of an input stream and what it decoded to.
type upstreamEvent = dialecttest.UpstreamEvent

func decodeStream(t testing.TB, in []byte) []upstreamEvent {
	t.Helper()
	return dialecttest.DecodeStream(t, Dialect{}, in)
}

var (
	eventsJSON  = dialecttest.EventsJSON
	checkGolden = dialecttest.CheckGolden
)

// encodeStream encodes every event with Event, the way the gateway does
// when a policy changed them all: with its upstream event as template, or,
// without templates, as events a policy created (seq 0).
func encodeStream(t testing.TB, req dialect.Request, ups []upstreamEvent, templates bool) []byte {
	t.Helper()
	enc := Dialect{}.NewEncoder(req)
	var buf bytes.Buffer
	for _, u := range ups {
		for _, ev := range u.Evs {
			var err error
			if templates {
				err = enc.Event(&buf, ev, u.Raw)
			} else {
				c := proto.Clone(ev).(*cpv1.StreamEvent)
				c.Seq = 0
				err = enc.Event(&buf, c, nil)
			}
			if err != nil {
				t.Fatalf("encode %v: %v", ev, err)
			}
		}
	}
	return buf.Bytes()
}

var createdRE = regexp.MustCompile(`"created":\d+`)

// normalizeCreated replaces the creation time the encoder takes from the
// clock when it has no upstream chunk to copy it from.
func normalizeCreated(b []byte) []byte {
	return createdRE.ReplaceAll(b, []byte(`"created":1700000000`))
}

// input is a stream and the request that asked for it.
type input struct {
	req dialect.Request
	in  []byte
}

// inputs returns the golden input streams by name; those named *usage*
// answer a request with stream_options.include_usage.
func inputs(t testing.TB) map[string]input {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.sse"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	out := map[string]input{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".sse")
		out[name] = input{dialect.Request{Stream: true, IncludeUsage: strings.Contains(name, "usage")}, b}
	}
	return out
}

func TestGolden(t *testing.T) {
	for name, in := range inputs(t) {
		t.Run(name, func(t *testing.T) {
			ups := decodeStream(t, in.in)
			base := filepath.Join("testdata", name)
			checkGolden(t, base+".events.golden", eventsJSON(t, ups))
			checkGolden(t, base+".encoded.golden", encodeStream(t, in.req, ups, true))
			checkGolden(t, base+".synthetic.golden", normalizeCreated(encodeStream(t, in.req, ups, false)))
		})
	}
}

// fakeStreams returns streams of the fake upstream for a range of scenarios.
func fakeStreams(t testing.TB) map[string]input {
	t.Helper()
	srv := fakeupstream.New()
	defer srv.Close()
	scenarios := map[string]fakeupstream.Scenario{
		"default": {},
		"chars":   {Text: "a <b> & \"c\"\n\td 🎉 é\u2028", Chunks: 40},
		"tools": {Text: "Running.", ToolCalls: []fakeupstream.ToolCall{
			{Name: "bash", Arguments: `{"command":"ls -la"}`},
			{Name: "read", Arguments: `{"path":"/tmp/ü.txt"}`, ID: "call_x"}}, ArgChunks: 5},
		"only tools": {ToolCalls: []fakeupstream.ToolCall{{Name: "noop"}, {Name: "noop"}}},
		"length":     {Text: "cut", StopReason: "max_tokens", Usage: &fakeupstream.Usage{InputTokens: 9, OutputTokens: 3, CacheRead: 7}},
		"error":      {Text: "one two three four", ErrorAfter: 3},
		"extra":      {Extra: map[string]any{"service_tier": "default", "obfuscation": "abc"}},
	}
	out := map[string]input{}
	for name, sc := range scenarios {
		for _, usage := range []bool{false, true} {
			srv.Enqueue(sc)
			body := `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`
			if usage {
				body = `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
			}
			resp, err := http.Post(srv.OpenAIBaseURL()+"/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: status %d, %v", name, resp.StatusCode, err)
			}
			out[fmt.Sprintf("fake %s usage=%v", name, usage)] = input{dialect.Request{Stream: true, IncludeUsage: usage}, b}
		}
	}
	return out
}

// allInputs is the golden inputs and the fake upstream's streams.
func allInputs(t testing.TB) map[string]input {
	out := inputs(t)
	for name, in := range fakeStreams(t) {
		out[name] = in
	}
	return out
}

// TestRawRoundTrip: decoding then writing every event raw gives back the
// input byte for byte.
func TestRawRoundTrip(t *testing.T) {
	for name, in := range allInputs(t) {
		t.Run(name, func(t *testing.T) {
			enc := Dialect{}.NewEncoder(in.req)
			var buf bytes.Buffer
			for _, u := range decodeStream(t, in.in) {
				if err := enc.Raw(&buf, u.Raw, u.Evs); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(buf.Bytes(), in.in) {
				t.Errorf("raw round trip differs\n--- got\n%s\n--- want\n%s", buf.Bytes(), in.in)
			}
		})
	}
}

// summary is what a stream means to a client: the accumulated message, the
// in-stream errors and the usage chunks.
type summary struct {
	msg    *cpv1.Message
	errors []*cpv1.StreamError
	usage  []string
}

func summarize(t testing.TB, ups []upstreamEvent) summary {
	var acc canon.Accumulator
	var s summary
	for _, u := range ups {
		for _, ev := range u.Evs {
			acc.Add(ev)
			if e := ev.GetError(); e != nil {
				s.errors = append(s.errors, e)
			}
			if o := ev.GetOpaque(); o.GetType() == "openai.usage" {
				var v struct {
					Usage json.RawMessage `json:"usage"`
				}
				if err := json.Unmarshal(o.GetJson(), &v); err != nil {
					t.Fatal(err)
				}
				s.usage = append(s.usage, string(v.Usage))
			}
		}
	}
	s.msg = acc.Message()
	return s
}

func (s summary) equal(o summary) bool {
	if len(s.errors) != len(o.errors) || strings.Join(s.usage, "\n") != strings.Join(o.usage, "\n") {
		return false
	}
	for i := range s.errors {
		if !proto.Equal(s.errors[i], o.errors[i]) {
			return false
		}
	}
	return proto.Equal(s.msg, o.msg)
}

// TestSyntheticRoundTrip: decoding, encoding every event with Event and
// decoding again gives the same message (text, tool calls and their
// arguments, stop reason), the same errors and the same usage.
func TestSyntheticRoundTrip(t *testing.T) {
	for name, in := range allInputs(t) {
		t.Run(name, func(t *testing.T) {
			ups := decodeStream(t, in.in)
			want := summarize(t, ups)
			if len(want.msg.GetContent()) == 0 {
				t.Fatal("input decodes to no content")
			}
			for _, templates := range []bool{true, false} {
				out := encodeStream(t, in.req, ups, templates)
				got := summarize(t, decodeStream(t, out))
				if !got.equal(want) {
					t.Errorf("templates=%v: round trip changed the stream\n got %v %v %v\nwant %v %v %v\n%s",
						templates, got.msg, got.errors, got.usage, want.msg, want.errors, want.usage, out)
				}
			}
		})
	}
}

// describe renders an event briefly for the decoder tests.
func describe(ev *cpv1.StreamEvent) string {
	switch x := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_MessageStart:
		return fmt.Sprintf("message_start %s %s", x.MessageStart.GetId(), x.MessageStart.GetModel())
	case *cpv1.StreamEvent_ContentBlockStart:
		b := x.ContentBlockStart.GetBlock()
		if tu := b.GetToolUse(); tu != nil {
			return fmt.Sprintf("start %d tool %s %s %q", x.ContentBlockStart.GetIndex(), tu.GetId(), tu.GetName(), tu.GetInputJson())
		}
		if b.GetText() != nil {
			return fmt.Sprintf("start %d text", x.ContentBlockStart.GetIndex())
		}
	case *cpv1.StreamEvent_ContentBlockDelta:
		d := x.ContentBlockDelta
		switch {
		case d.GetText() != nil:
			return fmt.Sprintf("delta %d text %q", d.GetIndex(), d.GetText().GetText())
		case d.GetInputJson() != nil:
			return fmt.Sprintf("delta %d json %q", d.GetIndex(), d.GetInputJson().GetPartialJson())
		}
	case *cpv1.StreamEvent_ContentBlockStop:
		return fmt.Sprintf("stop %d", x.ContentBlockStop.GetIndex())
	case *cpv1.StreamEvent_MessageDelta:
		s := "message_delta " + x.MessageDelta.GetStopReason()
		if u := x.MessageDelta.GetUsage(); u != nil {
			s += fmt.Sprintf(" usage %d/%d/%d", u.GetInputTokens(), u.GetOutputTokens(), u.GetCacheReadInputTokens())
		}
		return s
	case *cpv1.StreamEvent_MessageStop:
		return "message_stop"
	case *cpv1.StreamEvent_Error:
		return fmt.Sprintf("error %s %s", x.Error.GetType(), x.Error.GetMessage())
	case *cpv1.StreamEvent_Opaque:
		return fmt.Sprintf("opaque %s %s", x.Opaque.GetType(), x.Opaque.GetJson())
	}
	return ev.String()
}

// chunk is a chunk of response "c1" whose choice 0 has delta d and finish
// reason f (JSON).
func chunk(d, f string) string {
	return `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":` + d + `,"logprobs":null,"finish_reason":` + f + `}]}` + "\n\n"
}

func TestDecode(t *testing.T) {
	role := chunk(`{"role":"assistant","content":""}`, "null")
	done := "data: [DONE]\n\n"
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"content in the first chunk", []string{chunk(`{"role":"assistant","content":"Hi"}`, "null")},
			[]string{`message_start c1 m start 0 text delta 0 text "Hi"`}},
		{"content and finish in one chunk", []string{role, chunk(`{"content":"Hi"}`, `"stop"`), done},
			[]string{"message_start c1 m", `start 0 text delta 0 text "Hi" stop 0 message_delta end_turn`, "message_stop"}},
		{"DONE without finish closes the message", []string{role, chunk(`{"content":"Hi"}`, "null"), done},
			[]string{"message_start c1 m", `start 0 text delta 0 text "Hi"`, "stop 0 message_delta  message_stop"}},
		{"DONE alone", []string{done}, []string{"message_start   message_delta  message_stop"}},
		{"empty content is nothing", []string{role, chunk(`{"content":""}`, "null")},
			[]string{"message_start c1 m", `opaque openai.chunk {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":null}]}`}},
		{"text after a tool call opens a new block", []string{role,
			chunk(`{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]}`, "null"),
			chunk(`{"content":"and"}`, "null"),
			chunk(`{}`, `"tool_calls"`)},
			[]string{"message_start c1 m", `start 0 tool call_1 f "" delta 0 json "{}"`, `stop 0 start 1 text delta 1 text "and"`, "stop 1 message_delta tool_use"}},
		{"tool call without index is index 0", []string{role,
			chunk(`{"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}`, "null"),
			chunk(`{"tool_calls":[{"function":{"arguments":"{\"a\":1}"}}]}`, "null")},
			[]string{"message_start c1 m", `start 0 tool call_1 f ""`, `delta 0 json "{\"a\":1}"`}},
		{"two tool calls in one chunk", []string{role,
			chunk(`{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{}"}},{"index":1,"id":"call_2","function":{"name":"g","arguments":"{}"}}]}`, "null")},
			[]string{"message_start c1 m", `start 0 tool call_1 f "" delta 0 json "{}" stop 0 start 1 tool call_2 g "" delta 1 json "{}"`}},
		{"usage in the finish chunk", []string{role,
			`data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":4}}}` + "\n\n"},
			[]string{"message_start c1 m", "message_delta max_tokens usage 5/2/4"}},
		{"usage-only chunk", []string{role, chunk(`{}`, `"stop"`),
			`data: {"id":"c1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}` + "\n\n"},
			[]string{"message_start c1 m", "message_delta end_turn",
				`opaque openai.usage {"id":"c1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`}},
		{"another choice is opaque", []string{role,
			`data: {"id":"c1","choices":[{"index":1,"delta":{"content":"other"},"finish_reason":null}]}` + "\n\n"},
			[]string{"message_start c1 m", `opaque openai.chunk {"id":"c1","choices":[{"index":1,"delta":{"content":"other"},"finish_reason":null}]}`}},
		{"a chunk after the finish is opaque", []string{role, chunk(`{}`, `"stop"`), chunk(`{"content":"late"}`, "null")},
			[]string{"message_start c1 m", "message_delta end_turn",
				`opaque openai.chunk {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"late"},"logprobs":null,"finish_reason":null}]}`}},
		{"comment", []string{": keep-alive\n\n"}, []string{"opaque sse.comment : keep-alive\n\n"}},
		{"finish reasons", []string{role, chunk(`{}`, `"content_filter"`)},
			[]string{"message_start c1 m", "message_delta content_filter"}},
		{"errors", []string{
			`data: {"error":{"message":"slow down","type":"rate_limit_exceeded"}}` + "\n\n",
			`data: {"error":{"message":"bad","type":"invalid_request_error"}}` + "\n\n",
			`data: {"error":{"message":"oops","type":"server_error","param":null,"code":null}}` + "\n\n",
			`data: {"error":{"message":"busy","type":"server_error","param":null,"code":"overloaded"}}` + "\n\n",
			`data: {"error":{"message":"key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}` + "\n\n",
			`data: {"error":{"message":"odd","type":"server_error","param":null,"code":42}}` + "\n\n"},
			[]string{"error rate_limit_error slow down", "error invalid_request_error bad", "error api_error oops",
				"error overloaded_error busy", "error authentication_error key", "error api_error odd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := Dialect{}.NewDecoder()
			var got []string
			for _, in := range tt.in {
				ev, err := sse.NewReader(strings.NewReader(in)).Next()
				if err != nil {
					t.Fatal(err)
				}
				evs, err := dec.Decode(ev)
				if err != nil {
					t.Fatalf("Decode(%q): %v", in, err)
				}
				var parts []string
				for _, e := range evs {
					parts = append(parts, describe(e))
				}
				got = append(got, strings.Join(parts, " "))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, in := range []string{"data: {\n\n", "data: [1]\n\n", "data: \"x\"\n\n", `data: {"choices":{}}` + "\n\n"} {
		ev, err := sse.NewReader(strings.NewReader(in)).Next()
		if err != nil {
			t.Fatal(err)
		}
		if evs, err := (Dialect{}).NewDecoder().Decode(ev); err == nil {
			t.Errorf("Decode(%q) = %v, want an error", in, evs)
		}
	}
}

func TestEncodeEvent(t *testing.T) {
	start := &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{Id: "chatcmpl-1", Model: "gpt-4o"}}}
	template := []byte(`data: {"id":"chatcmpl-up","object":"chat.completion.chunk","created":1761500000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n")
	const env = `data: {"id":"chatcmpl-up","object":"chat.completion.chunk","created":1761500000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_1","choices":[{"index":0,"delta":`
	tests := []struct {
		name string
		ev   *cpv1.StreamEvent
		want string
	}{
		{"text delta keeps html characters", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
			Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: "<a> & \"b\"\n"}}}}},
			env + `{"content":"<a> & \"b\"\n"},"logprobs":null,"finish_reason":null}]}` + "\n\n"},
		{"text block start has no chunk", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{
			Index: 1, Block: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{}}}}}}, ""},
		{"tool start", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{
			Index: 2, Block: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "call_1", Name: "f"}}}}}},
			env + `{"tool_calls":[{"function":{"arguments":"","name":"f"},"id":"call_1","index":0,"type":"function"}]},"logprobs":null,"finish_reason":null}]}` + "\n\n"},
		{"tool arguments", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
			Index: 2, Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: `{"a":`}}}}},
			env + `{"tool_calls":[{"function":{"arguments":"{\"a\":"},"index":0}]},"logprobs":null,"finish_reason":null}]}` + "\n\n"},
		{"arguments of an unknown block are dropped", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
			Index: 7, Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: `{}`}}}}}, ""},
		{"thinking has no chunk", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
			Delta: &cpv1.ContentBlockDelta_Thinking{Thinking: &cpv1.ThinkingDelta{Thinking: "hm"}}}}}, ""},
		{"block stop has no chunk", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{}}}, ""},
		{"ping has no chunk", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Ping{Ping: &cpv1.Ping{}}}, ""},
		{"message delta", &cpv1.StreamEvent{Seq: 5, Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: "max_tokens",
			Usage: &cpv1.Usage{OutputTokens: 3}}}},
			env + `{},"logprobs":null,"finish_reason":"length"}]}` + "\n\n"},
		{"policy's message delta adds the usage chunk", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: "tool_use",
			Usage: &cpv1.Usage{InputTokens: 4, OutputTokens: 3}}}},
			env + `{},"logprobs":null,"finish_reason":"tool_calls"}]}` + "\n\n" +
				`data: {"id":"chatcmpl-up","object":"chat.completion.chunk","created":1761500000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":3,"total_tokens":7}}` + "\n\n"},
		{"message stop", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}}, "data: [DONE]\n\n"},
		{"error", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Error{Error: &cpv1.StreamError{Type: "overloaded_error", Message: "Overloaded"}}},
			`data: {"error":{"message":"Overloaded","type":"server_error","param":null,"code":"overloaded"}}` + "\n\n"},
		{"invalid request error", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Error{Error: &cpv1.StreamError{Type: "invalid_request_error", Message: "bad"}}},
			`data: {"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}` + "\n\n"},
		{"text start with text", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{
			Index: 1, Block: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "Hi"}}}}}},
			env + `{"content":"Hi"},"logprobs":null,"finish_reason":null}]}` + "\n\n"},
		{"tool start with input", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{
			Index: 2, Block: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "call_1", Name: "f", InputJson: []byte(`{"a":1}`)}}}}}},
			env + `{"tool_calls":[{"function":{"arguments":"{\"a\":1}","name":"f"},"id":"call_1","index":0,"type":"function"}]},"logprobs":null,"finish_reason":null}]}` + "\n\n"},
		{"openai opaque", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{Type: "openai.chunk", Json: []byte(`{"x":1}`)}}},
			`data: {"x":1}` + "\n\n"},
		{"anthropic opaque has no chunk", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{Type: "content_block_annotation", Json: []byte(`{}`)}}}, ""},
		{"comment is not re-encoded", &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{Type: "sse.comment", Json: []byte(": x\n\n")}}}, ""},
	}
	toolStart := &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{
		Index: 2, Block: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "call_1", Name: "f"}}}}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := Dialect{}.NewEncoder(dialect.Request{Stream: true, IncludeUsage: true})
			var buf bytes.Buffer
			if err := enc.Event(&buf, start, template); err != nil {
				t.Fatal(err)
			}
			if want := env + `{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n"; buf.String() != want {
				t.Fatalf("message start: got %q, want %q", buf.String(), want)
			}
			if tt.name == "tool arguments" {
				if err := enc.Event(io.Discard, toolStart, nil); err != nil {
					t.Fatal(err)
				}
			}
			buf.Reset()
			if err := enc.Event(&buf, tt.ev, nil); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Errorf("got\n%q\nwant\n%q", buf.String(), tt.want)
			}
		})
	}
}

// TestEncodeWithoutUpstream: a stream made entirely by a policy (no
// template, no upstream chunk) takes its envelope from the message_start.
func TestEncodeWithoutUpstream(t *testing.T) {
	msg := &cpv1.Message{Id: "chatcmpl-own", Model: "gpt-4o", StopReason: "tool_use",
		Usage: &cpv1.Usage{InputTokens: 10, OutputTokens: 5},
		Content: []*cpv1.ContentBlock{
			{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "Hi."}}},
			{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "call_1", Name: "f", InputJson: []byte(`{"a":1}`)}}},
		}}
	enc := Dialect{}.NewEncoder(dialect.Request{Stream: true, IncludeUsage: true})
	var buf bytes.Buffer
	for _, ev := range canon.Events(msg) {
		if err := enc.Event(&buf, ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	const env = `data: {"id":"chatcmpl-own","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":`
	want := env + `{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		env + `{"content":"Hi."},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		env + `{"tool_calls":[{"function":{"arguments":"","name":"f"},"id":"call_1","index":0,"type":"function"}]},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		env + `{"tool_calls":[{"function":{"arguments":"{\"a\":1}"},"index":0}]},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		env + `{},"logprobs":null,"finish_reason":"tool_calls"}]}` + "\n\n" +
		`data: {"id":"chatcmpl-own","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}` + "\n\n" +
		"data: [DONE]\n\n"
	if got := string(normalizeCreated(buf.Bytes())); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	got := summarize(t, decodeStream(t, buf.Bytes()))
	if !proto.Equal(got.msg.GetContent()[1], msg.GetContent()[1]) || got.msg.GetStopReason() != "tool_use" {
		t.Errorf("decoded back: %v", got.msg)
	}
}
