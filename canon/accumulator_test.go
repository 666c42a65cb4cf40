package canon

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

func TestAccumulator(t *testing.T) {
	start, delta := blockStart, blockDelta
	startText := text("")
	evs := []*cpv1.StreamEvent{
		{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{Id: "id", Model: "m",
			Usage: &cpv1.Usage{InputTokens: 100, OutputTokens: 1, CacheReadInputTokens: 50}}}},
		start(0, startText),
		delta(0, textDelta("Hel")),
		delta(9, textDelta("no such block")),
		delta(0, jsonDelta("not for text")),
		delta(0, &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Opaque{Opaque: &cpv1.OpaqueDelta{Type: "citations_delta"}}}),
		delta(0, textDelta("lo")),
		{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{Index: 0}}},
		{Event: &cpv1.StreamEvent_Ping{Ping: &cpv1.Ping{}}},
		start(2, tool("t1", "f", "")),
		delta(2, jsonDelta(`{"a"`)),
		delta(2, textDelta("not for a tool")),
		delta(2, jsonDelta(`:1}`)),
		start(1, tool("t2", "g", "")),
		start(3, thinking("", "")),
		delta(3, thinkingDelta("a")),
		delta(3, signatureDelta("s1")),
		delta(3, signatureDelta("s2")),
		{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: "tool_use", Usage: &cpv1.Usage{OutputTokens: 42}}}},
		{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}},
	}
	var acc Accumulator
	for _, ev := range evs {
		acc.Add(ev)
	}
	want := &cpv1.Message{Id: "id", Model: "m", StopReason: "tool_use",
		Usage:   &cpv1.Usage{InputTokens: 100, OutputTokens: 42, CacheReadInputTokens: 50},
		Content: []*cpv1.ContentBlock{text("Hello"), tool("t1", "f", `{"a":1}`), tool("t2", "g", "{}"), thinking("a", "s1s2")}}
	if got := acc.Message(); !proto.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if startText.GetText().GetText() != "" {
		t.Error("Add changed the start event's block")
	}
}

// TestAccumulatorSnapshot: a message returned earlier does not change as
// more events arrive.
func TestAccumulatorSnapshot(t *testing.T) {
	var acc Accumulator
	acc.Add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Block: text("")}}})
	acc.Add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
		Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: "a"}}}}})
	first := acc.Message()
	acc.Add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
		Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: "b"}}}}})
	if got := first.GetContent()[0].GetText().GetText(); got != "a" {
		t.Errorf("earlier message changed to %q", got)
	}
	if got := acc.Message().GetContent()[0].GetText().GetText(); got != "ab" {
		t.Errorf("got %q, want ab", got)
	}
}

func TestAccumulatorDuplicateStart(t *testing.T) {
	var acc Accumulator
	for _, b := range []*cpv1.ContentBlock{text(""), text("")} {
		acc.Add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: 0, Block: b}}})
		acc.Add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
			Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: "x"}}}}})
	}
	if got := acc.Message().GetContent(); len(got) != 1 || got[0].GetText().GetText() != "x" {
		t.Errorf("got %v, want one block \"x\"", got)
	}
	var empty Accumulator
	if got := empty.Message(); len(got.GetContent()) != 0 || got.GetUsage() != nil {
		t.Errorf("empty accumulator: %v", got)
	}
}

