package stream

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"luthien.dev/canon"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// errorf makes an error of the builder.
func errorf(format string, args ...any) error {
	return fmt.Errorf("stream builder: "+format, args...)
}

// Builder turns one input stream and a policy's decisions into a valid
// output stream. Feed it every input event (Event), then End. It is not
// safe for concurrent use: a policy's Stream calls it from one goroutine.
type Builder struct {
	d    Decider
	opts Options

	started  bool // message_start seen
	finished bool // message_delta emitted
	stopped  bool // message_stop emitted
	failed   bool // an error event passed: nothing more is emitted

	next      uint32 // next output index
	open      *openBlock
	slots     []slot   // the tool section, in order
	heldOrder []*Block // held tool calls, in input order
}

// openBlock is the input block between its start and its stop.
type openBlock struct {
	index uint32
	held  *Block // nil when streamed
	out   uint32 // output index of a streamed block
	text  []byte // accumulated text or input JSON of a held block
}

// NewBuilder returns a builder asking d about the blocks it holds.
func NewBuilder(d Decider, opts Options) *Builder {
	return &Builder{d: d, opts: opts}
}

// Event takes one input event and returns the events to emit now.
func (b *Builder) Event(ctx context.Context, ev *cpv1.StreamEvent) ([]*cpv1.StreamEvent, error) {
	if b.failed || b.stopped {
		return nil, nil
	}
	switch e := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_MessageStart:
		if b.started {
			return nil, nil // a second message_start would break the stream
		}
		b.started = true
		return []*cpv1.StreamEvent{ev}, nil
	case *cpv1.StreamEvent_ContentBlockStart:
		return b.blockStart(ctx, ev, e.ContentBlockStart)
	case *cpv1.StreamEvent_ContentBlockDelta:
		return b.blockDelta(ev, e.ContentBlockDelta), nil
	case *cpv1.StreamEvent_ContentBlockStop:
		if b.open == nil || b.open.index != e.ContentBlockStop.GetIndex() || b.finished {
			return nil, nil // a stop of no open block
		}
		return b.closeOpen(ctx, ev)
	case *cpv1.StreamEvent_MessageDelta:
		if b.finished {
			return nil, nil // exactly one message_delta
		}
		return b.finish(ctx, ev)
	case *cpv1.StreamEvent_MessageStop:
		var out []*cpv1.StreamEvent
		if !b.finished {
			var err error
			if out, err = b.finish(ctx, nil); err != nil {
				return nil, err
			}
		}
		b.stopped = true
		return append(out, ev), nil
	case *cpv1.StreamEvent_Error:
		// Held tool calls are never released unjudged: fail closed.
		b.failed = true
		return []*cpv1.StreamEvent{ev}, nil
	default:
		// Pings and opaque events go through where they are.
		return []*cpv1.StreamEvent{ev}, nil
	}
}

// End is called after the last input; upstreamErr is set when upstream
// broke off. A stream that ended cleanly without its message_delta or
// message_stop gets them; one that broke off gets nothing more (the
// gateway ends it with an error event) and held tool calls are dropped.
func (b *Builder) End(ctx context.Context, upstreamErr string) ([]*cpv1.StreamEvent, error) {
	if upstreamErr != "" || b.failed || b.stopped || !b.started {
		return nil, nil
	}
	var out []*cpv1.StreamEvent
	if !b.finished {
		var err error
		if out, err = b.finish(ctx, nil); err != nil {
			return nil, err
		}
	}
	b.stopped = true
	return append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}}), nil
}

// blockStart opens a block: held (tool calls always, text with HoldText)
// or streamed under its output index.
func (b *Builder) blockStart(ctx context.Context, ev *cpv1.StreamEvent, start *cpv1.ContentBlockStart) ([]*cpv1.StreamEvent, error) {
	if b.finished {
		return nil, nil // no block after message_delta
	}
	var out []*cpv1.StreamEvent
	if b.open != nil { // the previous block was never stopped
		var err error
		if out, err = b.closeOpen(ctx, nil); err != nil {
			return nil, err
		}
	}
	block := start.GetBlock()
	ob := &openBlock{index: start.GetIndex()}
	switch {
	case block.GetToolUse() != nil:
		ob.held = &Block{Index: ob.index, Content: proto.CloneOf(block), events: []*cpv1.StreamEvent{ev}}
		ob.text = append(ob.text, block.GetToolUse().GetInputJson()...)
	case b.opts.HoldText && block.GetText() != nil:
		ob.held = &Block{Index: ob.index, Content: proto.CloneOf(block), events: []*cpv1.StreamEvent{ev}}
		ob.text = append(ob.text, block.GetText().GetText()...)
	default:
		ob.out = b.next
		b.next++
		out = append(out, reindex(ev, ob.out, false))
	}
	b.open = ob
	return out, nil
}

