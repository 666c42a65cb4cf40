package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"luthien.dev/canon"
	"luthien.dev/gateway/internal/anthropic"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/openai"
	"luthien.dev/gateway/internal/sse"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// envelope starts every chunk of openAIStream.
const envelope = `data: {"id":"chatcmpl-w","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_w","choices":[{"index":0,"delta":`

func openAIChunk(delta, finish string) string {
	return envelope + delta + `,"logprobs":null,"finish_reason":` + finish + `}],"usage":null}` + "\n\n"
}

// openAIChunks is a stream whose chunks decode to several canonical events
// each; the comment gives their seqs.
var openAIChunks = []string{
	// 1 message_start, 2 start text, 3 delta
	openAIChunk(`{"role":"assistant","content":"Hello"}`, "null"),
	// 4 delta
	openAIChunk(`{"content":" world"}`, "null"),
	// 5 stop 0, 6 start tool
	openAIChunk(`{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"bash","arguments":""}}]}`, "null"),
	// 7 delta
	openAIChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"cmd\":\"ls\"}"}}]}`, "null"),
	// 8 stop 1, 9 message_delta
	openAIChunk(`{}`, `"tool_calls"`),
	// 10 opaque usage
	`data: {"id":"chatcmpl-w","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_w","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}` + "\n\n",
	// 11 message_stop
	"data: [DONE]\n\n",
}

// writerFixture is a clientWriter over a recorder, with the table of an
// upstream stream.
type writerFixture struct {
	cw    *clientWriter
	rec   *httptest.ResponseRecorder
	table *eventTable
}

func newFixture(t *testing.T, d dialect.Dialect, req dialect.Request, chunks []string) *writerFixture {
	t.Helper()
	table := &eventTable{}
	dec := d.NewDecoder()
	rd := sse.NewReader(strings.NewReader(strings.Join(chunks, "")))
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		raw := bytes.Clone(ev.Raw)
		evs, err := dec.Decode(ev)
		if err != nil {
			t.Fatal(err)
		}
		table.add(raw, evs)
	}
	rec := httptest.NewRecorder()
	upstream := http.Header{"X-Request-Id": {"req_1"}, "Content-Length": {"999"}, "Connection": {"close"}}
	return &writerFixture{
		cw:    &clientWriter{w: rec, upstream: upstream, enc: d.NewEncoder(req), table: table},
		rec:   rec,
		table: table,
	}
}

func pass(seq uint64) *cpv1.StreamOutput {
	return &cpv1.StreamOutput{Output: &cpv1.StreamOutput_PassthroughSeq{PassthroughSeq: seq}}
}

func emit(ev *cpv1.StreamEvent) *cpv1.StreamOutput {
	return &cpv1.StreamOutput{Output: &cpv1.StreamOutput_Event{Event: ev}}
}

func passRange(from, to uint64) []*cpv1.StreamOutput {
	var out []*cpv1.StreamOutput
	for s := from; s <= to; s++ {
		out = append(out, pass(s))
	}
	return out
}

// run feeds batches of outputs the way drainPolicy does, then finishes.
func (f *writerFixture) run(t *testing.T, batches ...[]*cpv1.StreamOutput) string {
	t.Helper()
	for _, b := range batches {
		for _, o := range b {
			if err := f.cw.output(o); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.cw.flushBatch(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.cw.finish(); err != nil {
		t.Fatal(err)
	}
	return f.rec.Body.String()
}

// event returns a copy of the table's event seq, for a policy to change.
func (f *writerFixture) event(t *testing.T, seq uint64) *cpv1.StreamEvent {
	t.Helper()
	ev, _ := f.table.get(seq)
	if ev == nil {
		t.Fatalf("no event %d", seq)
	}
	return proto.CloneOf(ev)
}

// decodeOpenAI decodes what the client received into a message.
func decodeOpenAI(t *testing.T, body string) *cpv1.Message {
	t.Helper()
	return decodeWith(t, openai.Dialect{}, body)
}

func decodeWith(t *testing.T, d dialect.Dialect, body string) *cpv1.Message {
	t.Helper()
	dec := d.NewDecoder()
	rd := sse.NewReader(strings.NewReader(body))
	var acc canon.Accumulator
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return acc.Message()
		}
		if err != nil {
			t.Fatal(err)
		}
		evs, err := dec.Decode(ev)
		if err != nil {
			t.Fatalf("client got an undecodable event %q: %v", ev.Raw, err)
		}
		for _, e := range evs {
			acc.Add(e)
		}
	}
}

func TestEventTable(t *testing.T) {
	f := newFixture(t, openai.Dialect{}, dialect.Request{Stream: true}, openAIChunks)
	want := []int{3, 1, 2, 1, 2, 1, 1} // canonical events per chunk
	if len(f.table.bySeq) != 11 {
		t.Fatalf("table has %d events, want 11", len(f.table.bySeq))
	}
	seq := uint64(1)
	for i, n := range want {
		for j := range n {
			ev, u := f.table.get(seq)
			if ev.GetSeq() != seq || u.first+uint64(j) != seq || string(u.raw) != openAIChunks[i] || len(u.evs) != n {
				t.Errorf("seq %d: event %v, upstream first %d with %d events", seq, ev, u.first, len(u.evs))
			}
			seq++
		}
	}
	for _, s := range []uint64{0, 12, 1 << 40} {
		if ev, u := f.table.get(s); ev != nil || u != nil {
			t.Errorf("get(%d) = %v, %v; want nothing", s, ev, u)
		}
	}
}

func TestWriterAllPassthrough(t *testing.T) {
	in := strings.Join(openAIChunks, "")
	tests := []struct {
		name    string
		batches [][]*cpv1.StreamOutput
	}{
		{"one batch", [][]*cpv1.StreamOutput{passRange(1, 11)}},
		{"one output per batch", func() [][]*cpv1.StreamOutput {
			var bs [][]*cpv1.StreamOutput
			for s := uint64(1); s <= 11; s++ {
				bs = append(bs, []*cpv1.StreamOutput{pass(s)})
			}
			return bs
		}()},
		{"batches split inside chunks", [][]*cpv1.StreamOutput{passRange(1, 2), passRange(3, 5), passRange(6, 8), passRange(9, 11)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, openai.Dialect{}, dialect.Request{Stream: true, IncludeUsage: true}, openAIChunks)
			if got := f.run(t, tt.batches...); got != in {
				t.Errorf("got\n%s\nwant upstream's bytes\n%s", got, in)
			}
			h := f.rec.Result().Header
			if f.rec.Code != http.StatusOK || h.Get("Content-Type") != "text/event-stream" || h.Get("X-Request-Id") != "req_1" ||
				h.Get("Content-Length") != "" || h.Get("Connection") != "" {
				t.Errorf("status %d, header %v", f.rec.Code, h)
			}
			if !f.rec.Flushed {
				t.Error("never flushed")
			}
		})
	}
}

