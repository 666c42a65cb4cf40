// Package streamcheck checks that a stream of canonical events is one a
// client can consume: the stream invariants every policy must keep,
// whatever it does to a response.
//
//  1. Non-empty; message_start first; message_stop last; exactly one
//     message_delta; every block closed before message_delta.
//  2. Block indices contiguous from 0 and increasing; deltas only between
//     a block's start and stop; each block stopped once.
//  3. tool_use blocks are the last content blocks: no other block after
//     one.
//  4. stop_reason tool_use only with at least one tool_use block.
//  5. An in-stream error ends the stream: it must be the last event, and
//     rules 1 and 4 do not apply to a stream that ends with one.
//
// The OpenAI wire rules (content and finish_reason in separate chunks,
// one finish_reason, [DONE] last) follow from these through the gateway's
// encoder and are checked on the wire by the gateway's end-to-end tests.
package streamcheck

import (
	"errors"
	"fmt"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Check returns every violation found in evs, joined; nil when the stream
// is valid.
func Check(evs []*cpv1.StreamEvent) error {
	c := &checker{open: -1}
	if len(evs) == 0 {
		return errors.New("rule 1: empty stream")
	}
	for i, ev := range evs {
		c.event(i, ev, i == len(evs)-1)
	}
	c.end(evs)
	return errors.Join(c.errs...)
}

// checker is the state of one check.
type checker struct {
	errs       []error
	next       uint32 // expected next block index
	open       int64  // open block index, -1 when none
	toolSeen   bool   // a tool_use block started
	tools      int
	deltas     int
	stopReason string
	stops      int
	errored    bool
}

// fail records a violation at event i.
func (c *checker) fail(i int, rule int, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("event %d: rule %d: %s", i, rule, fmt.Sprintf(format, args...)))
}

// event checks one event.
func (c *checker) event(i int, ev *cpv1.StreamEvent, last bool) {
	if c.stops > 0 {
		c.fail(i, 1, "event after message_stop")
	}
	if i == 0 {
		_, isStart := ev.GetEvent().(*cpv1.StreamEvent_MessageStart)
		_, isErr := ev.GetEvent().(*cpv1.StreamEvent_Error)
		if !isStart && !isErr {
			c.fail(i, 1, "first event is %s, want message_start", Kind(ev))
		}
	}
	switch e := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_MessageStart:
		if i != 0 {
			c.fail(i, 1, "message_start is not the first event")
		}
	case *cpv1.StreamEvent_ContentBlockStart:
		idx := e.ContentBlockStart.GetIndex()
		if c.deltas > 0 {
			c.fail(i, 1, "content_block_start %d after message_delta", idx)
		}
		if c.open >= 0 {
			c.fail(i, 2, "content_block_start %d while block %d is open", idx, c.open)
		}
		if idx != c.next {
			c.fail(i, 2, "block index %d, want %d", idx, c.next)
		}
		c.next = idx + 1
		c.open = int64(idx)
		isTool := e.ContentBlockStart.GetBlock().GetToolUse() != nil
		if isTool {
			c.toolSeen = true
			c.tools++
		} else if c.toolSeen {
			c.fail(i, 3, "%s block %d after a tool_use block", blockType(e.ContentBlockStart.GetBlock()), idx)
		}
	case *cpv1.StreamEvent_ContentBlockDelta:
		if idx := e.ContentBlockDelta.GetIndex(); int64(idx) != c.open {
			c.fail(i, 2, "delta for block %d outside its start and stop", idx)
		}
	case *cpv1.StreamEvent_ContentBlockStop:
		if idx := e.ContentBlockStop.GetIndex(); int64(idx) != c.open {
			c.fail(i, 2, "stop for block %d, which is not open", idx)
		}
		c.open = -1
	case *cpv1.StreamEvent_MessageDelta:
		c.deltas++
		if c.deltas > 1 {
			c.fail(i, 1, "message_delta number %d, want exactly one", c.deltas)
		}
		if c.open >= 0 {
			c.fail(i, 1, "message_delta while block %d is open", c.open)
		}
		c.stopReason = e.MessageDelta.GetStopReason()
	case *cpv1.StreamEvent_MessageStop:
		c.stops++
	case *cpv1.StreamEvent_Error:
		c.errored = true
		if !last {
			c.fail(i, 5, "error event is not the last event")
		}
	case nil:
		c.fail(i, 1, "empty event")
	}
}

// end checks what only the whole stream shows.
func (c *checker) end(evs []*cpv1.StreamEvent) {
	if c.errored {
		return
	}
	n := len(evs) - 1
	if c.deltas == 0 {
		c.fail(n, 1, "no message_delta")
	}
	if _, ok := evs[n].GetEvent().(*cpv1.StreamEvent_MessageStop); !ok {
		c.fail(n, 1, "last event is %s, want message_stop", Kind(evs[n]))
	}
	if c.open >= 0 {
		c.fail(n, 2, "block %d never stopped", c.open)
	}
	if c.stopReason == "tool_use" && c.tools == 0 {
		c.fail(n, 4, "stop_reason tool_use without a tool_use block")
	}
}

// Kind names an event's type as the Anthropic API does.
func Kind(ev *cpv1.StreamEvent) string {
	switch ev.GetEvent().(type) {
	case *cpv1.StreamEvent_MessageStart:
		return "message_start"
	case *cpv1.StreamEvent_ContentBlockStart:
		return "content_block_start"
	case *cpv1.StreamEvent_ContentBlockDelta:
		return "content_block_delta"
	case *cpv1.StreamEvent_ContentBlockStop:
		return "content_block_stop"
	case *cpv1.StreamEvent_MessageDelta:
		return "message_delta"
	case *cpv1.StreamEvent_MessageStop:
		return "message_stop"
	case *cpv1.StreamEvent_Ping:
		return "ping"
	case *cpv1.StreamEvent_Error:
		return "error"
	case *cpv1.StreamEvent_Opaque:
		return "opaque"
	}
	return "empty"
}

// blockType names a content block's type.
func blockType(b *cpv1.ContentBlock) string {
	switch x := b.GetBlock().(type) {
	case *cpv1.ContentBlock_Text:
		return "text"
	case *cpv1.ContentBlock_ToolUse:
		return "tool_use"
	case *cpv1.ContentBlock_Thinking:
		return "thinking"
	case *cpv1.ContentBlock_Opaque:
		return x.Opaque.GetType()
	}
	return "empty"
}
