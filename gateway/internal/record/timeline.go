package record

import (
	"math"
	"strconv"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// MaxTimelineEntries bounds a call's timeline; the events written after
// it are only counted.
const MaxTimelineEntries = 2000

// timelineCap is a timeline's first capacity: a short answer's stream
// fits without growing.
const timelineCap = 256

// Source says where an event written to the client came from.
type Source uint8

// The sources of a timeline's events.
const (
	// FromUpstream: upstream's bytes, as upstream sent them.
	FromUpstream Source = iota
	// Reencoded: an upstream event no policy changed, encoded anew
	// because the rest of its upstream event was changed or dropped.
	Reencoded
	// FromPolicy: changed or created by a policy; this includes the
	// stream of a whole answer the request policies gave instead of
	// upstream's (a cached answer is one).
	FromPolicy
	// FromGateway: written by the gateway itself, an error it reports in
	// the stream.
	FromGateway
)

var sourceNames = [...]string{FromUpstream: "upstream", Reencoded: "reencoded", FromPolicy: "policy", FromGateway: "gateway"}

// kind is the short name of a canonical event's type.
type kind uint8

const (
	kindUnknown kind = iota
	kindMessageStart
	kindTextStart
	kindToolCallStart
	kindThinkingStart
	kindBlockStart
	kindTextDelta
	kindToolArgsDelta
	kindThinkingDelta
	kindSignatureDelta
	kindDelta
	kindBlockStop
	kindMessageDelta
	kindMessageStop
	kindPing
	kindError
	kindUsage
	kindOpaque
)

var kindNames = [...]string{
	kindUnknown: "unknown", kindMessageStart: "message_start", kindTextStart: "text_start",
	kindToolCallStart: "tool_call_start", kindThinkingStart: "thinking_start", kindBlockStart: "block_start",
	kindTextDelta: "text_delta", kindToolArgsDelta: "tool_args_delta", kindThinkingDelta: "thinking_delta",
	kindSignatureDelta: "signature_delta", kindDelta: "delta", kindBlockStop: "block_stop",
	kindMessageDelta: "message_delta", kindMessageStop: "message_stop", kindPing: "ping", kindError: "error",
	kindUsage: "usage", kindOpaque: "opaque",
}

// kindOf derives the short name of ev's type from its oneofs.
func kindOf(ev *cpv1.StreamEvent) kind {
	switch e := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_MessageStart:
		return kindMessageStart
	case *cpv1.StreamEvent_ContentBlockStart:
		switch e.ContentBlockStart.GetBlock().GetBlock().(type) {
		case *cpv1.ContentBlock_Text:
			return kindTextStart
		case *cpv1.ContentBlock_ToolUse:
			return kindToolCallStart
		case *cpv1.ContentBlock_Thinking:
			return kindThinkingStart
		}
		return kindBlockStart
	case *cpv1.StreamEvent_ContentBlockDelta:
		switch e.ContentBlockDelta.GetDelta().(type) {
		case *cpv1.ContentBlockDelta_Text:
			return kindTextDelta
		case *cpv1.ContentBlockDelta_InputJson:
			return kindToolArgsDelta
		case *cpv1.ContentBlockDelta_Thinking:
			return kindThinkingDelta
		case *cpv1.ContentBlockDelta_Signature:
			return kindSignatureDelta
		}
		return kindDelta
	case *cpv1.StreamEvent_ContentBlockStop:
		return kindBlockStop
	case *cpv1.StreamEvent_MessageDelta:
		return kindMessageDelta
	case *cpv1.StreamEvent_MessageStop:
		return kindMessageStop
	case *cpv1.StreamEvent_Ping:
		return kindPing
	case *cpv1.StreamEvent_Error:
		return kindError
	case *cpv1.StreamEvent_Opaque:
		if e.Opaque.GetType() == "openai.usage" {
			return kindUsage
		}
		return kindOpaque
	}
	return kindUnknown
}

// tick is a timeline's unit of time: 10 µs, the precision it records.
const tick = 10 * time.Microsecond

// entry is one event of a timeline: 8 bytes.
type entry struct {
	at     uint32 // ticks since the call started (saturating: 11.9 hours)
	kind   kind
	source Source
}

