// Package canon works with the canonical message and stream model of the
// control-plane contract (luthien.controlplane.v1 Message, ContentBlock,
// StreamEvent), for the gateway and the control plane alike: it turns a
// complete message or block into the stream a provider would have sent
// for it (Events, BlockEvents), and rebuilds a complete message from a
// stream (Accumulator).
//
// A stream carries a block as the providers do: its start holds the
// block's type and, for tool_use, its id and name; its content follows as
// deltas. Text comes as text deltas, tool arguments as input_json
// fragments, extended thinking as thinking deltas then the signature as
// signature deltas. Blocks of other types (redacted_thinking, server
// tools, any type the model does not type) start whole and have no
// delta of their own.
package canon

import (
	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Events returns the stream of a complete message: message_start, each
// block as BlockEvents gives it, then message_delta and message_stop.
// Every event has seq 0 (none comes from upstream).
func Events(msg *cpv1.Message) []*cpv1.StreamEvent {
	out := make([]*cpv1.StreamEvent, 0, 4*len(msg.GetContent())+3)
	u := msg.GetUsage()
	out = append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{
		Id: msg.GetId(), Model: msg.GetModel(),
		Usage: &cpv1.Usage{InputTokens: u.GetInputTokens(),
			CacheCreationInputTokens: u.GetCacheCreationInputTokens(),
			CacheReadInputTokens:     u.GetCacheReadInputTokens()},
	}}})
	for i, b := range msg.GetContent() {
		out = append(out, BlockEvents(uint32(i), b)...)
	}
	return append(out,
		&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{
			StopReason: msg.GetStopReason(),
			Usage:      &cpv1.Usage{OutputTokens: u.GetOutputTokens()},
		}}},
		&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}},
	)
}

// BlockEvents returns the stream of one complete block at index idx: its
// start, the deltas that carry its content and its stop, every event with
// seq 0. Text goes in one text delta (none when empty); tool arguments in
// one input_json delta, "{}" when the block has none, so that every
// client format receives an arguments object; thinking in one thinking
// delta (none when empty) then one signature delta (none when empty).
// Other blocks start whole. b is not changed.
func BlockEvents(idx uint32, b *cpv1.ContentBlock) []*cpv1.StreamEvent {
	start := proto.CloneOf(b)
	var deltas []*cpv1.ContentBlockDelta
	switch x := start.GetBlock().(type) {
	case *cpv1.ContentBlock_Text:
		if t := x.Text.GetText(); t != "" {
			deltas = append(deltas, &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: t}}})
		}
		x.Text.Text = ""
	case *cpv1.ContentBlock_ToolUse:
		args := string(x.ToolUse.GetInputJson())
		if args == "" {
			args = "{}"
		}
		deltas = append(deltas, &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: args}}})
		x.ToolUse.InputJson = nil
	case *cpv1.ContentBlock_Thinking:
		if t := x.Thinking.GetThinking(); t != "" {
			deltas = append(deltas, &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Thinking{Thinking: &cpv1.ThinkingDelta{Thinking: t}}})
		}
		if s := x.Thinking.GetSignature(); s != "" {
			deltas = append(deltas, &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Signature{Signature: &cpv1.SignatureDelta{Signature: s}}})
		}
		x.Thinking.Thinking, x.Thinking.Signature = "", ""
	}
	out := make([]*cpv1.StreamEvent, 0, len(deltas)+2)
	out = append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{
		ContentBlockStart: &cpv1.ContentBlockStart{Index: idx, Block: start}}})
	for _, d := range deltas {
		d.Index = idx
		out = append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: d}})
	}
	return append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStop{
		ContentBlockStop: &cpv1.ContentBlockStop{Index: idx}}})
}
