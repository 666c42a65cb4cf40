package stream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"luthien.dev/canon"
	"luthien.dev/controlplane/streamcheck"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// tool is a tool call of a test stream.
type tool struct{ name, args string }

// input builds an upstream stream: optional text, then the tools, with
// seqs 1, 2, 3, ... Text and arguments arrive in two deltas each.
func input(text string, tools []tool, stop string) []*cpv1.StreamEvent {
	var evs []*cpv1.StreamEvent
	add := func(ev *cpv1.StreamEvent) {
		ev.Seq = uint64(len(evs) + 1)
		evs = append(evs, ev)
	}
	add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{Id: "msg_1", Usage: &cpv1.Usage{InputTokens: 10}}}})
	idx := uint32(0)
	block := func(b *cpv1.ContentBlock, pieces []string) {
		for _, ev := range canon.BlockEvents(idx, b) {
			if d := ev.GetContentBlockDelta(); d != nil {
				for _, p := range pieces {
					if d.GetText() != nil {
						add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{Index: idx, Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: p}}}}})
					} else {
						add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{Index: idx, Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: p}}}}})
					}
				}
				continue
			}
			add(ev)
		}
		idx++
	}
	if text != "" {
		block(TextBlock(text), halves(text))
	}
	for i, t := range tools {
		block(&cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: fmt.Sprintf("toolu_%d", i), Name: t.name, InputJson: []byte(t.args)}}}, halves(t.args))
	}
	add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: stop, Usage: &cpv1.Usage{OutputTokens: 7}}}})
	add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}})
	return evs
}

// halves splits s in two pieces.
func halves(s string) []string {
	h := len(s) / 2
	return []string{s[:h], s[h:]}
}

// decider is a scripted Decider.
type decider struct {
	tools func(t *Block) Decision
	text  func(b *Block) Decision
	err   error
}

func (d decider) DecideBlock(_ context.Context, b *Block) (Decision, error) {
	if d.text == nil {
		return KeepBlock(), d.err
	}
	return d.text(b), d.err
}

func (d decider) DecideTools(_ context.Context, tools []*Block) ([]Decision, error) {
	out := make([]Decision, len(tools))
	for i, t := range tools {
		out[i] = KeepBlock()
		if d.tools != nil {
			out[i] = d.tools(t)
		}
	}
	return out, d.err
}

