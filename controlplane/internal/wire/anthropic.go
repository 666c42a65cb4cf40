package wire

import (
	"encoding/json"
	"fmt"

	"luthien.dev/canon/jsonx"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// anthropicUsage is the usage object of an Anthropic message.
type anthropicUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

// anthropicBlock is a content block; the fields used depend on Type.
type anthropicBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	Thinking  string          `json:"thinking"`
	Signature string          `json:"signature"`
}

// anthropicMessage is what is read of an Anthropic message.
type anthropicMessage struct {
	ID         string            `json:"id"`
	Model      string            `json:"model"`
	Content    []json.RawMessage `json:"content"`
	StopReason *string           `json:"stop_reason"`
	Usage      *anthropicUsage   `json:"usage"`
}

// parseAnthropic converts an Anthropic message. Block types the model
// does not type are kept as opaque blocks with their JSON.
func parseAnthropic(body []byte) (*cpv1.Message, error) {
	var m anthropicMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("anthropic: parse message: %w", err)
	}
	out := &cpv1.Message{Id: m.ID, Model: m.Model}
	if u := m.Usage; u != nil {
		out.Usage = &cpv1.Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
			CacheCreationInputTokens: u.CacheCreationInputTokens, CacheReadInputTokens: u.CacheReadInputTokens}
	}
	if m.StopReason != nil {
		out.StopReason = *m.StopReason
	}
	for i, raw := range m.Content {
		var b anthropicBlock
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, fmt.Errorf("anthropic: parse message: content[%d]: %w", i, err)
		}
		var block *cpv1.ContentBlock
		switch b.Type {
		case "text":
			block = &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: b.Text}}}
		case "tool_use":
			block = &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{
				Id: b.ID, Name: b.Name, InputJson: []byte(b.Input)}}}
		case "thinking":
			block = &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Thinking{Thinking: &cpv1.ThinkingBlock{
				Thinking: b.Thinking, Signature: b.Signature}}}
		default:
			block = &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Opaque{Opaque: &cpv1.OpaqueBlock{Type: b.Type, Json: raw}}}
		}
		out.Content = append(out.Content, block)
	}
	return out, nil
}

// anthropicBlockJSON renders one content block.
func anthropicBlockJSON(b *cpv1.ContentBlock) (json.RawMessage, error) {
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
		if raw := x.Opaque.GetJson(); json.Valid(raw) {
			return raw, nil
		}
		return nil, fmt.Errorf("opaque %q block is not JSON", x.Opaque.GetType())
	default:
		return json.RawMessage(`{"type":"text","text":""}`), nil
	}
	return jsonx.Marshal(v)
}

// renderAnthropic renders a message in the Anthropic format, over
// original when given.
func renderAnthropic(original []byte, msg *cpv1.Message) ([]byte, error) {
	content := make([]json.RawMessage, 0, len(msg.GetContent()))
	for i, b := range msg.GetContent() {
		raw, err := anthropicBlockJSON(b)
		if err != nil {
			return nil, fmt.Errorf("anthropic: render message: content[%d]: %w", i, err)
		}
		content = append(content, raw)
	}
	var stop *string
	if msg.GetStopReason() != "" {
		s := msg.GetStopReason()
		stop = &s
	}
	contentJSON, err := jsonx.Marshal(content)
	if err != nil {
		return nil, fmt.Errorf("anthropic: render message: %w", err)
	}
	stopJSON, _ := jsonx.Marshal(stop)
	if original != nil {
		var top jsonx.Object
		if err := top.Decode(original); err != nil {
			return nil, fmt.Errorf("anthropic: render message: %w", err)
		}
		top.Set("content", contentJSON)
		top.Set("stop_reason", stopJSON)
		return top.Encode(), nil
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
		Usage        anthropicUsage    `json:"usage"`
	}{msg.GetId(), "message", "assistant", msg.GetModel(), content, stop, nil, anthropicUsage{
		InputTokens: u.GetInputTokens(), OutputTokens: u.GetOutputTokens(),
		CacheCreationInputTokens: u.GetCacheCreationInputTokens(), CacheReadInputTokens: u.GetCacheReadInputTokens()}})
	if err != nil {
		return nil, fmt.Errorf("anthropic: render message: %w", err)
	}
	return out, nil
}
