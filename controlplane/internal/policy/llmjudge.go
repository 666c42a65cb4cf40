package policy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"

	"fmt"

	"golang.org/x/sync/errgroup"

	"luthien.dev/controlplane/internal/llm"
	"luthien.dev/controlplane/internal/stream"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// llmJudgeSystem frames the judge's instructions.
const llmJudgeSystem = "You review one content block of an AI assistant's response against these instructions:\n\n%s\n\n" +
	"You see the block as JSON. If it complies, answer {\"action\":\"pass\"}. Otherwise answer " +
	"{\"action\":\"replace\",\"blocks\":[...]} where each block is {\"type\":\"text\",\"text\":\"...\"} or " +
	"{\"type\":\"tool_use\",\"name\":\"...\",\"input\":{...}}; an empty list removes the block. Answer with JSON only."

// Notices of llm_judge on a judge failure.
const (
	llmJudgeTextUnavailable = "[Response blocked: policy evaluation unavailable]"
	llmJudgeWarning         = "⚠️ [Policy evaluation unavailable: %s was not checked]"
)

// llmJudgeType describes the llm_judge policy; access decides where its
// judge may be and which keys it gets.
func llmJudgeType(access JudgeAccess) Type {
	return Type{
		Class:       "llm_judge",
		Description: "Asks a judge LLM to check each finished text block and tool call against free-text instructions; the judge passes or replaces each.",
		Legacy:      append([]Legacy{{Name: earlier + "simple_llm_policy:SimpleLLMPolicy", Defaults: simpleLLMDefaults}}, llmPresets...),
		ConfigSchema: `{"type":"object","additionalProperties":false,"required":["instructions"],"properties":{` + judgeSchemaProperties + `,` +
			`"instructions":{"type":"string","minLength":1,"description":"what the judge enforces, in plain words"},` +
			`"max_tokens":{"type":"integer","minimum":1,"default":4096}}}`,
		HandlesErrors: true,
		SecretScope:   judgeEndpoint,
		New: func(cfg map[string]any) (Policy, error) {
			s := newSettings(cfg)
			j := &llmJudge{
				client:       judgeSettings(s, access, 4096, 2),
				instructions: s.str("instructions", ""),
				onError:      s.enum("on_error", onErrorBlock, onErrorBlock, onErrorPass),
			}
			if j.instructions == "" {
				s.fail("instructions", "required: a non-empty string telling the judge what to enforce")
			}
			if err := s.done(); err != nil {
				return nil, err
			}
			return &blockPolicy{name: "llm_judge", opts: stream.Options{HoldText: true}, decider: func(call *Call) stream.Decider {
				return &llmJudgeDecider{j: j, call: call}
			}}, nil
		},
	}
}

// llmJudge is the configuration of an llm_judge policy.
type llmJudge struct {
	client       *llm.Client
	instructions string
	onError      string
}

// judgeAnswer is the judge's answer on one block.
type judgeAnswer struct {
	Action string       `json:"action"`
	Blocks []judgeBlock `json:"blocks"`
}

