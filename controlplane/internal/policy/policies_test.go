package policy

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

func build(t *testing.T, class string) Policy {
	t.Helper()
	p, err := builtin(t).Build(class, nil)
	if err != nil {
		t.Fatalf("Build(%q): %v", class, err)
	}
	return p
}

func textBlock(s string) *cpv1.ContentBlock {
	return &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: s}}}
}

func textDelta(seq uint64, s string) *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Seq: seq, Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
		Index: 0, Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: s}},
	}}}
}

func TestNoop(t *testing.T) {
	ctx := context.Background()
	p := build(t, "noop")
	call := &Call{ID: "c1", Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES, Request: []byte(`{}`)}
	if p.InspectsResponse() {
		t.Error("noop InspectsResponse() = true")
	}
	res, err := p.OnRequest(ctx, call)
	if err != nil || res.Body != nil || res.Respond != nil || res.Reject != nil {
		t.Errorf("OnRequest = %+v, %v; want the zero result", res, err)
	}
	msg := &cpv1.Message{Content: []*cpv1.ContentBlock{textBlock("hi")}}
	if got, err := p.OnResponse(ctx, call, msg); err != nil || got != msg {
		t.Errorf("OnResponse = %v, %v; want the input pointer", got, err)
	}
	s := p.NewStream(ctx, call)
	ev := textDelta(1, "hi")
	emit, err := s.OnEvent(ctx, ev)
	if err != nil || len(emit.Events) != 1 || emit.Events[0] != ev || emit.End {
		t.Errorf("OnEvent = %+v, %v; want the input pointer", emit, err)
	}
	emit, err = s.OnEnd(ctx, "")
	if err != nil || len(emit.Events) != 0 || emit.End {
		t.Errorf("OnEnd = %+v, %v; want nothing", emit, err)
	}
}

func TestAllCapsResponse(t *testing.T) {
	toolUse := &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{
		Id: "toolu_1", Name: "bash", InputJson: []byte(`{"command":"ls -la"}`),
	}}}
	thinking := &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Thinking{Thinking: &cpv1.ThinkingBlock{
		Thinking: "let me think", Signature: "sig+/=",
	}}}
	opaque := &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Opaque{Opaque: &cpv1.OpaqueBlock{
		Type: "redacted_thinking", Json: []byte(`{"type":"redacted_thinking","data":"abc"}`),
	}}}
	usage := &cpv1.Usage{InputTokens: 3, OutputTokens: 5}

	tests := []struct {
		name      string
		content   []*cpv1.ContentBlock
		wantTexts map[int]string // index -> uppercased text; nil: the message is unchanged
	}{
		{
			name:      "text with unicode",
			content:   []*cpv1.ContentBlock{textBlock("hello straße é 🎉 ǆ")},
			wantTexts: map[int]string{0: "HELLO STRASSE É 🎉 Ǆ"},
		},
		{
			name:      "every text block, others untouched",
			content:   []*cpv1.ContentBlock{thinking, textBlock("one"), opaque, textBlock("two"), toolUse},
			wantTexts: map[int]string{1: "ONE", 3: "TWO"},
		},
		{name: "already uppercase", content: []*cpv1.ContentBlock{textBlock("DONE 123 🎉"), toolUse}},
		{name: "no text blocks", content: []*cpv1.ContentBlock{thinking, toolUse, opaque}},
		{name: "empty message"},
	}
	ctx := context.Background()
	p := build(t, "all_caps")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := &cpv1.Message{Id: "msg_1", Model: "m", Content: tt.content, StopReason: "end_turn", Usage: usage}
			before := proto.CloneOf(msg)
			got, err := p.OnResponse(ctx, &Call{ID: "c1"}, msg)
			if err != nil {
				t.Fatalf("OnResponse: %v", err)
			}
			if !proto.Equal(msg, before) {
				t.Fatal("OnResponse mutated its input")
			}
			if tt.wantTexts == nil {
				if got != msg {
					t.Fatalf("OnResponse returned a new message %v for an unchanged one", got)
				}
				return
			}
			if got == msg {
				t.Fatal("OnResponse returned the input for a changed message")
			}
			if got.GetId() != "msg_1" || got.GetModel() != "m" || got.GetStopReason() != "end_turn" || !proto.Equal(got.GetUsage(), usage) {
				t.Errorf("OnResponse lost message fields: %v", got)
			}
			if len(got.GetContent()) != len(tt.content) {
				t.Fatalf("got %d blocks, want %d", len(got.GetContent()), len(tt.content))
			}
			for i, block := range got.GetContent() {
				want, changed := tt.wantTexts[i]
				switch {
				case changed && block.GetText().GetText() != want:
					t.Errorf("block %d text = %q, want %q", i, block.GetText().GetText(), want)
				case !changed && block != tt.content[i]:
					t.Errorf("block %d changed: %v", i, block)
				}
			}
		})
	}
}

