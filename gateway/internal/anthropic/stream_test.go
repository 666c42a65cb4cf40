package anthropic

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
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
func encodeStream(t testing.TB, ups []upstreamEvent, templates bool) []byte {
	t.Helper()
	enc := Dialect{}.NewEncoder(dialect.Request{Stream: true})
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

// inputs returns the golden input streams by name.
func inputs(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.sse"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".sse")] = b
	}
	return out
}

func TestGolden(t *testing.T) {
	for name, in := range inputs(t) {
		t.Run(name, func(t *testing.T) {
			ups := decodeStream(t, in)
			base := filepath.Join("testdata", name)
			checkGolden(t, base+".events.golden", eventsJSON(t, ups))
			checkGolden(t, base+".encoded.golden", encodeStream(t, ups, true))
			checkGolden(t, base+".synthetic.golden", encodeStream(t, ups, false))
		})
	}
}

// fakeStreams returns streams of the fake upstream for a range of scenarios.
func fakeStreams(t testing.TB) map[string][]byte {
	t.Helper()
	srv := fakeupstream.New()
	defer srv.Close()
	scenarios := map[string]fakeupstream.Scenario{
		"default":  {},
		"chars":    {Text: "a <b> & \"c\"\n\td 🎉 é\u2028", Chunks: 40},
		"thinking": {Thinking: "Hmm, let me see.", Text: "Done.", Pings: true},
		"tools": {Text: "Running.", ToolCalls: []fakeupstream.ToolCall{
			{Name: "bash", Arguments: `{"command":"ls -la"}`},
			{Name: "read", Arguments: `{"path":"/tmp/ü.txt"}`, ID: "toolu_x"}}, ArgChunks: 5},
		"only tools": {ToolCalls: []fakeupstream.ToolCall{{Name: "noop"}}},
		"max tokens": {Text: "cut", StopReason: "max_tokens", Usage: &fakeupstream.Usage{InputTokens: 9, OutputTokens: 3, CacheCreation: 2, CacheRead: 7}},
		"error":      {Text: "one two three four", ErrorAfter: 4},
		"extra":      {Extra: map[string]any{"container": nil, "region": "eu"}},
	}
	out := map[string][]byte{}
	for name, sc := range scenarios {
		srv.Enqueue(sc)
		resp, err := http.Post(srv.AnthropicBaseURL()+"/v1/messages", "application/json",
			strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: status %d, %v", name, resp.StatusCode, err)
		}
		out[name] = b
	}
	return out
}

// allInputs is the golden inputs and the fake upstream's streams.
func allInputs(t testing.TB) map[string][]byte {
	out := inputs(t)
	for name, b := range fakeStreams(t) {
		out["fake "+name] = b
	}
	return out
}