// judgeBlock is one replacement block of a judge's answer.
type judgeBlock struct {
	Type  string          `json:"type"`
	Text  string          `json:"text"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// judge asks about one block; the answer is checked, a malformed one is
// retried.
func (j *llmJudge) judge(ctx context.Context, block *cpv1.ContentBlock) (judgeAnswer, error) {
	var view any
	if tu := block.GetToolUse(); tu != nil {
		view = map[string]any{"type": "tool_use", "name": tu.GetName(), "input": json.RawMessage(validJSON(tu.GetInputJson()))}
	} else {
		view = map[string]any{"type": "text", "text": block.GetText().GetText()}
	}
	prompt, err := json.Marshal(view)
	if err != nil {
		return judgeAnswer{}, fmt.Errorf("llm_judge: encode block: %w", err)
	}
	var a judgeAnswer
	_, err = j.client.Complete(ctx, fmt.Sprintf(llmJudgeSystem, j.instructions), string(prompt), func(text string) error {
		a = judgeAnswer{}
		if err := llm.DecodeJSON(text, &a); err != nil {
			return err
		}
		return a.check()
	})
	return a, err
}

// check validates an answer.
func (a judgeAnswer) check() error {
	switch a.Action {
	case "pass":
		return nil
	case "replace":
		for i, b := range a.Blocks {
			switch b.Type {
			case "text":
			case "tool_use":
				if b.Name == "" {
					return fmt.Errorf("blocks[%d]: tool_use without a name", i)
				}
				if len(b.Input) > 0 && (b.Input[0] != '{' || !json.Valid(b.Input)) {
					return fmt.Errorf("blocks[%d]: input is not a JSON object", i)
				}
			default:
				return fmt.Errorf("blocks[%d]: unknown type %q", i, b.Type)
			}
		}
		return nil
	}
	return fmt.Errorf(`action %q: want "pass" or "replace"`, a.Action)
}

// llmJudgeDecider judges the blocks of one response.
type llmJudgeDecider struct {
	j    *llmJudge
	call *Call
}

// DecideBlock judges a finished text block inline.
func (d *llmJudgeDecider) DecideBlock(ctx context.Context, b *stream.Block) (stream.Decision, error) {
	a, err := d.j.judge(ctx, b.Content)
	return d.decision(ctx, b.Content, a, err, "the text above"), nil
}

// DecideTools judges the tool calls concurrently. The first judge failure
// cancels the other judgments (bail-out): those get the on_error treatment
// too.
func (d *llmJudgeDecider) DecideTools(ctx context.Context, tools []*stream.Block) ([]stream.Decision, error) {
	answers := make([]judgeAnswer, len(tools))
	errs := make([]error, len(tools))
	g, gctx := errgroup.WithContext(ctx)
	for i, t := range tools {
		g.Go(func() error {
			// A panic is this tool's judge failure, not the process's end.
			answers[i], errs[i] = catch(func() (judgeAnswer, error) { return d.j.judge(gctx, t.Content) })
			return errs[i]
		})
	}
	_ = g.Wait() // failures are per tool, in errs
	out := make([]stream.Decision, len(tools))
	for i, t := range tools {
		out[i] = d.decision(ctx, t.Content, answers[i], errs[i], "tool call `"+t.Tool().GetName()+"`")
	}
	return out, nil
}

// decision turns a judgment into a decision; what names the block in a
// warning.
func (d *llmJudgeDecider) decision(ctx context.Context, block *cpv1.ContentBlock, a judgeAnswer, err error, what string) stream.Decision {
	const class = "llm_judge"
	details := map[string]any{"block_type": "text"}
	if tu := block.GetToolUse(); tu != nil {
		details = map[string]any{"block_type": "tool_use", "tool_name": tu.GetName(), "tool_use_id": tu.GetId()}
	}
	if err != nil {
		details["error"] = err.Error()
		if d.j.onError == onErrorPass {
			recordBypass(ctx, d.call, class, details)
			return stream.KeepWithWarning(fmt.Sprintf(llmJudgeWarning, what))
		}
		d.call.Record(ctx, "policy."+class+".judge_failed", details)
		if tu := block.GetToolUse(); tu != nil {
			return stream.ReplaceWithText(stream.UnavailableNotice(tu.GetName()))
		}
		return stream.ReplaceWithText(llmJudgeTextUnavailable)
	}
	if a.Action == "pass" {
		d.call.Record(ctx, "policy."+class+".passed", details)
		return stream.KeepBlock()
	}
	details["replacement"] = len(a.Blocks)
	d.call.Record(ctx, "policy."+class+".replaced", details)
	return stream.Decision{Action: stream.Replace, Blocks: replacementBlocks(block, a.Blocks)}
}

// replacementBlocks converts a judge's blocks. A tool call replacing a tool
// call keeps its id; other tool calls get a new one.
func replacementBlocks(orig *cpv1.ContentBlock, blocks []judgeBlock) []*cpv1.ContentBlock {
	out := make([]*cpv1.ContentBlock, 0, len(blocks))
	origID := orig.GetToolUse().GetId()
	for _, b := range blocks {
		if b.Type == "text" {
			out = append(out, stream.TextBlock(b.Text))
			continue
		}
		id := origID
		origID = ""
		if id == "" {
			id = newToolUseID()
		}
		out = append(out, &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{
			Id: id, Name: b.Name, InputJson: validJSON(b.Input)}}})
	}
	return out
}

// validJSON returns input, or {} when it is empty or not JSON.
func validJSON(input []byte) []byte {
	if len(input) == 0 || !json.Valid(input) {
		return []byte("{}")
	}
	return input
}

// newToolUseID returns a fresh tool call id.
func newToolUseID() string {
	b := make([]byte, 12)
	rand.Read(b) // never fails: see crypto/rand.Read
	return "toolu_lj" + hex.EncodeToString(b)
}