// TestWriterPartialChunkWaits: the first parts of a chunk are held until
// the rest comes, across batches, and nothing goes out before.
func TestWriterPartialChunkWaits(t *testing.T) {
	f := newFixture(t, openai.Dialect{}, dialect.Request{Stream: true}, openAIChunks)
	for _, o := range passRange(1, 2) {
		if err := f.cw.output(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.cw.flushBatch(); err != nil {
		t.Fatal(err)
	}
	if f.cw.started || f.rec.Body.Len() != 0 || f.rec.Flushed {
		t.Fatalf("wrote %q before the chunk was complete", f.rec.Body.String())
	}
	if got := f.run(t, []*cpv1.StreamOutput{pass(3)}); got != openAIChunks[0] {
		t.Errorf("got %q, want %q", got, openAIChunks[0])
	}
}

func TestWriterModified(t *testing.T) {
	f := newFixture(t, openai.Dialect{}, dialect.Request{Stream: true, IncludeUsage: true}, openAIChunks)
	hello := f.event(t, 3)
	hello.GetContentBlockDelta().GetText().Text = "HELLO"
	tool := f.event(t, 6)
	tool.GetContentBlockStart().GetBlock().GetToolUse().Name = "sh"
	got := f.run(t,
		[]*cpv1.StreamOutput{pass(1), pass(2), emit(hello), pass(4)},
		[]*cpv1.StreamOutput{pass(5), emit(tool)},
		passRange(7, 11))
	// The encoded parts share upstream's envelope.
	want := envelope + `{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		envelope + `{"content":"HELLO"},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		openAIChunks[1] +
		envelope + `{"tool_calls":[{"function":{"arguments":"","name":"sh"},"id":"call_1","index":0,"type":"function"}]},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		strings.Join(openAIChunks[3:], "")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	msg := decodeOpenAI(t, got)
	if len(msg.GetContent()) != 2 || msg.GetContent()[0].GetText().GetText() != "HELLO world" ||
		msg.GetContent()[1].GetToolUse().GetName() != "sh" || string(msg.GetContent()[1].GetToolUse().GetInputJson()) != `{"cmd":"ls"}` ||
		msg.GetStopReason() != "tool_use" {
		t.Errorf("client's message: %v", msg)
	}
}

func TestWriterDroppedPart(t *testing.T) {
	f := newFixture(t, openai.Dialect{}, dialect.Request{Stream: true}, openAIChunks)
	// The policy drops the first delta (seq 3) and passes the rest.
	got := f.run(t, append([]*cpv1.StreamOutput{pass(1), pass(2)}, passRange(4, 11)...))
	want := envelope + `{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		strings.Join(openAIChunks[1:], "")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if msg := decodeOpenAI(t, got); msg.GetContent()[0].GetText().GetText() != " world" {
		t.Errorf("client's message: %v", msg)
	}
}

func TestWriterOutOfOrder(t *testing.T) {
	f := newFixture(t, openai.Dialect{}, dialect.Request{Stream: true}, openAIChunks)
	// Within the first chunk: the delta before the block start; within
	// the finish chunk: the message_delta before the block stop.
	got := f.run(t, []*cpv1.StreamOutput{pass(1), pass(3), pass(2)}, passRange(4, 7), []*cpv1.StreamOutput{pass(9), pass(8), pass(10), pass(11)})
	want := envelope + `{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		envelope + `{"content":"Hello"},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		strings.Join(openAIChunks[1:4], "") +
		envelope + `{},"logprobs":null,"finish_reason":"tool_calls"}]}` + "\n\n" +
		strings.Join(openAIChunks[5:], "")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	msg := decodeOpenAI(t, got)
	if msg.GetContent()[0].GetText().GetText() != "Hello world" || msg.GetStopReason() != "tool_use" {
		t.Errorf("client's message: %v", msg)
	}
}

func TestWriterRepeatedPassthrough(t *testing.T) {
	f := newFixture(t, openai.Dialect{}, dialect.Request{Stream: true}, openAIChunks)
	// Seq 4 twice: the chunk is written raw twice, as the policy asked.
	got := f.run(t, passRange(1, 4), []*cpv1.StreamOutput{pass(4)})
	if want := openAIChunks[0] + openAIChunks[1] + openAIChunks[1]; got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWriterUnknownSeq(t *testing.T) {
	f := newFixture(t, openai.Dialect{}, dialect.Request{Stream: true}, openAIChunks)
	for _, o := range []*cpv1.StreamOutput{pass(0), pass(12), pass(1 << 62), {}} {
		if err := f.cw.output(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.cw.finish(); err != nil {
		t.Fatal(err)
	}
	if f.cw.started || f.cw.wrote || f.rec.Body.Len() != 0 {
		t.Fatalf("unknown seqs wrote %q", f.rec.Body.String())
	}
	// An unknown seq between the parts of a chunk does not break it.
	f = newFixture(t, openai.Dialect{}, dialect.Request{Stream: true}, openAIChunks)
	if got := f.run(t, []*cpv1.StreamOutput{pass(1), pass(99), pass(2), pass(3)}); got != openAIChunks[0] {
		t.Errorf("got %q, want %q", got, openAIChunks[0])
	}
}

func TestWriterPendingAtEnd(t *testing.T) {
	f := newFixture(t, openai.Dialect{}, dialect.Request{Stream: true}, openAIChunks)
	got := f.run(t, []*cpv1.StreamOutput{pass(1)})
	if want := envelope + `{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWriterFailWhilePending(t *testing.T) {
	f := newFixture(t, openai.Dialect{}, dialect.Request{Stream: true}, openAIChunks)
	if err := f.cw.output(pass(1)); err != nil {
		t.Fatal(err)
	}
	f.cw.fail("api_error", "policy evaluation failed")
	want := envelope + `{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		`data: {"error":{"message":"policy evaluation failed","type":"server_error","param":null,"code":null}}` + "\n\n"
	if got := f.rec.Body.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// anthropicStream is an Anthropic stream; each event decodes to one
// canonical event, seqs 1 to 8.
var anthropicStream = []string{
	"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n",
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
	"event: ping\ndata: {\"type\": \"ping\"}\n\n",
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":10,\"output_tokens\":2}}\n\n",
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
	": trailing comment\n\n",
}

func TestWriterAnthropic(t *testing.T) {
	t.Run("all passthrough", func(t *testing.T) {
		f := newFixture(t, anthropic.Dialect{}, dialect.Request{Stream: true}, anthropicStream)
		if got, want := f.run(t, passRange(1, 8)), strings.Join(anthropicStream, ""); got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("modified events use their upstream event as template", func(t *testing.T) {
		f := newFixture(t, anthropic.Dialect{}, dialect.Request{Stream: true}, anthropicStream)
		md := f.event(t, 6)
		md.GetMessageDelta().StopReason = "max_tokens"
		got := f.run(t, passRange(1, 5), []*cpv1.StreamOutput{emit(md)}, passRange(7, 8))
		want := strings.Join(anthropicStream[:5], "") +
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":10,\"output_tokens\":2}}\n\n" +
			strings.Join(anthropicStream[6:], "")
		if got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("a policy's own events", func(t *testing.T) {
		f := newFixture(t, anthropic.Dialect{}, dialect.Request{Stream: true}, anthropicStream)
		notice := []*cpv1.StreamOutput{
			emit(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: 0,
				Block: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{}}}}}}),
			emit(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{Index: 0,
				Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: "[blocked]"}}}}}),
			emit(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{Index: 0}}}),
		}
		got := f.run(t, []*cpv1.StreamOutput{pass(1)}, notice, passRange(6, 7))
		msg := decodeWith(t, anthropic.Dialect{}, got)
		if len(msg.GetContent()) != 1 || msg.GetContent()[0].GetText().GetText() != "[blocked]" || msg.GetStopReason() != "end_turn" ||
			msg.GetUsage().GetInputTokens() != 10 {
			t.Errorf("client's message: %v\n%s", msg, got)
		}
	})
}