// blockDelta holds or re-indexes a delta of the open block; deltas of no
// open block are dropped.
func (b *Builder) blockDelta(ev *cpv1.StreamEvent, d *cpv1.ContentBlockDelta) []*cpv1.StreamEvent {
	ob := b.open
	if ob == nil || ob.index != d.GetIndex() {
		return nil
	}
	if ob.held == nil {
		return []*cpv1.StreamEvent{reindex(ev, ob.out, false)}
	}
	ob.held.events = append(ob.held.events, ev)
	switch x := d.GetDelta().(type) {
	case *cpv1.ContentBlockDelta_Text:
		ob.text = append(ob.text, x.Text.GetText()...)
	case *cpv1.ContentBlockDelta_InputJson:
		ob.text = append(ob.text, x.InputJson.GetPartialJson()...)
	}
	return nil
}

// closeOpen closes the open block with stop (nil: a stop is made). A
// streamed block's stop is emitted; a held text block is decided now; a
// held tool call joins the tool section.
func (b *Builder) closeOpen(ctx context.Context, stop *cpv1.StreamEvent) ([]*cpv1.StreamEvent, error) {
	ob := b.open
	b.open = nil
	if stop == nil {
		stop = &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{Index: ob.index}}}
	}
	if ob.held == nil {
		return []*cpv1.StreamEvent{reindex(stop, ob.out, false)}, nil
	}
	held := ob.held
	held.events = append(held.events, stop)
	if tu := held.Content.GetToolUse(); tu != nil {
		tu.InputJson = ob.text
		b.slots = append(b.slots, slot{held: held})
		b.heldOrder = append(b.heldOrder, held)
		return nil, nil
	}
	if t := held.Content.GetText(); t != nil {
		t.Text = string(ob.text)
	}
	dec, err := b.d.DecideBlock(ctx, held)
	if err != nil {
		return nil, err
	}
	var out []*cpv1.StreamEvent
	switch dec.Action {
	case Keep:
		out = b.release(held, -1, -1)
	case Replace:
		for _, blk := range dec.Blocks {
			if blk.GetToolUse() != nil {
				b.slots = append(b.slots, slot{block: blk})
			} else {
				out = append(out, b.create(blk)...)
			}
		}
	}
	if dec.Notice != "" {
		out = append(out, b.create(TextBlock(dec.Notice))...)
	}
	return out, nil
}

// finish closes the open block, decides the tool calls and emits the
// tool section, then md (nil: one is made) with the stop reason rewritten
// when every tool call was blocked.
func (b *Builder) finish(ctx context.Context, md *cpv1.StreamEvent) ([]*cpv1.StreamEvent, error) {
	var out []*cpv1.StreamEvent
	if b.open != nil {
		closed, err := b.closeOpen(ctx, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, closed...)
	}
	p, err := decideTools(ctx, b.d, b.slots)
	if err != nil {
		return nil, err
	}
	b.slots = nil
	for _, n := range p.notices {
		out = append(out, b.create(n)...)
	}
	inOrdinal := make(map[*Block]int, len(b.heldOrder))
	for i, h := range b.heldOrder {
		inOrdinal[h] = i
	}
	for i, t := range p.tools {
		if t.held != nil {
			out = append(out, b.release(t.held, inOrdinal[t.held], i)...)
		} else {
			out = append(out, b.create(t.block)...)
		}
	}
	if md == nil {
		stop := "end_turn"
		if len(p.tools) > 0 {
			stop = "tool_use"
		}
		md = &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: stop}}}
	}
	if want := canon.StopReason(md.GetMessageDelta().GetStopReason(), len(p.tools) > 0); want != md.GetMessageDelta().GetStopReason() {
		md = proto.CloneOf(md)
		md.GetMessageDelta().StopReason = want
	}
	b.finished = true
	b.heldOrder = nil
	return append(out, md), nil
}