// TestRawRoundTrip: decoding then writing every event raw gives back the
// input byte for byte.
func TestRawRoundTrip(t *testing.T) {
	for name, in := range allInputs(t) {
		t.Run(name, func(t *testing.T) {
			enc := Dialect{}.NewEncoder(dialect.Request{Stream: true})
			var buf bytes.Buffer
			for _, u := range decodeStream(t, in) {
				if err := enc.Raw(&buf, u.Raw, u.Evs); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(buf.Bytes(), in) {
				t.Errorf("raw round trip differs\n--- got\n%s\n--- want\n%s", buf.Bytes(), in)
			}
		})
	}
}

// summary is what a stream means to a client: the accumulated message and
// the in-stream errors.
type summary struct {
	msg    *cpv1.Message
	errors []*cpv1.StreamError
}

func summarize(ups []upstreamEvent) summary {
	var acc canon.Accumulator
	var s summary
	for _, u := range ups {
		for _, ev := range u.Evs {
			acc.Add(ev)
			if e := ev.GetError(); e != nil {
				s.errors = append(s.errors, e)
			}
		}
	}
	s.msg = acc.Message()
	return s
}

func (s summary) equal(o summary) bool {
	if len(s.errors) != len(o.errors) {
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
// decoding again gives the same message (content, tool arguments, stop
// reason, usage) and the same errors.
func TestSyntheticRoundTrip(t *testing.T) {
	for name, in := range allInputs(t) {
		t.Run(name, func(t *testing.T) {
			ups := decodeStream(t, in)
			want := summarize(ups)
			if len(want.msg.GetContent()) == 0 {
				t.Fatal("input decodes to no content")
			}
			for _, templates := range []bool{true, false} {
				out := encodeStream(t, ups, templates)
				got := summarize(decodeStream(t, out))
				if !got.equal(want) {
					t.Errorf("templates=%v: round trip changed the stream\n got %v %v\nwant %v %v\n%s",
						templates, got.msg, got.errors, want.msg, want.errors, out)
				}
			}
		})
	}
}

func TestDecode(t *testing.T) {
	ev := func(s string) *cpv1.StreamEvent {
		var e cpv1.StreamEvent
		if err := protojson.Unmarshal([]byte(s), &e); err != nil {
			t.Fatal(err)
		}
		return &e
	}
	tests := []struct {
		name string
		in   string
		want *cpv1.StreamEvent
	}{
		{"comment only", ": hi\n\n", ev(`{"opaque":{"type":"sse.comment","json":"` + b64(": hi\n\n") + `"}}`)},
		{"event without data", "event: ping\n\n", ev(`{"opaque":{"type":"sse.comment","json":"` + b64("event: ping\n\n") + `"}}`)},
		{"message_start without message", "event: message_start\ndata: {\"type\":\"message_start\"}\n\n", ev(`{"message_start":{}}`)},
		{"delta without delta", "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2}\n\n",
			ev(`{"content_block_delta":{"index":2,"opaque":{}}}`)},
		{"unknown delta keeps the delta", "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"x_delta\",\"v\":[1]}}\n\n",
			ev(`{"content_block_delta":{"index":1,"opaque":{"type":"x_delta","json":"` + b64(`{"type":"x_delta","v":[1]}`) + `"}}}`)},
		{"message_delta without delta", "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":3}}\n\n",
			ev(`{"message_delta":{"usage":{"output_tokens":3}}}`)},
		{"error without detail", "event: error\ndata: {\"type\":\"error\"}\n\n", ev(`{"error":{}}`)},
		{"server_tool_use block is opaque", "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"server_tool_use\",\"id\":\"srvtoolu_1\",\"name\":\"web_search\",\"input\":{}}}\n\n",
			ev(`{"content_block_start":{"block":{"opaque":{"type":"server_tool_use","json":"` + b64(`{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}`) + `"}}}}`)},
		{"tool_use start has no input", "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"bash\",\"input\":{ }}}\n\n",
			ev(`{"content_block_start":{"index":1,"block":{"tool_use":{"id":"toolu_1","name":"bash"}}}}`)},
		{"tool_use start with input keeps it", "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"bash\",\"input\":{\"a\":1}}}\n\n",
			ev(`{"content_block_start":{"index":1,"block":{"tool_use":{"id":"toolu_1","name":"bash","input_json":"` + b64(`{"a":1}`) + `"}}}}`)},
		{"unknown event keeps its data", "event: foo\ndata: {\"type\":\"foo\",\"x\":1}\n\n",
			ev(`{"opaque":{"type":"foo","json":"` + b64(`{"type":"foo","x":1}`) + `"}}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := sse.NewReader(strings.NewReader(tt.in)).Next()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Dialect{}.NewDecoder().Decode(e)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !proto.Equal(got[0], tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, in := range []string{
		"data: {\n\n",
		"data: [1,2]\n\n",
		"data: {\"type\":\"content_block_start\",\"index\":0}\n\n",
		"data: {\"type\":\"content_block_start\",\"index\":-1,\"content_block\":{\"type\":\"text\"}}\n\n",
	} {
		e, err := sse.NewReader(strings.NewReader(in)).Next()
		if err != nil {
			t.Fatal(err)
		}
		if evs, err := (Dialect{}).NewDecoder().Decode(e); err == nil {
			t.Errorf("Decode(%q) = %v, want an error", in, evs)
		}
	}
}

// TestDecodeOwnsData: decoded events must not alias the reader's buffers,
// which the next event overwrites.
func TestDecodeOwnsData(t *testing.T) {
	in := "data: {\"type\":\"foo\",\"long\":\"" + strings.Repeat("z", 256) + "\"}\n\n" +
		"data: {\"type\":\"content_block_delta\",\"index\":0}\n\n" +
		"data: {\"type\":\"foo\",\"long\":\"" + strings.Repeat("y", 64) + "\"}\n\n" +
		"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"x\"}}\n\n" +
		"data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"image\"}}\n\n" +
		"data: {\"type\":\"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\"}\n\n"
	rd := sse.NewReader(strings.NewReader(in))
	dec := Dialect{}.NewDecoder()
	var all []*cpv1.StreamEvent
	var snap [][]byte
	for {
		e, err := rd.Next()
		if err != nil {
			break
		}
		evs, err := dec.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			all = append(all, ev)
			b, _ := proto.Marshal(ev)
			snap = append(snap, b)
		}
	}
	for i, ev := range all {
		b, _ := proto.Marshal(ev)
		if !bytes.Equal(b, snap[i]) {
			t.Errorf("event %d changed after later reads: %v", i, ev)
		}
	}
}

func TestEncodeEvent(t *testing.T) {
	tests := []struct {
		name     string
		ev       *cpv1.StreamEvent
		template string
		want     string
	}{
		{"text delta keeps html characters",
			&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{Index: 3,
				Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: "<a> & b"}}}}}, "",
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"text_delta\",\"text\":\"<a> & b\"}}\n\n"},
		{"tool start renders empty input as {}",
			&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: 1,
				Block: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "toolu_1", Name: "bash"}}}}}}, "",
			"event: content_block_start\ndata: {\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"bash\",\"input\":{}},\"index\":1,\"type\":\"content_block_start\"}\n\n"},
		{"message_delta keeps the template's other fields",
			&cpv1.StreamEvent{Seq: 9, Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: "end_turn",
				Usage: &cpv1.Usage{OutputTokens: 7}}}},
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":5,\"output_tokens\":89},\"context_management\":{\"applied_edits\":[]}}\n\n",
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":5,\"output_tokens\":7},\"context_management\":{\"applied_edits\":[]}}\n\n"},
		{"message_delta carries input and cache tokens, in Anthropic's order",
			&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: "end_turn",
				Usage: &cpv1.Usage{InputTokens: 12, CacheReadInputTokens: 2048, OutputTokens: 15}}}}, "",
			"event: message_delta\ndata: {\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"type\":\"message_delta\",\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":2048,\"output_tokens\":15}}\n\n"},
		{"message_delta with output tokens only",
			&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: "tool_use",
				Usage: &cpv1.Usage{OutputTokens: 3}}}}, "",
			"event: message_delta\ndata: {\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"type\":\"message_delta\",\"usage\":{\"output_tokens\":3}}\n\n"},
		{"message_delta keeps the template's usage fields",
			&cpv1.StreamEvent{Seq: 9, Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: "end_turn",
				Usage: &cpv1.Usage{InputTokens: 5, CacheReadInputTokens: 8, OutputTokens: 7}}}},
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":5,\"output_tokens\":89}}\n\n",
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":5,\"output_tokens\":7,\"cache_read_input_tokens\":8}}\n\n"},
		{"message_delta always carries usage",
			&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: "end_turn"}}}, "",
			"event: message_delta\ndata: {\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"type\":\"message_delta\",\"usage\":{\"output_tokens\":0}}\n\n"},
		{"error",
			&cpv1.StreamEvent{Event: &cpv1.StreamEvent_Error{Error: &cpv1.StreamError{Type: "api_error", Message: "policy failed"}}}, "",
			"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"policy failed\"}}\n\n"},
		{"openai opaque has no anthropic form",
			&cpv1.StreamEvent{Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{Type: "openai.usage", Json: []byte(`{}`)}}}, "", ""},
		{"comment is not re-encoded",
			&cpv1.StreamEvent{Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{Type: "sse.comment", Json: []byte(": x\n\n")}}}, "", ""},
		{"unparsed upstream bytes are not re-encoded",
			&cpv1.StreamEvent{Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{Type: "sse.unparsed", Json: []byte("event: x\ndata: {\n\n")}}}, "", ""},
		{"unknown event",
			&cpv1.StreamEvent{Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{Type: "foo", Json: []byte(`{"type":"foo"}`)}}}, "",
			"event: foo\ndata: {\"type\":\"foo\"}\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			var template []byte
			if tt.template != "" {
				template = []byte(tt.template)
			}
			if err := (Dialect{}).NewEncoder(dialect.Request{}).Event(&buf, tt.ev, template); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Errorf("got\n%q\nwant\n%q", buf.String(), tt.want)
			}
		})
	}
	if err := (Dialect{}).NewEncoder(dialect.Request{}).Event(io.Discard, &cpv1.StreamEvent{}, nil); err == nil {
		t.Error("encoding an empty event: want an error")
	}
}

// TestCanonEventsEncode: the stream canon.Events makes of a complete
// message encodes to a stream that decodes back to the message.
func TestCanonEventsEncode(t *testing.T) {
	msg, err := Dialect{}.ParseMessage([]byte(fullMessage))
	if err != nil {
		t.Fatal(err)
	}
	enc := Dialect{}.NewEncoder(dialect.Request{Stream: true})
	var buf bytes.Buffer
	for _, ev := range canon.Events(msg) {
		if err := enc.Event(&buf, ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	got := summarize(decodeStream(t, buf.Bytes()))
	if !proto.Equal(got.msg, msg) {
		t.Errorf("got %v\nwant %v\n%s", got.msg, msg, buf.Bytes())
	}
}

func b64(s string) string {
	b, _ := json.Marshal([]byte(s))
	return strings.Trim(string(b), `"`)
}