func TestAllCapsStream(t *testing.T) {
	start := &cpv1.StreamEvent{Seq: 1, Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{Id: "msg_1"}}}
	textStart := &cpv1.StreamEvent{Seq: 2, Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{
		Block: textBlock(""),
	}}}
	textStartWithText := &cpv1.StreamEvent{Seq: 2, Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{
		Block: textBlock("hi"),
	}}}
	inputJSON := &cpv1.StreamEvent{Seq: 5, Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
		Index: 1, Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: `{"command":"ls"`}},
	}}}
	thinking := &cpv1.StreamEvent{Seq: 6, Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
		Delta: &cpv1.ContentBlockDelta_Thinking{Thinking: &cpv1.ThinkingDelta{Thinking: "hmm"}},
	}}}
	signature := &cpv1.StreamEvent{Seq: 7, Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
		Delta: &cpv1.ContentBlockDelta_Signature{Signature: &cpv1.SignatureDelta{Signature: "abc"}},
	}}}
	opaque := &cpv1.StreamEvent{Seq: 8, Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{Type: "openai.usage", Json: []byte(`{}`)}}}
	stop := &cpv1.StreamEvent{Seq: 9, Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}}

	tests := []struct {
		name     string
		in       *cpv1.StreamEvent
		wantText string // "" means the input passes through unchanged
	}{
		{name: "message_start", in: start},
		{name: "empty text block start", in: textStart},
		{name: "text block start with text", in: textStartWithText, wantText: "HI"},
		{name: "text delta", in: textDelta(3, "hello "), wantText: "HELLO "},
		{name: "text delta straße", in: textDelta(4, "straße é 🎉"), wantText: "STRASSE É 🎉"},
		{name: "uppercase text delta", in: textDelta(4, "OK 🎉")},
		{name: "input_json delta", in: inputJSON},
		{name: "thinking delta", in: thinking},
		{name: "signature delta", in: signature},
		{name: "opaque event", in: opaque},
		{name: "message_stop", in: stop},
	}
	ctx := context.Background()
	s := build(t, "all_caps").NewStream(ctx, &Call{ID: "c1"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := proto.CloneOf(tt.in)
			emit, err := s.OnEvent(ctx, tt.in)
			if err != nil {
				t.Fatalf("OnEvent: %v", err)
			}
			if !proto.Equal(tt.in, before) {
				t.Fatal("OnEvent mutated its input")
			}
			if len(emit.Events) != 1 || emit.End {
				t.Fatalf("OnEvent = %+v, want one event", emit)
			}
			out := emit.Events[0]
			if tt.wantText == "" {
				if out != tt.in {
					t.Fatalf("OnEvent emitted %v, want the input pointer", out)
				}
				return
			}
			if out == tt.in {
				t.Fatal("OnEvent emitted the input pointer, want a changed clone")
			}
			if out.GetSeq() != tt.in.GetSeq() {
				t.Errorf("seq = %d, want %d", out.GetSeq(), tt.in.GetSeq())
			}
			got := out.GetContentBlockDelta().GetText().GetText() + out.GetContentBlockStart().GetBlock().GetText().GetText()
			if got != tt.wantText {
				t.Errorf("text = %q, want %q", got, tt.wantText)
			}
		})
	}
	if emit, err := s.OnEnd(ctx, "upstream broke off"); err != nil || len(emit.Events) != 0 || emit.End {
		t.Errorf("OnEnd = %+v, %v; want nothing", emit, err)
	}
}

// TestAllCapsConcurrent runs one policy from many goroutines; -race
// checks that per-call state is not shared.
func TestAllCapsConcurrent(t *testing.T) {
	ctx := context.Background()
	p := build(t, "all_caps")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			s := p.NewStream(ctx, &Call{ID: "c"})
			for range 50 {
				msg := &cpv1.Message{Content: []*cpv1.ContentBlock{textBlock("straße")}}
				got, err := p.OnResponse(ctx, &Call{ID: "c"}, msg)
				if err != nil || got.GetContent()[0].GetText().GetText() != "STRASSE" {
					t.Errorf("OnResponse = %v, %v", got, err)
				}
				emit, err := s.OnEvent(ctx, textDelta(1, "straße"))
				if err != nil || emit.Events[0].GetContentBlockDelta().GetText().GetText() != "STRASSE" {
					t.Errorf("OnEvent = %v, %v", emit, err)
				}
			}
		})
	}
	wg.Wait()
}
