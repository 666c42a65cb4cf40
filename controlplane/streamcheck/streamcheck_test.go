package streamcheck

import (
	"strings"
	"testing"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

func start() *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{}}}
}

func blockStart(i uint32, tool bool) *cpv1.StreamEvent {
	b := &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{}}}
	if tool {
		b = &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "t", Name: "A"}}}
	}
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: i, Block: b}}}
}

func delta(i uint32) *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{Index: i, Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: "x"}}}}}
}

func stop(i uint32) *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{Index: i}}}
}

func md(reason string) *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: reason}}}
}

func end() *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}}
}

func errEv() *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Error{Error: &cpv1.StreamError{Type: "api_error"}}}
}

func ping() *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Ping{Ping: &cpv1.Ping{}}}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		evs     []*cpv1.StreamEvent
		wantErr string // "" = valid
	}{
		{"valid text and tool", []*cpv1.StreamEvent{start(), blockStart(0, false), ping(), delta(0), stop(0), blockStart(1, true), stop(1), md("tool_use"), end()}, ""},
		{"valid error only", []*cpv1.StreamEvent{errEv()}, ""},
		{"valid error mid-stream", []*cpv1.StreamEvent{start(), blockStart(0, false), delta(0), errEv()}, ""},
		{"empty", nil, "rule 1: empty"},
		{"no message_start", []*cpv1.StreamEvent{md("end_turn"), end()}, "want message_start"},
		{"no message_stop", []*cpv1.StreamEvent{start(), md("end_turn")}, "want message_stop"},
		{"two message_delta", []*cpv1.StreamEvent{start(), md("end_turn"), md("end_turn"), end()}, "exactly one"},
		{"no message_delta", []*cpv1.StreamEvent{start(), end()}, "no message_delta"},
		{"open block at message_delta", []*cpv1.StreamEvent{start(), blockStart(0, false), md("end_turn"), stop(0), end()}, "while block 0 is open"},
		{"index gap", []*cpv1.StreamEvent{start(), blockStart(1, false), stop(1), md("end_turn"), end()}, "block index 1, want 0"},
		{"delta outside block", []*cpv1.StreamEvent{start(), blockStart(0, false), stop(0), delta(0), md("end_turn"), end()}, "outside its start and stop"},
		{"stopped twice", []*cpv1.StreamEvent{start(), blockStart(0, false), stop(0), stop(0), md("end_turn"), end()}, "not open"},
		{"text after tool", []*cpv1.StreamEvent{start(), blockStart(0, true), stop(0), blockStart(1, false), stop(1), md("tool_use"), end()}, "rule 3"},
		{"tool_use without tools", []*cpv1.StreamEvent{start(), blockStart(0, false), stop(0), md("tool_use"), end()}, "rule 4"},
		{"error not last", []*cpv1.StreamEvent{start(), errEv(), md("end_turn"), end()}, "rule 5"},
		{"event after message_stop", []*cpv1.StreamEvent{start(), md("end_turn"), end(), ping()}, "after message_stop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.evs)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Check = %v, want valid", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Check = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