// release emits a held block's events under the next output index. The
// input pointers themselves are emitted when nothing about them changes:
// same index and, for tool calls, the same position among the tool calls
// (inOrdinal, outOrdinal; -1 for other blocks).
func (b *Builder) release(held *Block, inOrdinal, outOrdinal int) []*cpv1.StreamEvent {
	idx := b.next
	b.next++
	out := make([]*cpv1.StreamEvent, 0, len(held.events))
	for _, ev := range held.events {
		out = append(out, reindex(ev, idx, inOrdinal != outOrdinal))
	}
	return out
}

// create emits a block a policy made, streamed as canon.BlockEvents
// streams it, under the next output index, every event with seq 0.
func (b *Builder) create(block *cpv1.ContentBlock) []*cpv1.StreamEvent {
	idx := b.next
	b.next++
	return canon.BlockEvents(idx, block)
}

// reindex returns ev at output index idx: ev itself when its index is
// already idx and force is false, else a clone keeping its seq (so the
// gateway encodes it anew).
func reindex(ev *cpv1.StreamEvent, idx uint32, force bool) *cpv1.StreamEvent {
	cur, ok := blockIndex(ev)
	if !ok || (cur == idx && !force) {
		return ev
	}
	out := proto.CloneOf(ev)
	switch x := out.GetEvent().(type) {
	case *cpv1.StreamEvent_ContentBlockStart:
		x.ContentBlockStart.Index = idx
	case *cpv1.StreamEvent_ContentBlockDelta:
		x.ContentBlockDelta.Index = idx
	case *cpv1.StreamEvent_ContentBlockStop:
		x.ContentBlockStop.Index = idx
	}
	return out
}

// blockIndex returns the block index of a block event.
func blockIndex(ev *cpv1.StreamEvent) (uint32, bool) {
	switch x := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_ContentBlockStart:
		return x.ContentBlockStart.GetIndex(), true
	case *cpv1.StreamEvent_ContentBlockDelta:
		return x.ContentBlockDelta.GetIndex(), true
	case *cpv1.StreamEvent_ContentBlockStop:
		return x.ContentBlockStop.GetIndex(), true
	}
	return 0, false
}

// ApplyMessage applies a decider to a complete message with the same
// semantics as a Builder on its stream: held text blocks are decided in
// place, tool calls together at the end; notices go before the tool
// calls, tool calls last; stop_reason tool_use becomes end_turn when
// no tool call is left. It returns msg itself when nothing changes.
func ApplyMessage(ctx context.Context, d Decider, opts Options, msg *cpv1.Message) (*cpv1.Message, error) {
	var content []*cpv1.ContentBlock
	var slots []slot
	for i, block := range msg.GetContent() {
		switch {
		case block.GetToolUse() != nil:
			slots = append(slots, slot{held: &Block{Index: uint32(i), Content: block}})
		case opts.HoldText && block.GetText() != nil:
			dec, err := d.DecideBlock(ctx, &Block{Index: uint32(i), Content: block})
			if err != nil {
				return nil, err
			}
			switch dec.Action {
			case Keep:
				content = append(content, block)
			case Replace:
				for _, b := range dec.Blocks {
					if b.GetToolUse() != nil {
						slots = append(slots, slot{block: b})
					} else {
						content = append(content, b)
					}
				}
			}
			if dec.Notice != "" {
				content = append(content, TextBlock(dec.Notice))
			}
		default:
			content = append(content, block)
		}
	}
	p, err := decideTools(ctx, d, slots)
	if err != nil {
		return nil, err
	}
	content = append(content, p.notices...)
	for _, t := range p.tools {
		if t.held != nil {
			content = append(content, t.held.Content)
		} else {
			content = append(content, t.block)
		}
	}
	stop := canon.StopReason(msg.GetStopReason(), len(p.tools) > 0)
	if stop == msg.GetStopReason() && slices.Equal(content, msg.GetContent()) {
		return msg, nil
	}
	out := WithContent(msg, content)
	out.StopReason = stop
	return out, nil
}

// WithContent returns a copy of msg with its content replaced; every other
// field is shared with msg, which neither is mutated afterwards.
func WithContent(msg *cpv1.Message, content []*cpv1.ContentBlock) *cpv1.Message {
	out := &cpv1.Message{}
	dst := out.ProtoReflect()
	contentNumber := dst.Descriptor().Fields().ByName("content").Number()
	msg.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Number() != contentNumber {
			dst.Set(fd, v)
		}
		return true
	})
	out.Content = content
	return out
}
