package canon

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

func text(s string) *cpv1.ContentBlock {
	return &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: s}}}
}

func tool(id, name, args string) *cpv1.ContentBlock {
	return &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: id, Name: name, InputJson: []byte(args)}}}
}

func thinking(th, sig string) *cpv1.ContentBlock {
	return &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Thinking{Thinking: &cpv1.ThinkingBlock{Thinking: th, Signature: sig}}}
}

func opaqueBlock(typ, js string) *cpv1.ContentBlock {
	return &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Opaque{Opaque: &cpv1.OpaqueBlock{Type: typ, Json: []byte(js)}}}
}

// describe renders an event briefly.
func describe(ev *cpv1.StreamEvent) string {
	switch x := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_MessageStart:
		u := x.MessageStart.GetUsage()
		return fmt.Sprintf("message_start %s %s in=%d out=%d cw=%d cr=%d", x.MessageStart.GetId(), x.MessageStart.GetModel(),
			u.GetInputTokens(), u.GetOutputTokens(), u.GetCacheCreationInputTokens(), u.GetCacheReadInputTokens())
	case *cpv1.StreamEvent_ContentBlockStart:
		b := x.ContentBlockStart.GetBlock()
		switch {
		case b.GetText() != nil:
			return fmt.Sprintf("start %d text %q", x.ContentBlockStart.GetIndex(), b.GetText().GetText())
		case b.GetToolUse() != nil:
			return fmt.Sprintf("start %d tool %s %s %q", x.ContentBlockStart.GetIndex(), b.GetToolUse().GetId(), b.GetToolUse().GetName(), b.GetToolUse().GetInputJson())
		case b.GetThinking() != nil:
			return fmt.Sprintf("start %d thinking %q %q", x.ContentBlockStart.GetIndex(), b.GetThinking().GetThinking(), b.GetThinking().GetSignature())
		case b.GetOpaque() != nil:
			return fmt.Sprintf("start %d opaque %s %s", x.ContentBlockStart.GetIndex(), b.GetOpaque().GetType(), b.GetOpaque().GetJson())
		}
	case *cpv1.StreamEvent_ContentBlockDelta:
		d := x.ContentBlockDelta
		switch {
		case d.GetText() != nil:
			return fmt.Sprintf("delta %d text %q", d.GetIndex(), d.GetText().GetText())
		case d.GetInputJson() != nil:
			return fmt.Sprintf("delta %d json %q", d.GetIndex(), d.GetInputJson().GetPartialJson())
		case d.GetThinking() != nil:
			return fmt.Sprintf("delta %d thinking %q", d.GetIndex(), d.GetThinking().GetThinking())
		case d.GetSignature() != nil:
			return fmt.Sprintf("delta %d signature %q", d.GetIndex(), d.GetSignature().GetSignature())
		}
	case *cpv1.StreamEvent_ContentBlockStop:
		return fmt.Sprintf("stop %d", x.ContentBlockStop.GetIndex())
	case *cpv1.StreamEvent_MessageDelta:
		return fmt.Sprintf("message_delta %s out=%d", x.MessageDelta.GetStopReason(), x.MessageDelta.GetUsage().GetOutputTokens())
	case *cpv1.StreamEvent_MessageStop:
		return "message_stop"
	}
	return ev.String()
}

func TestEvents(t *testing.T) {
	msg := &cpv1.Message{Id: "msg_1", Model: "m", StopReason: "tool_use",
		Usage: &cpv1.Usage{InputTokens: 10, OutputTokens: 20, CacheCreationInputTokens: 3, CacheReadInputTokens: 4},
		Content: []*cpv1.ContentBlock{
			thinking("hmm", "sig"),
			opaqueBlock("redacted_thinking", `{"type":"redacted_thinking","data":"x"}`),
			text(""),
			text("Hello"),
			tool("toolu_1", "bash", `{"command":"ls"}`),
			tool("toolu_2", "noop", ""),
		}}
	want := []string{
		"message_start msg_1 m in=10 out=0 cw=3 cr=4",
		`start 0 thinking "" ""`, `delta 0 thinking "hmm"`, `delta 0 signature "sig"`, "stop 0",
		`start 1 opaque redacted_thinking {"type":"redacted_thinking","data":"x"}`, "stop 1",
		`start 2 text ""`, "stop 2",
		`start 3 text ""`, `delta 3 text "Hello"`, "stop 3",
		`start 4 tool toolu_1 bash ""`, `delta 4 json "{\"command\":\"ls\"}"`, "stop 4",
		`start 5 tool toolu_2 noop ""`, "stop 5",
		"message_delta tool_use out=20",
		"message_stop",
	}
	var got []string
	for _, ev := range Events(msg) {
		if ev.GetSeq() != 0 {
			t.Errorf("event %v has seq %d, want 0", ev, ev.GetSeq())
		}
		got = append(got, describe(ev))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !proto.Equal(msg.GetContent()[3], text("Hello")) {
		t.Error("Events changed its input")
	}
}

func TestEventsEmpty(t *testing.T) {
	var got []string
	for _, ev := range Events(&cpv1.Message{}) {
		got = append(got, describe(ev))
	}
	want := "message_start   in=0 out=0 cw=0 cr=0\nmessage_delta  out=0\nmessage_stop"
	if strings.Join(got, "\n") != want {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
}

// TestRoundTrip: accumulating the stream of a message gives the message
// back.
func TestRoundTrip(t *testing.T) {
	msgs := []*cpv1.Message{
		{Id: "a", Model: "m", StopReason: "end_turn", Usage: &cpv1.Usage{InputTokens: 1, OutputTokens: 2},
			Content: []*cpv1.ContentBlock{text("Hello <world>")}},
		{Id: "b", StopReason: "tool_use", Usage: &cpv1.Usage{InputTokens: 5, OutputTokens: 6, CacheCreationInputTokens: 7, CacheReadInputTokens: 8},
			Content: []*cpv1.ContentBlock{thinking("t", "s"), thinking("", "only-sig"),
				opaqueBlock("redacted_thinking", `{"type":"redacted_thinking"}`),
				text("x"), tool("1", "f", `{"a":[1,2]}`), tool("2", "g", `{}`)}},
		{Id: "c", Usage: &cpv1.Usage{}},
	}
	for _, msg := range msgs {
		var acc Accumulator
		for _, ev := range Events(msg) {
			acc.Add(ev)
		}
		if got := acc.Message(); !proto.Equal(got, msg) {
			t.Errorf("got %v\nwant %v", got, msg)
		}
	}
}

func TestAccumulator(t *testing.T) {
	start := func(i uint32, b *cpv1.ContentBlock) *cpv1.StreamEvent {
		return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: i, Block: b}}}
	}
	delta := func(i uint32, d *cpv1.ContentBlockDelta) *cpv1.StreamEvent {
		d.Index = i
		return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: d}}
	}
	textDelta := func(s string) *cpv1.ContentBlockDelta {
		return &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: s}}}
	}
	jsonDelta := func(s string) *cpv1.ContentBlockDelta {
		return &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: s}}}
	}
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
		delta(3, &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Thinking{Thinking: &cpv1.ThinkingDelta{Thinking: "a"}}}),
		delta(3, &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Signature{Signature: &cpv1.SignatureDelta{Signature: "s1"}}}),
		delta(3, &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Signature{Signature: &cpv1.SignatureDelta{Signature: "s2"}}}),
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
