package proxy

import (
	"google.golang.org/protobuf/proto"

	"luthien.dev/canon"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// A response whose stop reason says tool_use (OpenAI: tool_calls) but
// that holds no tool call would leave the client waiting for tools that
// never come, whether upstream sent none or a policy removed them all.
// The gateway ends such a response with end_turn (stop), streamed and
// whole, with or without a policy; the control plane's block policies
// apply the same rule to what they decide.

// toolStop tracks one streamed response's tool calls.
type toolStop struct {
	tools bool // a tool call was written
}

// check notes the tool calls among evs, about to be written in order, and
// returns them with a tool_use stop reason turned into end_turn when no
// tool call came before it. fixed reports a rewrite; evs is then a new
// slice holding a changed copy of the event, never the input changed.
func (t *toolStop) check(evs []*cpv1.StreamEvent) (out []*cpv1.StreamEvent, fixed bool) {
	out = evs
	for i, ev := range evs {
		if ev.GetContentBlockStart().GetBlock().GetToolUse() != nil {
			t.tools = true
			continue
		}
		md := ev.GetMessageDelta()
		want := canon.StopReason(md.GetStopReason(), t.tools)
		if md == nil || want == md.GetStopReason() {
			continue
		}
		if !fixed {
			out, fixed = append([]*cpv1.StreamEvent(nil), evs...), true
		}
		c := proto.CloneOf(ev)
		c.GetMessageDelta().StopReason = want
		out[i] = c
	}
	return out, fixed
}

// fixStop returns msg with a tool_use stop reason turned into end_turn when
// it holds no tool call, or msg itself.
func fixStop(msg *cpv1.Message) (*cpv1.Message, bool) {
	hasTools := false
	for _, b := range msg.GetContent() {
		hasTools = hasTools || b.GetToolUse() != nil
	}
	want := canon.StopReason(msg.GetStopReason(), hasTools)
	if want == msg.GetStopReason() {
		return msg, false
	}
	c := proto.CloneOf(msg)
	c.StopReason = want
	return c, true
}