// Timeline is the stream timeline of a call: one entry per canonical
// event the gateway wrote to the client, in order, with when it went out,
// its type and its source. It records nothing until Begin, and a nil
// *Timeline records nothing, so calls that stream nothing cost nothing.
//
// Filling it is cheap enough for every event: Add appends 8 bytes to a
// slice Begin allocates (2 KB, growing to at most MaxTimelineEntries, 16
// KB; later events are only counted), and Stamp, called once the written
// events were flushed, reads the clock once for all of them. The recorder turns it
// into the call's stream.timeline event (see Call.Record):
//
//	{"entries":[{"ms":12.5,"kind":"text_delta","source":"upstream"},...],"dropped":0,"upstream_first_event_ms":3.2}
//
// ms is when the event was flushed to the client, in milliseconds since
// the call started, to 0.01 ms. kind is one of message_start, text_start,
// tool_call_start, thinking_start, block_start (another block type),
// text_delta, tool_args_delta, thinking_delta, signature_delta, delta
// (another delta type), block_stop, message_delta, message_stop, ping,
// error, usage (OpenAI's usage chunk), opaque (any other provider event).
// source is upstream, reencoded, policy or gateway (see Source). dropped
// counts the events written after the first MaxTimelineEntries.
// upstream_first_event_ms, present when known, is when upstream's first
// event had arrived.
type Timeline struct {
	start         time.Time
	entries       []entry
	stamped       int // entries[:stamped] have their time
	dropped       int
	upstreamFirst time.Time
}

// Begin starts recording; offsets are counted from start (the call's
// start).
func (t *Timeline) Begin(start time.Time) {
	if t == nil || t.entries != nil {
		return
	}
	t.start = start
	t.entries = make([]entry, 0, timelineCap)
}

// Add notes one event written to the client; its time is that of the
// next Stamp.
func (t *Timeline) Add(ev *cpv1.StreamEvent, src Source) {
	if t == nil || t.entries == nil {
		return
	}
	if len(t.entries) == cap(t.entries) && !t.grow() {
		t.dropped++
		return
	}
	t.entries = append(t.entries, entry{kind: kindOf(ev), source: src})
}

// AddAll notes events written together.
func (t *Timeline) AddAll(evs []*cpv1.StreamEvent, src Source) {
	for _, ev := range evs {
		t.Add(ev, src)
	}
}

// grow doubles the capacity up to the bound; it reports whether there is
// room.
func (t *Timeline) grow() bool {
	n := min(2*cap(t.entries), MaxTimelineEntries)
	if n <= len(t.entries) {
		return false
	}
	grown := make([]entry, len(t.entries), n)
	copy(grown, t.entries)
	t.entries = grown
	return true
}

// Stamp gives the events added since the last Stamp the current time:
// call it once they are flushed to the client. It reads the clock only
// when there are such events, and then only the monotonic clock (the wall
// clock costs several times more on some virtual machines).
func (t *Timeline) Stamp() {
	if t == nil || t.stamped == len(t.entries) {
		return
	}
	t.stampAt(time.Since(t.start))
}

// stampAt gives the events not stamped yet the offset d.
func (t *Timeline) stampAt(d time.Duration) {
	at := ticks(d)
	for i := t.stamped; i < len(t.entries); i++ {
		t.entries[i].at = at
	}
	t.stamped = len(t.entries)
}

func ticks(d time.Duration) uint32 {
	d = (d + tick/2) / tick
	switch {
	case d < 0:
		return 0
	case d > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(d)
}

// UpstreamFirstEvent notes when upstream's first event arrived; a zero
// time is ignored.
func (t *Timeline) UpstreamFirstEvent(at time.Time) {
	if t != nil && t.entries != nil && !at.IsZero() {
		t.upstreamFirst = at
	}
}

// Len is the number of events noted, those past the bound included.
func (t *Timeline) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries) + t.dropped
}

// payload renders the timeline as its event's JSON, or nil when no event
// was written. Events never stamped (a write that failed before its
// flush) get the time end.
func (t *Timeline) payload(end time.Time) []byte {
	if t.Len() == 0 {
		return nil
	}
	if t.stamped < len(t.entries) {
		t.stampAt(end.Sub(t.start))
	}
	// An entry takes 40 to 65 bytes.
	b := make([]byte, 0, 80+64*len(t.entries))
	b = append(b, `{"entries":[`...)
	for i, e := range t.entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"ms":`...)
		b = appendMs(b, e.at)
		b = append(b, `,"kind":"`...)
		b = append(b, kindNames[e.kind]...)
		b = append(b, `","source":"`...)
		b = append(b, sourceNames[e.source]...)
		b = append(b, `"}`...)
	}
	b = append(b, `],"dropped":`...)
	b = strconv.AppendInt(b, int64(t.dropped), 10)
	if !t.upstreamFirst.IsZero() {
		b = append(b, `,"upstream_first_event_ms":`...)
		b = appendMs(b, ticks(t.upstreamFirst.Sub(t.start)))
	}
	return append(b, '}')
}

// appendMs writes ticks as milliseconds: "12", "12.5", "12.05".
func appendMs(b []byte, at uint32) []byte {
	b = strconv.AppendUint(b, uint64(at/100), 10)
	frac := at % 100
	switch {
	case frac == 0:
		return b
	case frac%10 == 0:
		return append(b, '.', byte('0'+frac/10))
	}
	return append(b, '.', byte('0'+frac/10), byte('0'+frac%10))
}
