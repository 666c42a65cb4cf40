package proxy

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"luthien.dev/gateway/internal/anthropic"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/openai"
	"luthien.dev/gateway/internal/record"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// timelineEntry is one entry of a stream.timeline payload.
type timelineEntry struct {
	Ms     float64 `json:"ms"`
	Kind   string  `json:"kind"`
	Source string  `json:"source"`
}

// timeline is a stream.timeline payload.
type timeline struct {
	Entries       []timelineEntry `json:"entries"`
	Dropped       int             `json:"dropped"`
	UpstreamFirst *float64        `json:"upstream_first_event_ms"`
}

// timelineOf returns the stream.timeline event of a call's record, failing
// when there is none.
func timelineOf(t *testing.T, trace *record.Call) timeline {
	t.Helper()
	trace.Finished = time.Now()
	for _, ev := range trace.Record().GetEvents() {
		if ev.GetEventType() == "stream.timeline" {
			var tl timeline
			if err := json.Unmarshal(ev.GetPayloadJson(), &tl); err != nil {
				t.Fatalf("payload %s: %v", ev.GetPayloadJson(), err)
			}
			for i := 1; i < len(tl.Entries); i++ {
				if tl.Entries[i].Ms < tl.Entries[i-1].Ms {
					t.Errorf("entry %d at %v ms, before entry %d at %v ms", i, tl.Entries[i].Ms, i-1, tl.Entries[i-1].Ms)
				}
			}
			return tl
		}
	}
	t.Fatal("no stream.timeline event")
	return timeline{}
}

// sources is the timeline reduced to "kind/source" per entry.
func (tl timeline) sources() []string {
	var out []string
	for _, e := range tl.Entries {
		out = append(out, e.Kind+"/"+e.Source)
	}
	return out
}

func checkSources(t *testing.T, tl timeline, want []string) {
	t.Helper()
	if got := tl.sources(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("timeline\n%v\nwant\n%v", got, want)
	}
}

// withTimeline gives the fixture's writer the timeline of a new call
// record.
func (f *writerFixture) withTimeline() *record.Call {
	trace := &record.Call{Started: time.Now(), Stream: true}
	trace.Timeline.Begin(trace.Started)
	f.cw.tl = &trace.Timeline
	return trace
}

// The policed path: events passed through whole are upstream's, events a
// policy emitted are the policy's, and the passed parts of a changed
// upstream event, encoded anew, are marked so.
func TestWriterTimeline(t *testing.T) {
	t.Run("changed", func(t *testing.T) {
		f := newFixture(t, openai.Dialect{}, dialect.Request{Stream: true, IncludeUsage: true}, openAIChunks)
		trace := f.withTimeline()
		hello := f.event(t, 3)
		hello.GetContentBlockDelta().GetText().Text = "HELLO"
		tool := f.event(t, 6)
		tool.GetContentBlockStart().GetBlock().GetToolUse().Name = "sh"
		f.run(t,
			[]*cpv1.StreamOutput{pass(1), pass(2), emit(hello), pass(4)},
			[]*cpv1.StreamOutput{pass(5), emit(tool)},
			passRange(7, 11))
		checkSources(t, timelineOf(t, trace), []string{
			"message_start/reencoded", "text_start/reencoded", "text_delta/policy", "text_delta/upstream",
			"block_stop/reencoded", "tool_call_start/policy",
			"tool_args_delta/upstream", "block_stop/upstream", "message_delta/upstream", "usage/upstream", "message_stop/upstream",
		})
	})
	t.Run("passthrough", func(t *testing.T) {
		f := newFixture(t, anthropic.Dialect{}, dialect.Request{Stream: true}, anthropicStream)
		trace := f.withTimeline()
		f.run(t, passRange(1, 4), passRange(5, 8))
		checkSources(t, timelineOf(t, trace), []string{
			"message_start/upstream", "text_start/upstream", "ping/upstream", "text_delta/upstream",
			"block_stop/upstream", "message_delta/upstream", "message_stop/upstream", "opaque/upstream",
		})
	})
	t.Run("a policy failing mid-stream", func(t *testing.T) {
		f := newFixture(t, anthropic.Dialect{}, dialect.Request{Stream: true}, anthropicStream)
		trace := f.withTimeline()
		f.run(t, passRange(1, 2), []*cpv1.StreamOutput{emit(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{
			ContentBlockDelta: &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: "[note]"}}}}})})
		f.cw.fail("api_error", "policy evaluation failed")
		checkSources(t, timelineOf(t, trace), []string{
			"message_start/upstream", "text_start/upstream", "text_delta/policy", "error/gateway",
		})
	})
}

