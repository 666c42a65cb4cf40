package canon

import (
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Accumulator rebuilds a complete message from stream events. A block's
// content is what its start carries followed by its deltas: text deltas
// for a text block, thinking and signature deltas for a thinking block
// (the two kept apart: the signature must reach the next turn
// byte-identical), input_json fragments for a tool_use block. A delta of
// another kind than its block's, or of a block never started, is
// ignored; other blocks (redacted_thinking, ...) are kept as they
// started. Deltas are appended to one buffer per block and joined only in
// Message, so that rebuilding a stream costs in proportion to its length,
// however many deltas it has.
//
// The zero value is ready to use. An Accumulator is not safe for
// concurrent use.
type Accumulator struct {
	msg    cpv1.Message
	blocks map[uint32]*cpv1.ContentBlock
	order  []uint32
	parts  map[uint32]*blockParts
}

// blockParts are the contents of one block so far.
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
		a.addStart(v.ContentBlockStart)
	case *cpv1.StreamEvent_ContentBlockDelta:
		a.addDelta(v.ContentBlockDelta)
	case *cpv1.StreamEvent_MessageDelta:
		a.msg.StopReason = v.MessageDelta.GetStopReason()
		a.msg.Usage = mergeUsage(a.msg.Usage, v.MessageDelta.GetUsage())
	}
}

// addStart opens a block; a second start at the same index starts it
// over in its first place.
func (a *Accumulator) addStart(s *cpv1.ContentBlockStart) {
	idx := s.GetIndex()
	if _, dup := a.blocks[idx]; !dup {
		a.order = append(a.order, idx)
	}
	a.blocks[idx] = s.GetBlock()
	p := &blockParts{}
	switch b := s.GetBlock().GetBlock().(type) {
	case *cpv1.ContentBlock_Text:
		p.text = append(p.text, b.Text.GetText()...)
	case *cpv1.ContentBlock_Thinking:
		p.text = append(p.text, b.Thinking.GetThinking()...)
		p.signature = append(p.signature, b.Thinking.GetSignature()...)
	case *cpv1.ContentBlock_ToolUse:
		p.args = append(p.args, b.ToolUse.GetInputJson()...)
	}
	a.parts[idx] = p
}

// addDelta appends a delta to its block when the kinds match.
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
		if b.GetToolUse() != nil {
			p.args = append(p.args, dv.InputJson.GetPartialJson()...)
		}
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

// Message returns the message built so far; later events do not change
// it. A tool call that received no arguments gets "{}".
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
