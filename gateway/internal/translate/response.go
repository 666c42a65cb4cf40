package translate

import (
	"encoding/json"
	"fmt"
	"time"

	"luthien.dev/canon"
	"luthien.dev/canon/jsonx"
	"luthien.dev/gateway/internal/anthropic"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/openai"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// now is the clock for the "created" field of OpenAI responses.
var now = time.Now

// chatUsage is OpenAI's usage with the cache detail.
type chatUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

// chatUsageOf converts canonical (Anthropic) usage: OpenAI's prompt
// tokens include the cached ones.
func chatUsageOf(u *cpv1.Usage) chatUsage {
	var out chatUsage
	out.PromptTokens = u.GetInputTokens() + u.GetCacheReadInputTokens() + u.GetCacheCreationInputTokens()
	out.CompletionTokens = u.GetOutputTokens()
	out.TotalTokens = out.PromptTokens + out.CompletionTokens
	out.PromptTokensDetails.CachedTokens = u.GetCacheReadInputTokens()
	return out
}

// anthropicUsageOf converts OpenAI usage to Anthropic's, where input
// tokens exclude the cached ones.
func anthropicUsageOf(prompt, cached, completion int64) *cpv1.Usage {
	return &cpv1.Usage{InputTokens: max(prompt-cached, 0), CacheReadInputTokens: cached, OutputTokens: completion}
}

// finishReason maps an Anthropic stop reason to an OpenAI finish_reason,
// reporting the reasons OpenAI has no word for.
func finishReason(stop string, r *report) string {
	switch stop {
	case "pause_turn":
		r.add("stop_reason", "pause_turn has no OpenAI equivalent; sent as stop")
		return "stop"
	case "model_context_window_exceeded":
		return "length"
	}
	fr := openai.FinishReason(stop)
	switch fr {
	case "stop", "length", "tool_calls", "content_filter":
		return fr
	}
	r.addf("stop_reason", "%q has no OpenAI equivalent; sent as stop", stop)
	return "stop"
}

// stopReason maps an OpenAI finish_reason ("" when absent) to an
// Anthropic stop reason.
func stopReason(finish string, r *report) string {
	switch finish {
	case "", "stop":
		return "end_turn"
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	}
	r.addf("finish_reason", "%q has no Anthropic equivalent; sent as end_turn", finish)
	return "end_turn"
}

// AnthropicResponseToChat translates a complete Anthropic Messages
// response to an OpenAI chat.completion. model, when not empty, replaces
// the model upstream named (e.g. with the name the client asked for).
// Thinking and other non-text, non-tool blocks are dropped and reported.
func AnthropicResponseToChat(body []byte, model string) ([]byte, []Dropped, error) {
	msg, err := anthropic.Dialect{}.ParseMessage(body)
	if err != nil {
		return nil, nil, fmt.Errorf("translate: %w", err)
	}
	var r report
	kept := msg.Content[:0]
	for i, b := range msg.GetContent() {
		switch x := b.GetBlock().(type) {
		case *cpv1.ContentBlock_Text:
			kept = append(kept, b)
		case *cpv1.ContentBlock_ToolUse:
			x.ToolUse.InputJson = compact(x.ToolUse.GetInputJson())
			kept = append(kept, b)
		case *cpv1.ContentBlock_Thinking:
			r.addf(fmt.Sprintf("content[%d]", i), "thinking block has no OpenAI equivalent")
		case *cpv1.ContentBlock_Opaque:
			r.addf(fmt.Sprintf("content[%d]", i), "%s block has no OpenAI equivalent", x.Opaque.GetType())
		}
	}
	msg.Content = kept
	if model != "" {
		msg.Model = model
	}
	hasTools := false
	for _, b := range kept {
		hasTools = hasTools || b.GetToolUse() != nil
	}
	finish := finishReason(canon.StopReason(msg.GetStopReason(), hasTools), &r)
	msg.StopReason = "" // rendered below
	out, err := openai.Dialect{}.RenderMessage(nil, msg)
	if err != nil {
		return nil, nil, fmt.Errorf("translate: %w", err)
	}
	patch := marshal(map[string]any{
		"created": now().Unix(),
		"usage":   chatUsageOf(msg.GetUsage()),
	})
	if out, err = dialect.Overlay(out, patch); err != nil {
		return nil, nil, fmt.Errorf("translate: %w", err)
	}
	out, err = setFinishReason(out, finish)
	if err != nil {
		return nil, nil, err
	}
	return out, r, nil
}

// setFinishReason writes choices[0].finish_reason.
func setFinishReason(completion []byte, finish string) ([]byte, error) {
	var top jsonx.Object
	if err := top.Decode(completion); err != nil {
		return nil, fmt.Errorf("translate: %w", err)
	}
	raw, _ := top.Get("choices")
	var choices []json.RawMessage
	if err := json.Unmarshal(raw, &choices); err != nil || len(choices) == 0 {
		return nil, fmt.Errorf("translate: rendered completion has no choice")
	}
	c, err := dialect.Overlay(choices[0], marshal(map[string]string{"finish_reason": finish}))
	if err != nil {
		return nil, fmt.Errorf("translate: %w", err)
	}
	choices[0] = c
	top.Set("choices", marshal(choices))
	return top.Encode(), nil
}

// chatCompletion is the part of a chat.completion that maps.
type chatCompletion struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content   *string `json:"content"`
			Refusal   *string `json:"refusal"`
			ToolCalls []struct {
				ID       string `json:"id"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"message"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens        int64 `json:"prompt_tokens"`
		CompletionTokens    int64 `json:"completion_tokens"`
		PromptTokensDetails *struct {
			CachedTokens int64 `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
}

// ChatResponseToAnthropic translates a complete OpenAI chat.completion
// to an Anthropic Messages response. model, when not empty, replaces the
// model upstream named. Only the first choice is carried; a refusal
// becomes a text block.
func ChatResponseToAnthropic(body []byte, model string) ([]byte, []Dropped, error) {
	var c chatCompletion
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, nil, fmt.Errorf("translate: chat completion: %w", err)
	}
	var r report
	msg := &cpv1.Message{Id: c.ID, Model: c.Model, StopReason: "end_turn"}
	if model != "" {
		msg.Model = model
	}
	if u := c.Usage; u != nil {
		var cached int64
		if u.PromptTokensDetails != nil {
			cached = u.PromptTokensDetails.CachedTokens
		}
		msg.Usage = anthropicUsageOf(u.PromptTokens, cached, u.CompletionTokens)
	}
	if len(c.Choices) > 1 {
		r.addf("choices", "%d choices; only the first is carried", len(c.Choices))
	}
	if len(c.Choices) > 0 {
		ch := c.Choices[0]
		if t := ch.Message.Content; t != nil && *t != "" {
			msg.Content = append(msg.Content, textContent(*t))
		}
		if t := ch.Message.Refusal; t != nil && *t != "" {
			msg.Content = append(msg.Content, textContent(*t))
		}
		for j, tc := range ch.Message.ToolCalls {
			input := []byte(tc.Function.Arguments)
			if len(input) == 0 {
				input = []byte("{}")
			} else if !json.Valid(input) {
				r.add(fmt.Sprintf("choices[0].message.tool_calls[%d].function.arguments", j), "not valid JSON; sent as {}")
				input = []byte("{}")
			}
			msg.Content = append(msg.Content, &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{
				Id: tc.ID, Name: tc.Function.Name, InputJson: compact(input)}}})
		}
		finish := ""
		if ch.FinishReason != nil {
			finish = *ch.FinishReason
		}
		msg.StopReason = canon.StopReason(stopReason(finish, &r), len(ch.Message.ToolCalls) > 0)
	}
	out, err := anthropic.Dialect{}.RenderMessage(nil, msg)
	if err != nil {
		return nil, nil, fmt.Errorf("translate: %w", err)
	}
	return out, r, nil
}

func textContent(s string) *cpv1.ContentBlock {
	return &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: s}}}
}
