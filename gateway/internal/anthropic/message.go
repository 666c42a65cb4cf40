package anthropic

import (
	"encoding/json"
	"fmt"

	"luthien.dev/canon/jsonx"
	"luthien.dev/gateway/internal/dialect"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

type wireUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

func (u *wireUsage) canon() *cpv1.Usage {
	if u == nil {
		return nil
	}
	return &cpv1.Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
		CacheCreationInputTokens: u.CacheCreationInputTokens, CacheReadInputTokens: u.CacheReadInputTokens}
}

// wireBlock is a content block; the fields used depend on Type.
type wireBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	Thinking  string          `json:"thinking"`
	Signature string          `json:"signature"`
}

// blockFromWire converts one content block; raw is the block's JSON, kept
// for types the model does not type.
func blockFromWire(raw json.RawMessage) (*cpv1.ContentBlock, error) {
	var b wireBlock
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("content block: %w", err)
	}
	switch b.Type {
	case "text":
		return &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: b.Text}}}, nil
	case "tool_use":
		return &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{
			Id: b.ID, Name: b.Name, InputJson: []byte(b.Input)}}}, nil
	case "thinking":
		return &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Thinking{Thinking: &cpv1.ThinkingBlock{
			Thinking: b.Thinking, Signature: b.Signature}}}, nil
	}
	return &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Opaque{Opaque: &cpv1.OpaqueBlock{Type: b.Type, Json: raw}}}, nil
}

// blockToWire renders one content block. A stream's block start has an
// empty tool input, rendered as {} like the API does.
func blockToWire(b *cpv1.ContentBlock) json.RawMessage {
	var v any
	switch x := b.GetBlock().(type) {
	case *cpv1.ContentBlock_Text:
		v = struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{"text", x.Text.GetText()}
	case *cpv1.ContentBlock_ToolUse:
		input := json.RawMessage(x.ToolUse.GetInputJson())
		if len(input) == 0 || !json.Valid(input) {
			input = json.RawMessage("{}")
		}
		v = struct {
			Type  string          `json:"type"`
			ID    string          `json:"id"`
			Name  string          `json:"name"`
			Input json.RawMessage `json:"input"`
		}{"tool_use", x.ToolUse.GetId(), x.ToolUse.GetName(), input}
	case *cpv1.ContentBlock_Thinking:
		v = struct {
			Type      string `json:"type"`
			Thinking  string `json:"thinking"`
			Signature string `json:"signature"`
		}{"thinking", x.Thinking.GetThinking(), x.Thinking.GetSignature()}
	case *cpv1.ContentBlock_Opaque:
		return json.RawMessage(x.Opaque.GetJson())
	default:
		return json.RawMessage(`{"type":"text","text":""}`)
	}
	out, _ := jsonx.Marshal(v)
	return out
}

type wireMessage struct {
	ID         string            `json:"id"`
	Model      string            `json:"model"`
	Content    []json.RawMessage `json:"content"`
	StopReason *string           `json:"stop_reason"`
	Usage      *wireUsage        `json:"usage"`
}

// ParseMessage implements dialect.Dialect.
func (Dialect) ParseMessage(body []byte) (*cpv1.Message, error) {
	var m wireMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("anthropic: parse message: %w", err)
	}
	out := &cpv1.Message{Id: m.ID, Model: m.Model, Usage: m.Usage.canon()}
	if m.StopReason != nil {
		out.StopReason = *m.StopReason
	}
	for _, raw := range m.Content {
		b, err := blockFromWire(raw)
		if err != nil {
			return nil, fmt.Errorf("anthropic: parse message: %w", err)
		}
		out.Content = append(out.Content, b)
	}
	return out, nil
}

// RenderMessage implements dialect.Dialect.
func (Dialect) RenderMessage(original []byte, msg *cpv1.Message) ([]byte, error) {
	content := make([]json.RawMessage, 0, len(msg.GetContent()))
	for _, b := range msg.GetContent() {
		content = append(content, blockToWire(b))
	}
	var stop *string
	if msg.GetStopReason() != "" {
		s := msg.GetStopReason()
		stop = &s
	}
	if original != nil {
		patch, err := jsonx.Marshal(struct {
			Content    []json.RawMessage `json:"content"`
			StopReason *string           `json:"stop_reason"`
		}{content, stop})
		if err != nil {
			return nil, fmt.Errorf("anthropic: render message: %w", err)
		}
		return dialect.Overlay(original, patch)
	}
	u := msg.GetUsage()
	out, err := jsonx.Marshal(struct {
		ID           string            `json:"id"`
		Type         string            `json:"type"`
		Role         string            `json:"role"`
		Model        string            `json:"model"`
		Content      []json.RawMessage `json:"content"`
		StopReason   *string           `json:"stop_reason"`
		StopSequence *string           `json:"stop_sequence"`
		Usage        wireUsage         `json:"usage"`
	}{msg.GetId(), "message", "assistant", msg.GetModel(), content, stop, nil, wireUsage{
		InputTokens: u.GetInputTokens(), OutputTokens: u.GetOutputTokens(),
		CacheCreationInputTokens: u.GetCacheCreationInputTokens(), CacheReadInputTokens: u.GetCacheReadInputTokens()}})
	if err != nil {
		return nil, fmt.Errorf("anthropic: render message: %w", err)
	}
	return out, nil
}
