package record

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// timelinePayload is the stream.timeline event's JSON.
type timelinePayload struct {
	Entries []struct {
		Ms     float64 `json:"ms"`
		Kind   string  `json:"kind"`
		Source string  `json:"source"`
	} `json:"entries"`
	Dropped       int      `json:"dropped"`
	UpstreamFirst *float64 `json:"upstream_first_event_ms"`
}

// timelineOf returns the record's stream.timeline payload, nil when it has
// none.
func timelineOf(t *testing.T, rec *cpv1.CallRecord) *timelinePayload {
	t.Helper()
	var found *timelinePayload
	for _, ev := range rec.GetEvents() {
		if ev.GetEventType() != "stream.timeline" {
			continue
		}
		if found != nil {
			t.Fatal("two stream.timeline events")
		}
		found = &timelinePayload{}
		if err := json.Unmarshal(ev.GetPayloadJson(), found); err != nil {
			t.Fatalf("stream.timeline payload %s: %v", ev.GetPayloadJson(), err)
		}
	}
	return found
}

func textDelta(s string) *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
		Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: s}}}}}
}

func TestTimelinePayload(t *testing.T) {
	start := time.Now()
	c := &Call{ID: "c1", Stream: true, Started: start, Finished: start.Add(time.Second)}
	tl := &c.Timeline
	tl.Begin(start)
	tl.UpstreamFirstEvent(start.Add(3210 * time.Microsecond))
	tl.AddAll([]*cpv1.StreamEvent{
		{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{}}},
		{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{
			Block: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Name: "bash"}}}}}},
	}, FromUpstream)
	tl.stampAt(12*time.Millisecond + 504*time.Microsecond) // rounds to 12.5
	tl.Add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
		Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: "{}"}}}}}, Reencoded)
	tl.Add(textDelta("HI"), FromPolicy)
	tl.stampAt(20*time.Millisecond + 73*time.Microsecond) // 20.07
	tl.Add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{Type: "openai.usage"}}}, FromUpstream)
	tl.stampAt(30 * time.Millisecond)
	tl.Add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_Error{Error: &cpv1.StreamError{}}}, FromGateway)
	// Never stamped (the write before its flush failed): the call's end.

	ev := c.Record().GetEvents()
	last := ev[len(ev)-1]
	if last.GetEventType() != "stream.timeline" || !last.GetTime().AsTime().Equal(c.Finished) {
		t.Fatalf("last event %s at %v, want stream.timeline at the call's end", last.GetEventType(), last.GetTime().AsTime())
	}
	want := `{"entries":[` +
		`{"ms":12.5,"kind":"message_start","source":"upstream"},` +
		`{"ms":12.5,"kind":"tool_call_start","source":"upstream"},` +
		`{"ms":20.07,"kind":"tool_args_delta","source":"reencoded"},` +
		`{"ms":20.07,"kind":"text_delta","source":"policy"},` +
		`{"ms":30,"kind":"usage","source":"upstream"},` +
		`{"ms":1000,"kind":"error","source":"gateway"}` +
		`],"dropped":0,"upstream_first_event_ms":3.21}`
	if got := string(last.GetPayloadJson()); got != want {
		t.Errorf("payload\n%s\nwant\n%s", got, want)
	}
	if !json.Valid(last.GetPayloadJson()) {
		t.Error("payload is not JSON")
	}
}

func TestTimelineKinds(t *testing.T) {
	block := func(b *cpv1.ContentBlock) *cpv1.StreamEvent {
		return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Block: b}}}
	}
	delta := func(d *cpv1.ContentBlockDelta) *cpv1.StreamEvent {
		return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: d}}
	}
	tests := []struct {
		ev   *cpv1.StreamEvent
		want string
	}{
		{&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{}}}, "message_start"},
		{block(&cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{}}}), "text_start"},
		{block(&cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{}}}), "tool_call_start"},
		{block(&cpv1.ContentBlock{Block: &cpv1.ContentBlock_Thinking{Thinking: &cpv1.ThinkingBlock{}}}), "thinking_start"},
		{block(&cpv1.ContentBlock{Block: &cpv1.ContentBlock_Opaque{Opaque: &cpv1.OpaqueBlock{}}}), "block_start"},
		{textDelta("x"), "text_delta"},
		{delta(&cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{}}}), "tool_args_delta"},
		{delta(&cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Thinking{Thinking: &cpv1.ThinkingDelta{}}}), "thinking_delta"},
		{delta(&cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Signature{Signature: &cpv1.SignatureDelta{}}}), "signature_delta"},
		{delta(&cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Opaque{Opaque: &cpv1.OpaqueDelta{}}}), "delta"},
		{&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{}}}, "block_stop"},
		{&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{}}}, "message_delta"},
		{&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}}, "message_stop"},
		{&cpv1.StreamEvent{Event: &cpv1.StreamEvent_Ping{Ping: &cpv1.Ping{}}}, "ping"},
		{&cpv1.StreamEvent{Event: &cpv1.StreamEvent_Error{Error: &cpv1.StreamError{}}}, "error"},
		{&cpv1.StreamEvent{Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{Type: "openai.usage"}}}, "usage"},
		{&cpv1.StreamEvent{Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{Type: "sse.comment"}}}, "opaque"},
		{&cpv1.StreamEvent{}, "unknown"},
	}
	for _, tt := range tests {
		if got := kindNames[kindOf(tt.ev)]; got != tt.want {
			t.Errorf("kind of %v = %s, want %s", tt.ev, got, tt.want)
		}
	}
}

