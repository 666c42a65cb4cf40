package openai

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"luthien.dev/canon/jsonx"
	"luthien.dev/gateway/internal/dialect"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

type wireUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details,omitempty"`
}

func (u *wireUsage) canon() *cpv1.Usage {
	if u == nil {
		return nil
	}
	out := &cpv1.Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens}
	if u.PromptTokensDetails != nil {
		out.CacheReadInputTokens = u.PromptTokensDetails.CachedTokens
	}
	return out
}

func usageToWire(u *cpv1.Usage) wireUsage {
	return wireUsage{PromptTokens: u.GetInputTokens(), CompletionTokens: u.GetOutputTokens(),
		TotalTokens: u.GetInputTokens() + u.GetOutputTokens()}
}

type wireFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type wireToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function wireFunction `json:"function"`
}

type wireCompletion struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content   *string        `json:"content"`
			ToolCalls []wireToolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *wireUsage `json:"usage"`
}

// ParseMessage implements dialect.Dialect. Only the first choice is
// modelled; other choices pass through RenderMessage untouched.
func (Dialect) ParseMessage(body []byte) (*cpv1.Message, error) {
	var c wireCompletion
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("openai: parse completion: %w", err)
	}
	out := &cpv1.Message{Id: c.ID, Model: c.Model, Usage: c.Usage.canon()}
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
		out.StopReason = StopReason(*ch.FinishReason)
	}
	return out, nil
}

// renderedMessage is choices[0].message as rendered from canonical blocks.
type renderedMessage struct {
	Role      string         `json:"role"`
	Content   *string        `json:"content"`
	ToolCalls []wireToolCall `json:"tool_calls,omitempty"`
}

func renderChoiceMessage(msg *cpv1.Message) renderedMessage {
	var text strings.Builder
	hasText := false
	out := renderedMessage{Role: "assistant"}
	for _, b := range msg.GetContent() {
		switch x := b.GetBlock().(type) {
		case *cpv1.ContentBlock_Text:
			text.WriteString(x.Text.GetText())
			hasText = true
		case *cpv1.ContentBlock_ToolUse:
			args := string(x.ToolUse.GetInputJson())
			if args == "" {
				args = "{}"
			}
			out.ToolCalls = append(out.ToolCalls, wireToolCall{ID: x.ToolUse.GetId(), Type: "function",
				Function: wireFunction{Name: x.ToolUse.GetName(), Arguments: args}})
		}
	}
	if hasText {
		s := text.String()
		out.Content = &s
	}
	return out
}

// RenderMessage implements dialect.Dialect.
func (Dialect) RenderMessage(original []byte, msg *cpv1.Message) ([]byte, error) {
	rm := renderChoiceMessage(msg)
	finish := FinishReason(msg.GetStopReason())
	if original == nil {
		out, err := jsonx.Marshal(map[string]any{
			"id": msg.GetId(), "object": "chat.completion", "created": time.Now().Unix(), "model": msg.GetModel(),
			"choices": []any{map[string]any{"index": 0, "message": rm, "logprobs": nil, "finish_reason": finish}},
			"usage":   usageToWire(msg.GetUsage()),
		})
		if err != nil {
			return nil, fmt.Errorf("openai: render completion: %w", err)
		}
		return out, nil
	}
	var top struct {
		Choices []json.RawMessage `json:"choices"`
	}
	if err := json.Unmarshal(original, &top); err != nil {
		return nil, fmt.Errorf("openai: render completion: %w", err)
	}
	if len(top.Choices) == 0 {
		top.Choices = []json.RawMessage{json.RawMessage(`{"index":0}`)}
	}
	msgJSON, err := jsonx.Marshal(rm)
	if err != nil {
		return nil, fmt.Errorf("openai: render completion: %w", err)
	}
	var origChoice struct {
		Message json.RawMessage `json:"message"`
	}
	_ = json.Unmarshal(top.Choices[0], &origChoice)
	if len(origChoice.Message) > 0 && origChoice.Message[0] == '{' {
		// Replace content and tool calls but keep the message's other
		// fields (refusal, annotations, ...).
		base, err := dialect.Overlay(origChoice.Message, []byte(`{"content":null,"tool_calls":null}`))
		if err != nil {
			return nil, err
		}
		if msgJSON, err = dialect.Overlay(base, msgJSON); err != nil {
			return nil, err
		}
		if len(rm.ToolCalls) == 0 {
			if msgJSON, err = dialect.Without(msgJSON, "tool_calls"); err != nil {
				return nil, err
			}
		}
	}
	finishJSON, _ := jsonx.Marshal(finish)
	// msgJSON is the whole new message: it replaces the original one (in
	// its place) rather than merging into it, which would bring back the
	// tool calls a policy removed.
	choice, err := dialect.Overlay(top.Choices[0], []byte(`{"message":null}`))
	if err != nil {
		return nil, err
	}
	choice, err = dialect.Overlay(choice, []byte(`{"message":`+string(msgJSON)+`,"finish_reason":`+string(finishJSON)+`}`))
	if err != nil {
		return nil, err
	}
	top.Choices[0] = choice
	choices, _ := jsonx.Marshal(top.Choices)
	return dialect.Overlay(original, []byte(`{"choices":`+string(choices)+`}`))
}
