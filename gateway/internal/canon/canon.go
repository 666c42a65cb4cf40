// Package canon works with the canonical message and stream model of the
// control-plane contract: it turns a complete message into the stream a
// provider would have sent for it, and rebuilds a complete message from a
// stream.
package canon

import (
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Events returns the stream of a complete message: message_start, each
// block as start, one delta, stop, then message_delta and message_stop.
// Every event has seq 0 (none comes from upstream).
func Events(msg *cpv1.Message) []*cpv1.StreamEvent {
	out := make([]*cpv1.StreamEvent, 0, 3*len(msg.GetContent())+3)
	out = append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{
		Id: msg.GetId(), Model: msg.GetModel(),
		Usage: &cpv1.Usage{InputTokens: msg.GetUsage().GetInputTokens(),
			CacheCreationInputTokens: msg.GetUsage().GetCacheCreationInputTokens(),
			CacheReadInputTokens:     msg.GetUsage().GetCacheReadInputTokens()},
	}}})
	for i, b := range msg.GetContent() {
		idx := uint32(i)
		start, deltas := splitBlock(b)
		out = append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{
			ContentBlockStart: &cpv1.ContentBlockStart{Index: idx, Block: start}}})
		for _, d := range deltas {
			d.Index = idx
			out = append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: d}})
		}
		out = append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStop{
			ContentBlockStop: &cpv1.ContentBlockStop{Index: idx}}})
	}
	out = append(out,
		&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{
			StopReason: msg.GetStopReason(),
			Usage:      &cpv1.Usage{OutputTokens: msg.GetUsage().GetOutputTokens()},
		}}},
		&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}},
	)
	return out
}

// splitBlock returns a block's empty start form and the deltas that fill it.
func splitBlock(b *cpv1.ContentBlock) (*cpv1.ContentBlock, []*cpv1.ContentBlockDelta) {
	switch v := b.GetBlock().(type) {
	case *cpv1.ContentBlock_Text:
		start := &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{}}}
		if v.Text.GetText() == "" {
			return start, nil
		}
		return start, []*cpv1.ContentBlockDelta{{Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: v.Text.GetText()}}}}
	case *cpv1.ContentBlock_ToolUse:
		start := &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{
			Id: v.ToolUse.GetId(), Name: v.ToolUse.GetName()}}}
		args := string(v.ToolUse.GetInputJson())
		if args == "" {
			return start, nil
		}
		return start, []*cpv1.ContentBlockDelta{{Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: args}}}}
	case *cpv1.ContentBlock_Thinking:
		start := &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Thinking{Thinking: &cpv1.ThinkingBlock{}}}
		var ds []*cpv1.ContentBlockDelta
		if t := v.Thinking.GetThinking(); t != "" {
			ds = append(ds, &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Thinking{Thinking: &cpv1.ThinkingDelta{Thinking: t}}})
		}
		if s := v.Thinking.GetSignature(); s != "" {
			ds = append(ds, &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Signature{Signature: &cpv1.SignatureDelta{Signature: s}}})
		}
		return start, ds
	default:
		return b, nil
	}
}

// Accumulator rebuilds a complete message from stream events. Deltas are
// appended to one buffer per block (text, thinking, signature, tool
// arguments) and joined only in Message, so that rebuilding a stream costs
// in proportion to its length, however many deltas it has.
type Accumulator struct {
	msg    cpv1.Message
	blocks map[uint32]*cpv1.ContentBlock
	order  []uint32
	parts  map[uint32]*blockParts
}

// blockParts are the deltas of one block so far.
type blockParts struct {
	text, signature, args []byte
}

