package translate

import (
	"encoding/json"
	"testing"
)

// TestResponseStopReasons: finish reasons and stop reasons map both ways
// in complete responses; reasons the other side has no word for are
// reported; a tool stop reason without a tool call becomes end_turn.
func TestResponseStopReasons(t *testing.T) {
	const call = `,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]`
	for _, tt := range []struct {
		finish, calls, stop string
		dropped             bool
	}{
		{"stop", "", "end_turn", false},
		{"length", "", "max_tokens", false},
		{"tool_calls", call, "tool_use", false},
		{"tool_calls", "", "end_turn", false},
		{"content_filter", "", "refusal", false},
		{"function_call", call, "tool_use", false},
		{"", "", "end_turn", false},
		{"insufficient_system_resource", "", "end_turn", true},
	} {
		body := `{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"x"` + tt.calls + `},"finish_reason":` +
			string(marshal(tt.finish)) + `}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`
		out, dropped, err := ChatResponseToAnthropic([]byte(body), "")
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			StopReason string `json:"stop_reason"`
		}
		if err := json.Unmarshal(out, &m); err != nil || m.StopReason != tt.stop || (len(dropped) > 0) != tt.dropped {
			t.Errorf("finish_reason %q (tool calls %q) → stop_reason %q (dropped %v), want %q", tt.finish, tt.calls, m.StopReason, dropped, tt.stop)
		}
	}
	const tool = `,{"type":"tool_use","id":"toolu_1","name":"f","input":{}}`
	for _, tt := range []struct {
		stop, tool, finish string
		dropped            bool
	}{
		{"end_turn", "", "stop", false},
		{"stop_sequence", "", "stop", false},
		{"max_tokens", "", "length", false},
		{"tool_use", tool, "tool_calls", false},
		{"tool_use", "", "stop", false},
		{"refusal", "", "content_filter", false},
		{"model_context_window_exceeded", "", "length", false},
		{"pause_turn", "", "stop", true},
	} {
		body := `{"id":"msg","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"x"}` + tt.tool + `],"stop_reason":"` + tt.stop +
			`","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}`
		out, dropped, err := AnthropicResponseToChat([]byte(body), "")
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Choices []struct {
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(out, &c); err != nil || len(c.Choices) != 1 || c.Choices[0].FinishReason != tt.finish || (len(dropped) > 0) != tt.dropped {
			t.Errorf("stop_reason %q (tool %q) → %s (dropped %v), want finish_reason %q", tt.stop, tt.tool, out, dropped, tt.finish)
		}
	}
}
