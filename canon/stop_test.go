package canon

import "testing"

func TestStopReason(t *testing.T) {
	for _, tt := range []struct {
		stop  string
		tools bool
		want  string
	}{
		{"tool_use", false, "end_turn"},
		{"tool_use", true, "tool_use"},
		{"end_turn", false, "end_turn"},
		{"max_tokens", false, "max_tokens"},
		{"", false, ""},
	} {
		if got := StopReason(tt.stop, tt.tools); got != tt.want {
			t.Errorf("StopReason(%q, %v) = %q, want %q", tt.stop, tt.tools, got, tt.want)
		}
	}
}