// Add folds one event into the message.
func (a *Accumulator) Add(ev *cpv1.StreamEvent) {
	if a.blocks == nil {
		a.blocks = map[uint32]*cpv1.ContentBlock{}
		a.parts = map[uint32]*blockParts{}
	}
	switch v := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_MessageStart:
		a.msg.Id, a.msg.Model = v.MessageStart.GetId(), v.MessageStart.GetModel()
		a.msg.Usage = mergeUsage(a.msg.Usage, v.MessageStart.GetUsage())
	case *cpv1.StreamEvent_ContentBlockStart:
		idx := v.ContentBlockStart.GetIndex()
		if _, dup := a.blocks[idx]; !dup {
			a.order = append(a.order, idx)
		}
		a.blocks[idx] = v.ContentBlockStart.GetBlock()
		p := &blockParts{}
		switch b := v.ContentBlockStart.GetBlock().GetBlock().(type) {
		case *cpv1.ContentBlock_Text:
			p.text = append(p.text, b.Text.GetText()...)
		case *cpv1.ContentBlock_Thinking:
			p.text = append(p.text, b.Thinking.GetThinking()...)
			p.signature = append(p.signature, b.Thinking.GetSignature()...)
		}
		a.parts[idx] = p
	case *cpv1.StreamEvent_ContentBlockDelta:
		a.addDelta(v.ContentBlockDelta)
	case *cpv1.StreamEvent_MessageDelta:
		a.msg.StopReason = v.MessageDelta.GetStopReason()
		a.msg.Usage = mergeUsage(a.msg.Usage, v.MessageDelta.GetUsage())
	}
}

func (a *Accumulator) addDelta(d *cpv1.ContentBlockDelta) {
	b, ok := a.blocks[d.GetIndex()]
	if !ok {
		return
	}
	p := a.parts[d.GetIndex()]
	switch dv := d.GetDelta().(type) {
	case *cpv1.ContentBlockDelta_Text:
		if b.GetText() != nil {
			p.text = append(p.text, dv.Text.GetText()...)
		}
	case *cpv1.ContentBlockDelta_InputJson:
		p.args = append(p.args, dv.InputJson.GetPartialJson()...)
	case *cpv1.ContentBlockDelta_Thinking:
		if b.GetThinking() != nil {
			p.text = append(p.text, dv.Thinking.GetThinking()...)
		}
	case *cpv1.ContentBlockDelta_Signature:
		if b.GetThinking() != nil {
			p.signature = append(p.signature, dv.Signature.GetSignature()...)
		}
	}
}

// Message returns the message built so far; later events do not change it.
func (a *Accumulator) Message() *cpv1.Message {
	out := &cpv1.Message{Id: a.msg.Id, Model: a.msg.Model, StopReason: a.msg.StopReason, Usage: a.msg.Usage}
	for _, idx := range a.order {
		b, p := a.blocks[idx], a.parts[idx]
		switch v := b.GetBlock().(type) {
		case *cpv1.ContentBlock_Text:
			b = &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: string(p.text)}}}
		case *cpv1.ContentBlock_Thinking:
			b = &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Thinking{Thinking: &cpv1.ThinkingBlock{
				Thinking: string(p.text), Signature: string(p.signature)}}}
		case *cpv1.ContentBlock_ToolUse:
			args := append([]byte(nil), p.args...)
			if len(args) == 0 {
				args = []byte("{}")
			}
			b = &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{
				Id: v.ToolUse.GetId(), Name: v.ToolUse.GetName(), InputJson: args}}}
		}
		out.Content = append(out.Content, b)
	}
	return out
}

// mergeUsage keeps the non-zero fields of both, b winning.
func mergeUsage(a, b *cpv1.Usage) *cpv1.Usage {
	if b == nil {
		return a
	}
	if a == nil {
		a = &cpv1.Usage{}
	}
	out := &cpv1.Usage{InputTokens: a.InputTokens, OutputTokens: a.OutputTokens,
		CacheCreationInputTokens: a.CacheCreationInputTokens, CacheReadInputTokens: a.CacheReadInputTokens}
	if b.InputTokens != 0 {
		out.InputTokens = b.InputTokens
	}
	if b.OutputTokens != 0 {
		out.OutputTokens = b.OutputTokens
	}
	if b.CacheCreationInputTokens != 0 {
		out.CacheCreationInputTokens = b.CacheCreationInputTokens
	}
	if b.CacheReadInputTokens != 0 {
		out.CacheReadInputTokens = b.CacheReadInputTokens
	}
	return out
}