// run feeds evs through a builder and returns everything emitted.
func run(t *testing.T, d Decider, opts Options, evs []*cpv1.StreamEvent, upstreamErr string) ([]*cpv1.StreamEvent, error) {
	t.Helper()
	b := NewBuilder(d, opts)
	var out []*cpv1.StreamEvent
	for _, ev := range evs {
		got, err := b.Event(context.Background(), ev)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	got, err := b.End(context.Background(), upstreamErr)
	return append(out, got...), err
}

// summary renders the output: block types with their text, tool names,
// and the stop reason.
func summary(evs []*cpv1.StreamEvent) string {
	var parts []string
	var text strings.Builder
	for _, ev := range evs {
		switch x := ev.GetEvent().(type) {
		case *cpv1.StreamEvent_ContentBlockStart:
			text.Reset()
			if tu := x.ContentBlockStart.GetBlock().GetToolUse(); tu != nil {
				parts = append(parts, "tool:"+tu.GetName())
			}
		case *cpv1.StreamEvent_ContentBlockDelta:
			text.WriteString(x.ContentBlockDelta.GetText().GetText())
		case *cpv1.StreamEvent_ContentBlockStop:
			if text.Len() > 0 {
				parts = append(parts, "text:"+text.String())
			}
		case *cpv1.StreamEvent_MessageDelta:
			parts = append(parts, "stop:"+x.MessageDelta.GetStopReason())
		}
	}
	return strings.Join(parts, " ")
}

func TestBuilder(t *testing.T) {
	blockNamed := func(name string) func(*Block) Decision {
		return func(b *Block) Decision {
			if b.Tool().GetName() == name {
				return ReplaceWithText("blocked " + name)
			}
			return KeepBlock()
		}
	}
	tests := []struct {
		name  string
		in    []*cpv1.StreamEvent
		d     decider
		opts  Options
		want  string
		check func(t *testing.T, in, out []*cpv1.StreamEvent)
	}{
		{
			name: "everything kept passes the input pointers",
			in:   input("hi there", []tool{{"Bash", `{"command":"ls"}`}}, "tool_use"),
			want: "text:hi there tool:Bash stop:tool_use",
			check: func(t *testing.T, in, out []*cpv1.StreamEvent) {
				if len(in) != len(out) {
					t.Fatalf("%d events out, want %d", len(out), len(in))
				}
				for i := range in {
					if in[i] != out[i] {
						t.Errorf("event %d is not the input pointer", i)
					}
				}
			},
		},
		{
			name: "one of two tools blocked: notice before the remaining tool",
			in:   input("preamble", []tool{{"Bash", `{"command":"rm -rf /"}`}, {"Read", `{"path":"a"}`}}, "tool_use"),
			d:    decider{tools: blockNamed("Bash")},
			want: "text:preamble text:blocked Bash tool:Read stop:tool_use",
			check: func(t *testing.T, in, out []*cpv1.StreamEvent) {
				// The Read call keeps index 2 but moves from tool 1 to tool 0
				// (an OpenAI client numbers tool calls): its events are
				// re-encoded, as clones keeping the input's seqs.
				inputs := map[*cpv1.StreamEvent]bool{}
				for _, ev := range in {
					inputs[ev] = true
				}
				for _, ev := range out {
					if ev.GetContentBlockStart().GetBlock().GetToolUse() != nil {
						if ev.GetSeq() == 0 || inputs[ev] {
							t.Errorf("released tool start: seq %d, input pointer %v; want a clone with its seq", ev.GetSeq(), inputs[ev])
						}
					}
				}
			},
		},
		{
			name: "every tool blocked: end_turn",
			in:   input("", []tool{{"Bash", `{"command":"x"}`}}, "tool_use"),
			d:    decider{tools: blockNamed("Bash")},
			want: "text:blocked Bash stop:end_turn",
		},
		{
			name: "dropped tools are named in one notice",
			in:   input("t", []tool{{"A", `{}`}, {"B", `{}`}}, "tool_use"),
			d:    decider{tools: func(*Block) Decision { return DropBlock() }},
			want: "text:t text:[Tool calls `A`, `B` were blocked by policy] stop:end_turn",
		},
		{
			name: "warning before a kept tool",
			in:   input("t", []tool{{"A", `{}`}}, "tool_use"),
			d:    decider{tools: func(*Block) Decision { return KeepWithWarning("careful") }},
			want: "text:t text:careful tool:A stop:tool_use",
		},
		{
			name: "other stop reasons are never rewritten",
			in:   input("", []tool{{"A", `{}`}}, "max_tokens"),
			d:    decider{tools: blockNamed("A")},
			want: "text:blocked A stop:max_tokens",
		},
		{
			name: "held text replaced by text and a tool",
			in:   input("secret", []tool{{"A", `{}`}}, "tool_use"),
			opts: Options{HoldText: true},
			d: decider{text: func(*Block) Decision {
				return Decision{Action: Replace, Blocks: []*cpv1.ContentBlock{TextBlock("redacted"),
					{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "toolu_new", Name: "Z", InputJson: []byte(`{"a":1}`)}}}}}
			}},
			want: "text:redacted tool:Z tool:A stop:tool_use",
		},
		{
			name: "held text dropped: no empty block",
			in:   input("secret", nil, "end_turn"),
			opts: Options{HoldText: true},
			d:    decider{text: func(*Block) Decision { return DropBlock() }},
			want: "stop:end_turn",
		},
		{
			name: "a stream without its end gets one",
			in:   input("hi", []tool{{"A", `{}`}}, "tool_use")[:9],
			want: "text:hi tool:A stop:tool_use",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, tt.d, tt.opts, tt.in, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := streamcheck.Check(out); err != nil {
				t.Errorf("invalid stream: %v", err)
			}
			if got := summary(out); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if tt.check != nil {
				tt.check(t, tt.in, out)
			}
		})
	}
}

