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
		`start 5 tool toolu_2 noop ""`, `delta 5 json "{}"`, "stop 5",
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
	if !proto.Equal(msg.GetContent()[3], text("Hello")) || !proto.Equal(msg.GetContent()[0], thinking("hmm", "sig")) {
		t.Error("Events changed its input")
	}
}

// TestBlockEvents: every kind of block streams as the providers stream it,
// its start empty and its content in deltas (thinking text and signature
// apart), redacted thinking whole; the start keeps no content of its own.
func TestBlockEvents(t *testing.T) {
	tests := []struct {
		name  string
		block *cpv1.ContentBlock
		want  []string
	}{
		{"thinking", thinking("let me see", "c2ln"),
			[]string{`start 7 thinking "" ""`, `delta 7 thinking "let me see"`, `delta 7 signature "c2ln"`, "stop 7"}},
		{"thinking, signature only", thinking("", "c2ln"),
			[]string{`start 7 thinking "" ""`, `delta 7 signature "c2ln"`, "stop 7"}},
		{"thinking, empty", thinking("", ""), []string{`start 7 thinking "" ""`, "stop 7"}},
		{"redacted thinking", opaqueBlock("redacted_thinking", `{"type":"redacted_thinking","data":"ZW5j"}`),
			[]string{`start 7 opaque redacted_thinking {"type":"redacted_thinking","data":"ZW5j"}`, "stop 7"}},
		{"text", text("hi"), []string{`start 7 text ""`, `delta 7 text "hi"`, "stop 7"}},
		{"tool_use", tool("t", "f", `{"a":1}`), []string{`start 7 tool t f ""`, `delta 7 json "{\"a\":1}"`, "stop 7"}},
		{"tool_use without arguments", tool("t", "f", ""), []string{`start 7 tool t f ""`, `delta 7 json "{}"`, "stop 7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := proto.CloneOf(tt.block)
			var got []string
			for _, ev := range BlockEvents(7, tt.block) {
				if ev.GetSeq() != 0 {
					t.Errorf("event %v has seq %d, want 0", ev, ev.GetSeq())
				}
				got = append(got, describe(ev))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if !proto.Equal(tt.block, before) {
				t.Errorf("BlockEvents changed its input to %v", tt.block)
			}
		})
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