// brokenBody yields its bytes, then fails.
type brokenBody struct{ r io.Reader }

func (b *brokenBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errors.New("connection reset")
	}
	return n, err
}

func (b *brokenBody) Close() error { return nil }

// The relay path: every event is upstream's, in order, stamped as it is
// flushed; a stream cut upstream ends with the gateway's error.
func TestRelayStreamTimeline(t *testing.T) {
	p := &Proxy{log: slog.New(slog.DiscardHandler)}
	relay := func(d dialect.Dialect, body io.ReadCloser) (*record.Call, string) {
		rec := httptest.NewRecorder()
		c := &call{id: "c1", d: d, req: dialect.Request{Stream: true, IncludeUsage: true},
			trace: &record.Call{Started: time.Now(), Stream: true}}
		resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: body}
		p.relayStream(rec, httptest.NewRequest(http.MethodPost, "/", nil), c, resp)
		return c.trace, rec.Body.String()
	}
	t.Run("anthropic", func(t *testing.T) {
		trace, got := relay(anthropic.Dialect{}, io.NopCloser(strings.NewReader(strings.Join(anthropicStream, ""))))
		if got != strings.Join(anthropicStream, "") {
			t.Fatalf("relayed %q", got)
		}
		tl := timelineOf(t, trace)
		checkSources(t, tl, []string{
			"message_start/upstream", "text_start/upstream", "ping/upstream", "text_delta/upstream",
			"block_stop/upstream", "message_delta/upstream", "message_stop/upstream", "opaque/upstream",
		})
		if tl.UpstreamFirst == nil || *tl.UpstreamFirst > tl.Entries[0].Ms {
			t.Errorf("upstream's first event at %v, the first write at %v ms", tl.UpstreamFirst, tl.Entries[0].Ms)
		}
	})
	t.Run("openai", func(t *testing.T) {
		trace, _ := relay(openai.Dialect{}, io.NopCloser(strings.NewReader(strings.Join(openAIChunks, ""))))
		checkSources(t, timelineOf(t, trace), []string{
			"message_start/upstream", "text_start/upstream", "text_delta/upstream", "text_delta/upstream",
			"block_stop/upstream", "tool_call_start/upstream", "tool_args_delta/upstream", "block_stop/upstream",
			"message_delta/upstream", "usage/upstream", "message_stop/upstream",
		})
	})
	t.Run("cut upstream", func(t *testing.T) {
		trace, _ := relay(anthropic.Dialect{}, &brokenBody{strings.NewReader(strings.Join(anthropicStream[:2], ""))})
		checkSources(t, timelineOf(t, trace), []string{"message_start/upstream", "text_start/upstream", "error/gateway"})
	})
	t.Run("unreadable event", func(t *testing.T) {
		trace, _ := relay(anthropic.Dialect{}, io.NopCloser(strings.NewReader(anthropicStream[0]+"event: content_block_start\ndata: {nope\n\n")))
		checkSources(t, timelineOf(t, trace), []string{"message_start/upstream", "opaque/upstream"})
	})
}

// A whole answer given instead of upstream's, streamed, is the policy's.
func TestRespondTimeline(t *testing.T) {
	p := &Proxy{log: slog.New(slog.DiscardHandler)}
	c := &call{id: "c1", d: anthropic.Dialect{}, req: dialect.Request{Stream: true, Model: "m"},
		trace: &record.Call{Started: time.Now(), Stream: true}}
	p.respond(httptest.NewRecorder(), c, &cpv1.Message{StopReason: "end_turn",
		Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "blocked"}}}}})
	checkSources(t, timelineOf(t, c.trace), []string{
		"message_start/policy", "text_start/policy", "text_delta/policy", "block_stop/policy",
		"message_delta/policy", "message_stop/policy",
	})

	// Not streamed: no timeline.
	c = &call{id: "c2", d: anthropic.Dialect{}, req: dialect.Request{Model: "m"}, trace: &record.Call{Started: time.Now()}}
	p.respond(httptest.NewRecorder(), c, &cpv1.Message{})
	c.trace.Finished = time.Now()
	for _, ev := range c.trace.Record().GetEvents() {
		if ev.GetEventType() == "stream.timeline" {
			t.Errorf("non-streamed answer has a timeline: %s", ev.GetPayloadJson())
		}
	}
}