// Many small deltas rebuild the same text as one big one, for every kind
// of block (the accumulator once joined strings delta by delta).
func TestAccumulatorManyDeltas(t *testing.T) {
	const n = 5000
	var a Accumulator
	a.Add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{Id: "m"}}})
	starts := []*cpv1.ContentBlock{
		{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "pre:"}}},
		{Block: &cpv1.ContentBlock_Thinking{Thinking: &cpv1.ThinkingBlock{}}},
		{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "t", Name: "Bash"}}},
	}
	for i, b := range starts {
		a.Add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: uint32(i), Block: b}}})
	}
	var text, thinking, sig, args strings.Builder
	text.WriteString("pre:")
	for i := 0; i < n; i++ {
		piece := fmt.Sprintf("w%d ", i)
		text.WriteString(piece)
		thinking.WriteString(piece)
		sig.WriteString("s")
		args.WriteString("1")
		for _, d := range []*cpv1.ContentBlockDelta{
			{Index: 0, Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: piece}}},
			{Index: 1, Delta: &cpv1.ContentBlockDelta_Thinking{Thinking: &cpv1.ThinkingDelta{Thinking: piece}}},
			{Index: 1, Delta: &cpv1.ContentBlockDelta_Signature{Signature: &cpv1.SignatureDelta{Signature: "s"}}},
			{Index: 2, Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: "1"}}},
		} {
			a.Add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: d}})
		}
	}
	msg := a.Message()
	if got := msg.GetContent()[0].GetText().GetText(); got != text.String() {
		t.Errorf("text: %d bytes, want %d", len(got), text.Len())
	}
	th := msg.GetContent()[1].GetThinking()
	if th.GetThinking() != thinking.String() || th.GetSignature() != sig.String() {
		t.Errorf("thinking: %d/%d bytes, want %d/%d", len(th.GetThinking()), len(th.GetSignature()), thinking.Len(), sig.Len())
	}
	if got := string(msg.GetContent()[2].GetToolUse().GetInputJson()); got != args.String() {
		t.Errorf("tool arguments: %d bytes, want %d", len(got), args.Len())
	}
	// The message is a snapshot: more deltas do not change it.
	a.Add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
		Index: 0, Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: "more"}}}}})
	if got := msg.GetContent()[0].GetText().GetText(); got != text.String() {
		t.Error("a later delta changed a message already returned")
	}
}

// BenchmarkAccumulatorDeltas rebuilds streams of growing length: the cost
// per delta stays flat (linear in the stream), where joining strings delta
// by delta grew with the text already accumulated.
func BenchmarkAccumulatorDeltas(b *testing.B) {
	for _, n := range []int{1000, 10000, 80000} {
		b.Run(fmt.Sprintf("deltas=%d", n), func(b *testing.B) {
			evs := []*cpv1.StreamEvent{{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{
				Block: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{}}}}}}}
			for i := 0; i < n; i++ {
				evs = append(evs, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
					Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: "token "}}}}})
			}
			b.ResetTimer()
			for range b.N {
				var a Accumulator
				for _, ev := range evs {
					a.Add(ev)
				}
				_ = a.Message()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delta")
		})
	}
}

// blockStart, blockDelta and blockStop make the events of block i.
func blockStart(i uint32, b *cpv1.ContentBlock) *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: i, Block: b}}}
}

func blockDelta(i uint32, d *cpv1.ContentBlockDelta) *cpv1.StreamEvent {
	d.Index = i
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: d}}
}

func blockStop(i uint32) *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{Index: i}}}
}

func thinkingDelta(s string) *cpv1.ContentBlockDelta {
	return &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Thinking{Thinking: &cpv1.ThinkingDelta{Thinking: s}}}
}

func signatureDelta(s string) *cpv1.ContentBlockDelta {
	return &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Signature{Signature: &cpv1.SignatureDelta{Signature: s}}}
}

func textDelta(s string) *cpv1.ContentBlockDelta {
	return &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: s}}}
}

func jsonDelta(s string) *cpv1.ContentBlockDelta {
	return &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: s}}}
}