// TestTimelineBound: past MaxTimelineEntries events are only counted, and
// the entries never outgrow the bound.
func TestTimelineBound(t *testing.T) {
	start := time.Now()
	c := &Call{ID: "c1", Stream: true, Started: start, Finished: start.Add(time.Second)}
	tl := &c.Timeline
	tl.Begin(start)
	const extra = 123
	ev := textDelta("x")
	for i := range MaxTimelineEntries + extra {
		tl.Add(ev, FromUpstream)
		if i%7 == 0 {
			tl.stampAt(time.Duration(i) * time.Millisecond)
		}
	}
	if cap(tl.entries) > MaxTimelineEntries {
		t.Errorf("capacity %d, over the bound", cap(tl.entries))
	}
	if tl.Len() != MaxTimelineEntries+extra {
		t.Errorf("Len %d, want %d", tl.Len(), MaxTimelineEntries+extra)
	}
	p := timelineOf(t, c.Record())
	if p == nil {
		t.Fatal("no stream.timeline event")
	}
	if len(p.Entries) != MaxTimelineEntries || p.Dropped != extra {
		t.Errorf("%d entries, %d dropped; want %d, %d", len(p.Entries), p.Dropped, MaxTimelineEntries, extra)
	}
	for i := 1; i < len(p.Entries); i++ {
		if p.Entries[i].Ms < p.Entries[i-1].Ms {
			t.Fatalf("entry %d at %v ms, before entry %d at %v ms", i, p.Entries[i].Ms, i-1, p.Entries[i-1].Ms)
		}
	}
	if p.UpstreamFirst != nil {
		t.Errorf("upstream_first_event_ms %v, want none", *p.UpstreamFirst)
	}
}

// Calls that streamed nothing have no timeline, and a timeline not begun
// (or nil) notes nothing.
func TestTimelineOnlyForStreams(t *testing.T) {
	now := time.Now()
	c := &Call{ID: "c1", Started: now, Finished: now, ResponseOriginal: []byte(`{}`), ResponseFinal: []byte(`{}`)}
	c.Timeline.Add(textDelta("x"), FromUpstream)
	c.Timeline.Stamp()
	c.Timeline.UpstreamFirstEvent(now)
	if p := timelineOf(t, c.Record()); p != nil {
		t.Errorf("non-streamed call has a timeline: %+v", p)
	}
	c.Timeline.Begin(now) // begun, nothing written (the client went away)
	if p := timelineOf(t, c.Record()); p != nil {
		t.Errorf("a stream that wrote nothing has a timeline: %+v", p)
	}
	var nilTL *Timeline
	nilTL.Begin(now)
	nilTL.Add(textDelta("x"), FromPolicy)
	nilTL.Stamp()
	if nilTL.Len() != 0 {
		t.Error("nil timeline noted an event")
	}
}

func TestAppendMs(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0"}, {4 * time.Microsecond, "0"}, {5 * time.Microsecond, "0.01"}, {100 * time.Microsecond, "0.1"},
		{12500 * time.Microsecond, "12.5"}, {12049 * time.Microsecond, "12.05"}, {2 * time.Second, "2000"},
		{-time.Millisecond, "0"}, {24 * time.Hour, "42949672.95"},
	} {
		if got := string(appendMs(nil, ticks(tt.d))); got != tt.want {
			t.Errorf("%v: %s, want %s", tt.d, got, tt.want)
		}
	}
}

// BenchmarkTimelineAdd measures noting one written event and stamping it,
// as the relay does for every event.
func BenchmarkTimelineAdd(b *testing.B) {
	ev := textDelta(" the quick brown fox")
	var tl Timeline
	tl.Begin(time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if tl.Len() == MaxTimelineEntries {
			tl.entries, tl.stamped = tl.entries[:0], 0
		}
		tl.Add(ev, FromUpstream)
		tl.Stamp()
	}
}

// BenchmarkRecordTimeline measures converting a streamed call with a
// timeline of 200 events (on the recorder's goroutine).
func BenchmarkRecordTimeline(b *testing.B) {
	now := time.Now()
	c := &Call{ID: "c1", Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES, Stream: true, Started: now, Finished: now}
	c.Timeline.Begin(now)
	ev := textDelta(" the quick brown fox")
	for i := range 200 {
		c.Timeline.Add(ev, FromUpstream)
		c.Timeline.stampAt(time.Duration(i) * 20 * time.Millisecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		if p := c.Record().GetEvents(); len(p) != 1 || !bytes.HasSuffix(p[0].GetPayloadJson(), []byte(`"dropped":0}`)) {
			b.Fatal("want the timeline event")
		}
	}
}
