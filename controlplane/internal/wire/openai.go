package wire

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"luthien.dev/canon/jsonx"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// openAIUsage is the usage object of a chat completion.
type openAIUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details,omitempty"`
}

// openAIToolCall is a tool call of a chat completion message.
type openAIToolCall struct {
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// openAICompletion is what is read of a chat completion.
type openAICompletion struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content   *string          `json:"content"`
			ToolCalls []openAIToolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *openAIUsage `json:"usage"`
}

// parseOpenAI converts a chat completion. Only the first choice is
// modelled; RenderMessage keeps the others as they are.
func parseOpenAI(body []byte) (*cpv1.Message, error) {
	var c openAICompletion
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("openai: parse completion: %w", err)
	}
	out := &cpv1.Message{Id: c.ID, Model: c.Model}
	if u := c.Usage; u != nil {
		out.Usage = &cpv1.Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens}
		if u.PromptTokensDetails != nil {
			out.Usage.CacheReadInputTokens = u.PromptTokensDetails.CachedTokens
		}
	}
	if len(c.Choices) == 0 {
		return out, nil
	}
	ch := c.Choices[0]
	if ch.Message.Content != nil && *ch.Message.Content != "" {
		out.Content = append(out.Content, &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: *ch.Message.Content}}})
	}
	for _, tc := range ch.Message.ToolCalls {
		out.Content = append(out.Content, &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{
			Id: tc.ID, Name: tc.Function.Name, InputJson: []byte(tc.Function.Arguments)}}})
	}
	if ch.FinishReason != nil {
		out.StopReason = stopReason(*ch.FinishReason)
	}
	return out, nil
}

// stopReason maps an OpenAI finish_reason to a canonical stop reason.
func stopReason(finish string) string {
	switch finish {
	case "stop":
		return "end_turn"
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	}
	return finish
}

// finishReason maps a canonical stop reason to an OpenAI finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "end_turn", "stop_sequence", "":
		return "stop"
	case "max_tokens":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return stop
}

// openAIContent returns the text and the tool calls of a message, the
// text nil when it has no text block.
func openAIContent(msg *cpv1.Message) (*string, []openAIToolCall) {
	var text strings.Builder
	hasText := false
	var calls []openAIToolCall
	for _, b := range msg.GetContent() {
		switch x := b.GetBlock().(type) {
		case *cpv1.ContentBlock_Text:
			text.WriteString(x.Text.GetText())
			hasText = true
		case *cpv1.ContentBlock_ToolUse:
			call := openAIToolCall{ID: x.ToolUse.GetId(), Type: "function"}
			call.Function.Name = x.ToolUse.GetName()
			call.Function.Arguments = string(x.ToolUse.GetInputJson())
			if call.Function.Arguments == "" {
				call.Function.Arguments = "{}"
			}
			calls = append(calls, call)
		}
	}
	if !hasText {
		return nil, calls
	}
	s := text.String()
	return &s, calls
}

// renderOpenAI renders a message as a chat completion, over original when
// given: the first choice's content, tool calls and finish reason are
// replaced, everything else is kept in its place.
func renderOpenAI(original []byte, msg *cpv1.Message) ([]byte, error) {
	text, calls := openAIContent(msg)
	finish := finishReason(msg.GetStopReason())
	if original == nil {
		message := struct {
			Role      string           `json:"role"`
			Content   *string          `json:"content"`
			ToolCalls []openAIToolCall `json:"tool_calls,omitempty"`
		}{"assistant", text, calls}
		u := msg.GetUsage()
		out, err := jsonx.Marshal(map[string]any{
			"id": msg.GetId(), "object": "chat.completion", "created": time.Now().Unix(), "model": msg.GetModel(),
			"choices": []any{map[string]any{"index": 0, "message": message, "logprobs": nil, "finish_reason": finish}},
			"usage": openAIUsage{PromptTokens: u.GetInputTokens(), CompletionTokens: u.GetOutputTokens(),
				TotalTokens: u.GetInputTokens() + u.GetOutputTokens()},
		})
		if err != nil {
			return nil, fmt.Errorf("openai: render completion: %w", err)
		}
		return out, nil
	}
	out, err := overlayOpenAI(original, text, calls, finish)
	if err != nil {
		return nil, fmt.Errorf("openai: render completion: %w", err)
	}
	return out, nil
}

// overlayOpenAI writes the first choice's content, tool calls and finish
// reason over a chat completion.
func overlayOpenAI(original []byte, text *string, calls []openAIToolCall, finish string) ([]byte, error) {
	var top jsonx.Object
	if err := top.Decode(original); err != nil {
		return nil, err
	}
	var choices []json.RawMessage
	if raw, ok := top.Get("choices"); ok {
		if err := json.Unmarshal(raw, &choices); err != nil {
			return nil, fmt.Errorf("choices: %w", err)
		}
	}
	if len(choices) == 0 {
		choices = []json.RawMessage{json.RawMessage(`{"index":0}`)}
	}
	var choice jsonx.Object
	if err := choice.Decode(choices[0]); err != nil {
		return nil, fmt.Errorf("choices[0]: %w", err)
	}
	var message jsonx.Object
	if raw, ok := choice.Get("message"); ok && jsonx.IsObject(raw) {
		if err := message.Decode(raw); err != nil {
			return nil, fmt.Errorf("choices[0].message: %w", err)
		}
	}
	if _, ok := message.Get("role"); !ok {
		message.Set("role", json.RawMessage(`"assistant"`))
	}
	textJSON, err := jsonx.Marshal(text)
	if err != nil {
		return nil, err
	}
	message.Set("content", textJSON)
	if len(calls) == 0 {
		message.Del("tool_calls")
	} else {
		callsJSON, err := jsonx.Marshal(calls)
		if err != nil {
			return nil, err
		}
		message.Set("tool_calls", callsJSON)
	}
	choice.Set("message", message.Encode())
	finishJSON, _ := jsonx.Marshal(finish)
	choice.Set("finish_reason", finishJSON)
	choices[0] = choice.Encode()
	choicesJSON, err := jsonx.Marshal(choices)
	if err != nil {
		return nil, err
	}
	top.Set("choices", choicesJSON)
	return top.Encode(), nil
}
