package e2e

import (
	"encoding/json"
	"testing"
)

// validateAnthropic checks the stream invariants a client relies on.
func validateAnthropic(t *testing.T, evs []sseEvent) {
	t.Helper()
	if len(evs) == 0 || evs[0].name != "message_start" || evs[len(evs)-1].name != "message_stop" {
		t.Fatalf("stream must start with message_start and end with message_stop: %v", evs)
	}
	open := map[float64]bool{}
	next := 0.0
	deltas := 0
	tools := 0
	stopReason := ""
	for _, ev := range evs {
		m := ev.json(t)
		if m["type"] != ev.name {
			t.Errorf("event %q has data type %v", ev.name, m["type"])
		}
		idx, _ := m["index"].(float64)
		switch ev.name {
		case "content_block_start":
			if idx != next {
				t.Errorf("block index %v, want %v", idx, next)
			}
			next++
			open[idx] = true
			// tool_use blocks are the last content blocks of the turn.
			if cb, _ := m["content_block"].(map[string]any); cb["type"] == "tool_use" {
				tools++
			} else if tools > 0 {
				t.Errorf("%v block after a tool_use block: %s", cb["type"], ev.data)
			}
		case "content_block_delta":
			if !open[idx] {
				t.Errorf("delta for block %v outside its start and stop", idx)
			}
		case "content_block_stop":
			if !open[idx] {
				t.Errorf("stop for block %v not open", idx)
			}
			delete(open, idx)
		case "message_delta":
			deltas++
			if len(open) > 0 {
				t.Errorf("message_delta with open blocks %v", open)
			}
			if d, _ := m["delta"].(map[string]any); d != nil {
				stopReason, _ = d["stop_reason"].(string)
			}
		}
	}
	if deltas != 1 {
		t.Errorf("%d message_delta events, want exactly 1", deltas)
	}
	if stopReason == "tool_use" && tools == 0 {
		t.Errorf("stop_reason tool_use without a tool_use block")
	}
}

// anthropicContent concatenates the text and tool argument deltas.
func anthropicContent(t *testing.T, evs []sseEvent) (text, args string) {
	t.Helper()
	for _, ev := range evs {
		if ev.name != "content_block_delta" {
			continue
		}
		var m struct {
			Delta struct {
				Type, Text  string
				PartialJSON string `json:"partial_json"`
			}
		}
		_ = json.Unmarshal([]byte(ev.data), &m)
		text += m.Delta.Text
		args += m.Delta.PartialJSON
	}
	return text, args
}

type openaiChunk struct {
	Choices []struct {
		Delta struct {
			Content   *string
			ToolCalls []struct {
				Index    int
				Function struct{ Arguments string }
			} `json:"tool_calls"`
		}
		FinishReason *string `json:"finish_reason"`
	}
	Usage *json.RawMessage
}

// validateOpenAI checks chunk order: [DONE] last, one finish_reason, no
// content after it.
func validateOpenAI(t *testing.T, evs []sseEvent) {
	t.Helper()
	if len(evs) == 0 || evs[len(evs)-1].data != "[DONE]" {
		t.Fatalf("stream must end with [DONE]: %v", evs)
	}
	finishes := 0
	sawTool := false
	for _, ev := range evs[:len(evs)-1] {
		var c openaiChunk
		if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
			t.Fatalf("chunk not JSON: %s", ev.data)
		}
		for _, ch := range c.Choices {
			if finishes > 0 && (ch.Delta.Content != nil && *ch.Delta.Content != "" || len(ch.Delta.ToolCalls) > 0) {
				t.Errorf("content after finish_reason: %s", ev.data)
			}
			if len(ch.Delta.ToolCalls) > 0 {
				sawTool = true
			} else if sawTool && ch.Delta.Content != nil && *ch.Delta.Content != "" {
				t.Errorf("content after a tool call: %s", ev.data)
			}
			if ch.FinishReason != nil {
				finishes++
				if ch.Delta.Content != nil && *ch.Delta.Content != "" {
					t.Errorf("content and finish_reason in one chunk: %s", ev.data)
				}
			}
		}
	}
	if finishes != 1 {
		t.Errorf("%d finish_reason chunks, want 1", finishes)
	}
}

func openaiContent(t *testing.T, evs []sseEvent) (text, args, finish string) {
	t.Helper()
	for _, ev := range evs {
		var c openaiChunk
		if json.Unmarshal([]byte(ev.data), &c) != nil {
			continue
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				text += *ch.Delta.Content
			}
			for _, tc := range ch.Delta.ToolCalls {
				args += tc.Function.Arguments
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	return text, args, finish
}