// Blocks a policy makes stream as the providers stream them: a thinking
// block starts empty and brings its text and its signature in deltas,
// redacted thinking starts whole; the stream rebuilds the same blocks.
func TestBuilderCreatedBlocks(t *testing.T) {
	made := []*cpv1.ContentBlock{
		{Block: &cpv1.ContentBlock_Thinking{Thinking: &cpv1.ThinkingBlock{Thinking: "reconsidered", Signature: "c2lnbmVk"}}},
		{Block: &cpv1.ContentBlock_Opaque{Opaque: &cpv1.OpaqueBlock{Type: "redacted_thinking", Json: []byte(`{"type":"redacted_thinking","data":"ZW5j"}`)}}},
		TextBlock("rewritten"),
	}
	out, err := run(t, decider{text: func(*Block) Decision { return Decision{Action: Replace, Blocks: made} }},
		Options{HoldText: true}, input("original", nil, "end_turn"), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := streamcheck.Check(out); err != nil {
		t.Fatal(err)
	}
	for _, ev := range out {
		if th := ev.GetContentBlockStart().GetBlock().GetThinking(); th != nil && (th.GetThinking() != "" || th.GetSignature() != "") {
			t.Errorf("thinking start carries content: %v", ev)
		}
	}
	var acc canon.Accumulator
	for _, ev := range out {
		acc.Add(ev)
	}
	if got := acc.Message().GetContent(); !proto.Equal(&cpv1.Message{Content: got}, &cpv1.Message{Content: made}) {
		t.Errorf("rebuilt %v, want %v", got, made)
	}
}

// Inputs are never mutated, whatever the builder re-indexes.
func TestBuilderDoesNotMutateInputs(t *testing.T) {
	in := input("p", []tool{{"A", `{}`}, {"B", `{}`}}, "tool_use")
	before := make([]string, len(in))
	for i, ev := range in {
		before[i] = ev.String()
	}
	if _, err := run(t, decider{tools: func(b *Block) Decision {
		if b.Tool().GetName() == "A" {
			return DropBlock()
		}
		return KeepBlock()
	}}, Options{}, in, ""); err != nil {
		t.Fatal(err)
	}
	for i, ev := range in {
		if ev.String() != before[i] {
			t.Errorf("input %d changed: %s -> %s", i, before[i], ev)
		}
	}
}

// A stream that broke off upstream never releases held tools.
func TestBuilderUpstreamError(t *testing.T) {
	in := input("p", []tool{{"A", `{}`}}, "tool_use")
	out, err := run(t, decider{}, Options{}, in[:len(in)-2], "connection reset")
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range out {
		if ev.GetContentBlockStart().GetBlock().GetToolUse() != nil {
			t.Error("a held tool call was released after upstream broke off")
		}
	}
	errEv := &cpv1.StreamEvent{Seq: 99, Event: &cpv1.StreamEvent_Error{Error: &cpv1.StreamError{Type: "overloaded_error"}}}
	withErr := append(append([]*cpv1.StreamEvent{}, in[:len(in)-2]...), errEv)
	out, err = run(t, decider{}, Options{}, withErr, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := streamcheck.Check(out); err != nil || out[len(out)-1] != errEv {
		t.Errorf("in-stream error: %v, last %v", err, out[len(out)-1])
	}
}

func TestBuilderDeciderError(t *testing.T) {
	boom := errors.New("boom")
	if _, err := run(t, decider{err: boom}, Options{}, input("", []tool{{"A", `{}`}}, "tool_use"), ""); !errors.Is(err, boom) {
		t.Errorf("error = %v, want boom", err)
	}
}

func TestApplyMessage(t *testing.T) {
	msg := &cpv1.Message{StopReason: "tool_use", Content: []*cpv1.ContentBlock{
		TextBlock("pre"),
		{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "t1", Name: "A", InputJson: []byte(`{}`)}}},
		{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "t2", Name: "B", InputJson: []byte(`{}`)}}},
	}}
	got, err := ApplyMessage(context.Background(), decider{}, Options{}, msg)
	if err != nil || got != msg {
		t.Errorf("keeping everything: %v, %v; want the same message", got, err)
	}
	got, err = ApplyMessage(context.Background(), decider{tools: func(b *Block) Decision {
		if b.Tool().GetName() == "A" {
			return ReplaceWithText("no A")
		}
		return KeepBlock()
	}}, Options{}, msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.GetContent()) != 3 || got.GetContent()[1].GetText().GetText() != "no A" || got.GetContent()[2].GetToolUse().GetName() != "B" || got.GetStopReason() != "tool_use" {
		t.Errorf("got %v", got)
	}
	got, _ = ApplyMessage(context.Background(), decider{tools: func(*Block) Decision { return DropBlock() }}, Options{}, msg)
	if got.GetStopReason() != "end_turn" || len(got.GetContent()) != 2 || !strings.Contains(got.GetContent()[1].GetText().GetText(), "`A`, `B`") {
		t.Errorf("all dropped: %v", got)
	}
	if len(msg.GetContent()) != 3 || msg.GetStopReason() != "tool_use" {
		t.Error("input message mutated")
	}
}
