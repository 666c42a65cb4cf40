// Package stream is the stream builder shared by every policy that holds,
// drops or replaces content blocks. Whatever the policy decides, the
// builder emits a valid stream (the invariants of docs/POLICIES.md):
// message_start first, message_stop last, exactly one message_delta after
// every block is closed, contiguous block indices (blocks are re-indexed
// when some are dropped or inserted), tool_use blocks last with every
// notice before them, and stop_reason tool_use rewritten to end_turn only
// when every tool call was blocked.
//
// Tool calls are held until the message ends and decided together, so a
// policy may judge them concurrently and the builder still emits them in
// order. Events released unchanged are the input pointers themselves, so
// the service sends them as passthroughs (upstream's exact bytes).
//
// The same decisions apply to a complete message (ApplyMessage), so a
// policy behaves the same streamed and not.
package stream

import (
	"context"
	"strings"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Block is a complete content block the builder held.
type Block struct {
	// Index is the block's index in the input.
	Index uint32
	// Content is the complete block: a text block with its whole text, a
	// tool_use block with its whole input JSON.
	Content *cpv1.ContentBlock

	events []*cpv1.StreamEvent // start, deltas, stop as received; nil for a complete message
}

// Tool returns the tool call, or nil when the block is not a tool_use.
func (b *Block) Tool() *cpv1.ToolUseBlock { return b.Content.GetToolUse() }

// Text returns the text of a text block ("" otherwise).
func (b *Block) Text() string { return b.Content.GetText().GetText() }

// Action is what happens to a held block.
type Action int

const (
	// Keep emits the block unchanged.
	Keep Action = iota
	// Replace emits Decision.Blocks instead of the block.
	Replace
	// Drop removes the block. Dropped tool calls are named in one notice
	// before the tools ("[Tool call `X` was blocked by policy]").
	Drop
)

// Decision is a policy's verdict on one held block.
type Decision struct {
	// Action is what happens to the block.
	Action Action
	// Blocks replace the block when Action is Replace: text blocks are
	// emitted before every tool call, tool_use blocks among the tools.
	Blocks []*cpv1.ContentBlock
	// Notice, when set, is a text block emitted before the tool calls (a
	// warning for a kept block, an explanation for a removed one).
	Notice string
}

// KeepBlock keeps a block unchanged.
func KeepBlock() Decision { return Decision{Action: Keep} }

// DropBlock drops a block.
func DropBlock() Decision { return Decision{Action: Drop} }

// ReplaceWithText replaces a block with a text block.
func ReplaceWithText(text string) Decision {
	return Decision{Action: Replace, Blocks: []*cpv1.ContentBlock{TextBlock(text)}}
}

// KeepWithWarning keeps a block and shows a warning before the tools.
func KeepWithWarning(text string) Decision { return Decision{Action: Keep, Notice: text} }

// Decider is the policy side of a builder.
type Decider interface {
	// DecideBlock decides a held non-tool block (text blocks, when
	// Options.HoldText is set) once it is complete.
	DecideBlock(ctx context.Context, b *Block) (Decision, error)
	// DecideTools decides every tool call of the message at once, when the
	// message ends; it returns one decision per tool, in order. It may
	// judge them concurrently.
	DecideTools(ctx context.Context, tools []*Block) ([]Decision, error)
}

// Options tune a builder.
type Options struct {
	// HoldText holds each text block until it is complete and asks
	// DecideBlock about it. Otherwise text streams through.
	HoldText bool
}

// TextBlock returns a text content block.
func TextBlock(text string) *cpv1.ContentBlock {
	return &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: text}}}
}

// DroppedNotice is the marker shown for tool calls a policy dropped.
func DroppedNotice(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "`" + n + "`"
	}
	if len(names) == 1 {
		return "[Tool call " + quoted[0] + " was blocked by policy]"
	}
	return "[Tool calls " + strings.Join(quoted, ", ") + " were blocked by policy]"
}

// UnavailableNotice is the marker shown for a tool call blocked because
// the policy could not evaluate it.
func UnavailableNotice(name string) string {
	return "[Tool call `" + name + "` blocked: policy evaluation unavailable]"
}

// plan is the tool section of a message after the decisions: notices
// (text) first, then the tool calls.
type plan struct {
	notices []*cpv1.ContentBlock
	tools   []toolOut
	changed bool // anything differs from keeping every tool as it was
}

// toolOut is one tool call to emit: a held block or a new one.
type toolOut struct {
	held  *Block             // kept as received
	block *cpv1.ContentBlock // created by a decision
}

// slot is one entry of the tool section before the decisions: a held
// tool call awaiting its decision, or a tool call a decision on an earlier
// block created.
type slot struct {
	held  *Block
	block *cpv1.ContentBlock
}

// decideTools asks d about the held tool calls in slots and builds the
// plan.
func decideTools(ctx context.Context, d Decider, slots []slot) (plan, error) {
	var held []*Block
	for _, s := range slots {
		if s.held != nil {
			held = append(held, s.held)
		}
	}
	var decisions []Decision
	if len(held) > 0 {
		var err error
		if decisions, err = d.DecideTools(ctx, held); err != nil {
			return plan{}, err
		}
		if len(decisions) != len(held) {
			return plan{}, errorf("decided %d of %d tool calls", len(decisions), len(held))
		}
	}
	var p plan
	var dropped []string
	i := 0
	for _, s := range slots {
		if s.held == nil {
			p.tools = append(p.tools, toolOut{block: s.block})
			p.changed = true
			continue
		}
		dec := decisions[i]
		i++
		if dec.Notice != "" {
			p.notices = append(p.notices, TextBlock(dec.Notice))
			p.changed = true
		}
		switch dec.Action {
		case Keep:
			p.tools = append(p.tools, toolOut{held: s.held})
		case Drop:
			dropped = append(dropped, s.held.Tool().GetName())
			p.changed = true
		case Replace:
			p.changed = true
			for _, b := range dec.Blocks {
				if b.GetToolUse() != nil {
					p.tools = append(p.tools, toolOut{block: b})
				} else {
					p.notices = append(p.notices, b)
				}
			}
		}
	}
	if len(dropped) > 0 {
		p.notices = append(p.notices, TextBlock(DroppedNotice(dropped)))
	}
	return p, nil
}
