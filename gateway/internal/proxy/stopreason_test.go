package proxy

import (
	"testing"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

func toolStart(i uint32) *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{
		Index: i, Block: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "t", Name: "Bash"}}}}}}
}

func stopDelta(stop string) *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Seq: 7, Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: stop}}}
}

func TestToolStop(t *testing.T) {
	var ts toolStop
	in := []*cpv1.StreamEvent{stopDelta("tool_use")}
	out, fixed := ts.check(in)
	if !fixed || out[0].GetMessageDelta().GetStopReason() != "end_turn" || out[0].GetSeq() != 7 {
		t.Errorf("no tool call: %v %v", fixed, out)
	}
	if in[0].GetMessageDelta().GetStopReason() != "tool_use" {
		t.Error("the input event was changed")
	}

	ts = toolStop{}
	if _, fixed := ts.check([]*cpv1.StreamEvent{toolStart(1)}); fixed {
		t.Error("a tool start was rewritten")
	}
	if out, fixed := ts.check([]*cpv1.StreamEvent{stopDelta("tool_use")}); fixed || out[0].GetMessageDelta().GetStopReason() != "tool_use" {
		t.Error("a stop after a tool call was rewritten")
	}

	ts = toolStop{}
	if _, fixed := ts.check([]*cpv1.StreamEvent{stopDelta("end_turn"), stopDelta("max_tokens")}); fixed {
		t.Error("another stop reason was rewritten")
	}
}

func TestFixStop(t *testing.T) {
	text := &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "hi"}}}
	tool := &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Name: "Bash"}}}
	msg := &cpv1.Message{StopReason: "tool_use", Content: []*cpv1.ContentBlock{text}}
	if got, ok := fixStop(msg); !ok || got.GetStopReason() != "end_turn" || msg.GetStopReason() != "tool_use" {
		t.Errorf("fixStop = %v %v (input %v)", got, ok, msg)
	}
	withTool := &cpv1.Message{StopReason: "tool_use", Content: []*cpv1.ContentBlock{text, tool}}
	if got, ok := fixStop(withTool); ok || got != withTool {
		t.Error("a message with a tool call was rewritten")
	}
	if _, ok := fixStop(&cpv1.Message{StopReason: "end_turn"}); ok {
		t.Error("end_turn rewritten")
	}
}