// TestAccumulatorThinking: a thinking block is rebuilt with its text and
// its signature, each joined from its own deltas, whether it streamed as
// the providers stream it (an empty start, then deltas) or started whole
// (as policy-made blocks once did); redacted thinking stays as it started;
// deltas of another kind than their block's are ignored.
func TestAccumulatorThinking(t *testing.T) {
	redacted := opaqueBlock("redacted_thinking", `{"type":"redacted_thinking","data":"ZW5jcnlwdGVk"}`)
	tests := []struct {
		name string
		evs  []*cpv1.StreamEvent
		want []*cpv1.ContentBlock
	}{
		{"streamed as the providers do", []*cpv1.StreamEvent{
			blockStart(0, thinking("", "")),
			blockDelta(0, thinkingDelta("Let me ")),
			blockDelta(0, thinkingDelta("think.")),
			blockDelta(0, signatureDelta("EqQBCkgIARAB")),
			blockDelta(0, signatureDelta("GAIiQL+/==")),
			blockStop(0),
		}, []*cpv1.ContentBlock{thinking("Let me think.", "EqQBCkgIARABGAIiQL+/==")}},
		{"started whole", []*cpv1.StreamEvent{
			blockStart(0, thinking("hmm", "sig")), blockStop(0),
		}, []*cpv1.ContentBlock{thinking("hmm", "sig")}},
		{"start content, then deltas", []*cpv1.StreamEvent{
			blockStart(0, thinking("a", "s")),
			blockDelta(0, thinkingDelta("b")),
			blockDelta(0, signatureDelta("t")),
			blockStop(0),
		}, []*cpv1.ContentBlock{thinking("ab", "st")}},
		{"signature only", []*cpv1.StreamEvent{
			blockStart(0, thinking("", "")), blockDelta(0, signatureDelta("sig")), blockStop(0),
		}, []*cpv1.ContentBlock{thinking("", "sig")}},
		{"redacted thinking", []*cpv1.StreamEvent{
			blockStart(0, redacted),
			blockDelta(0, thinkingDelta("not for redacted thinking")),
			blockDelta(0, signatureDelta("nor this")),
			blockStop(0),
		}, []*cpv1.ContentBlock{redacted}},
		{"deltas of another kind", []*cpv1.StreamEvent{
			blockStart(0, thinking("", "")),
			blockDelta(0, textDelta("not for thinking")),
			blockDelta(0, jsonDelta("nor this")),
			blockDelta(0, thinkingDelta("ok")),
			blockStop(0),
			blockStart(1, text("")),
			blockDelta(1, thinkingDelta("not for text")),
			blockDelta(1, signatureDelta("nor this")),
			blockDelta(1, textDelta("hi")),
			blockStop(1),
			blockStart(2, tool("t", "f", "")),
			blockDelta(2, thinkingDelta("not for a tool")),
			blockDelta(2, signatureDelta("nor this")),
			blockStop(2),
		}, []*cpv1.ContentBlock{thinking("ok", ""), text("hi"), tool("t", "f", "{}")}},
		{"among other blocks", []*cpv1.StreamEvent{
			blockStart(0, thinking("", "")),
			blockDelta(0, thinkingDelta("plan")),
			blockDelta(0, signatureDelta("s0")),
			blockStop(0),
			blockStart(1, redacted), blockStop(1),
			blockStart(2, thinking("", "")),
			blockDelta(2, thinkingDelta("again")),
			blockDelta(2, signatureDelta("s2")),
			blockStop(2),
			blockStart(3, text("")), blockDelta(3, textDelta("done")), blockStop(3),
		}, []*cpv1.ContentBlock{thinking("plan", "s0"), redacted, thinking("again", "s2"), text("done")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var acc Accumulator
			for _, ev := range tt.evs {
				acc.Add(ev)
			}
			want := &cpv1.Message{Content: tt.want}
			if got := acc.Message(); !proto.Equal(got, want) {
				t.Errorf("got %v\nwant %v", got, want)
			}
		})
	}
}

// TestAccumulatorToolStartInput: arguments a tool_use start carries come
// before its fragments.
func TestAccumulatorToolStartInput(t *testing.T) {
	var acc Accumulator
	for _, ev := range []*cpv1.StreamEvent{
		blockStart(0, tool("t", "f", `{"a":`)), blockDelta(0, jsonDelta(`1}`)), blockStop(0),
	} {
		acc.Add(ev)
	}
	want := &cpv1.Message{Content: []*cpv1.ContentBlock{tool("t", "f", `{"a":1}`)}}
	if got := acc.Message(); !proto.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}
