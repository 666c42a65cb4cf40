package translate

import (
	"encoding/json"
	"fmt"
	"strings"

	"luthien.dev/canon/jsonx"
)

// This file: Anthropic Messages request → OpenAI Chat Completions request.

// messagesRequest is the part of a Messages request that maps.
type messagesRequest struct {
	Model         string            `json:"model"`
	System        json.RawMessage   `json:"system"`
	Messages      []json.RawMessage `json:"messages"`
	MaxTokens     *int64            `json:"max_tokens"`
	StopSequences []string          `json:"stop_sequences"`
	Temperature   json.RawMessage   `json:"temperature"`
	TopP          json.RawMessage   `json:"top_p"`
	Tools         []json.RawMessage `json:"tools"`
	ToolChoice    json.RawMessage   `json:"tool_choice"`
	Metadata      json.RawMessage   `json:"metadata"`
	Stream        bool              `json:"stream"`
}

var messagesRequestKeys = map[string]bool{
	"model": true, "system": true, "messages": true, "max_tokens": true, "stop_sequences": true,
	"temperature": true, "top_p": true, "tools": true, "tool_choice": true, "metadata": true, "stream": true,
}

// messagesBlock is any request content block; the fields used depend on
// Type.
type messagesBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Source    anthSource      `json:"source"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
}

// blockKeys are the block fields that map, per block type.
var blockKeys = map[string]map[string]bool{
	"text":        {"type": true, "text": true},
	"image":       {"type": true, "source": true},
	"tool_use":    {"type": true, "id": true, "name": true, "input": true},
	"tool_result": {"type": true, "tool_use_id": true, "content": true, "is_error": true},
}

type chatOutRequest struct {
	Model               string            `json:"model"`
	Messages            []chatOutMessage  `json:"messages"`
	MaxCompletionTokens *int64            `json:"max_completion_tokens,omitempty"`
	Stop                []string          `json:"stop,omitempty"`
	Temperature         json.RawMessage   `json:"temperature,omitempty"`
	TopP                json.RawMessage   `json:"top_p,omitempty"`
	Tools               []chatOutTool     `json:"tools,omitempty"`
	ToolChoice          json.RawMessage   `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool             `json:"parallel_tool_calls,omitempty"`
	User                string            `json:"user,omitempty"`
	Stream              bool              `json:"stream,omitempty"`
	StreamOptions       *chatStreamOption `json:"stream_options,omitempty"`
}

type chatStreamOption struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatOutMessage struct {
	Role       string            `json:"role"`
	Content    json.RawMessage   `json:"content"`
	ToolCalls  []chatOutToolCall `json:"tool_calls,omitempty"`
	ToolCallID string            `json:"tool_call_id,omitempty"`
}

type chatOutToolCall struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Function chatOutFunction `json:"function"`
}

type chatOutFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type chatOutPart struct {
	Type     string           `json:"type"`
	Text     *string          `json:"text,omitempty"`
	ImageURL *chatOutImageURL `json:"image_url,omitempty"`
}

type chatOutImageURL struct {
	URL string `json:"url"`
}

type chatOutTool struct {
	Type     string          `json:"type"`
	Function chatOutToolFunc `json:"function"`
}

type chatOutToolFunc struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
}

// MessagesToChat translates an Anthropic Messages request body to an
// OpenAI Chat Completions request body. max_tokens becomes
// max_completion_tokens; a streamed request asks for
// stream_options.include_usage, as Anthropic streams always carry usage.
func MessagesToChat(body []byte) ([]byte, []Dropped, error) {
	var req messagesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, nil, fmt.Errorf("translate: messages request: %w", err)
	}
	var r report
	r.reportUnknown("", body, messagesRequestKeys, "no OpenAI Chat Completions equivalent")
	out := chatOutRequest{Model: req.Model, MaxCompletionTokens: req.MaxTokens, Stop: req.StopSequences,
		Temperature: nullToNil(req.Temperature), TopP: nullToNil(req.TopP), Stream: req.Stream}
	if req.Stream {
		out.StreamOptions = &chatStreamOption{IncludeUsage: true}
	}
	if !isNull(req.Metadata) {
		var md struct {
			UserID string `json:"user_id"`
		}
		if err := json.Unmarshal(req.Metadata, &md); err != nil {
			return nil, nil, fmt.Errorf("translate: messages request: metadata: %w", err)
		}
		out.User = md.UserID
		r.reportUnknown("metadata.", req.Metadata, map[string]bool{"user_id": true}, "no OpenAI equivalent")
	}
	for i, raw := range req.Tools {
		if t, ok := anthToolToChat(raw, fmt.Sprintf("tools[%d]", i), &r); ok {
			out.Tools = append(out.Tools, t)
		}
	}
	if !isNull(req.ToolChoice) {
		tc, parallel, err := anthToolChoiceToChat(req.ToolChoice)
		if err != nil {
			return nil, nil, err
		}
		out.ToolChoice, out.ParallelToolCalls = tc, parallel
	}

	if !isNull(req.System) {
		sys, err := systemToChat(req.System, &r)
		if err != nil {
			return nil, nil, err
		}
		if sys != nil {
			out.Messages = append(out.Messages, *sys)
		}
	}
	for i, raw := range req.Messages {
		msgs, err := anthMessageToChat(raw, fmt.Sprintf("messages[%d]", i), &r)
		if err != nil {
			return nil, nil, err
		}
		out.Messages = append(out.Messages, msgs...)
	}
	b, err := jsonx.Marshal(out)
	if err != nil {
		return nil, nil, fmt.Errorf("translate: chat request: %w", err)
	}
	return b, r, nil
}

func nullToNil(raw json.RawMessage) json.RawMessage {
	if isNull(raw) {
		return nil
	}
	return raw
}

func anthToolToChat(raw json.RawMessage, path string, r *report) (chatOutTool, bool) {
	var t struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"input_schema"`
	}
	if err := json.Unmarshal(raw, &t); err != nil || (t.Type != "" && t.Type != "custom") {
		r.addf(path, "server tool %q has no OpenAI equivalent", t.Type)
		return chatOutTool{}, false
	}
	r.reportUnknown(path+".", raw, map[string]bool{"type": true, "name": true, "description": true, "input_schema": true},
		"no OpenAI equivalent")
	params := t.InputSchema
	if isNull(params) {
		params = emptySchema
	}
	return chatOutTool{Type: "function", Function: chatOutToolFunc{Name: t.Name, Description: t.Description, Parameters: params}}, true
}

// anthToolChoiceToChat returns tool_choice and parallel_tool_calls.
func anthToolChoiceToChat(raw json.RawMessage) (json.RawMessage, *bool, error) {
	var tc anthToolChoice
	if err := json.Unmarshal(raw, &tc); err != nil {
		return nil, nil, fmt.Errorf("translate: messages request: tool_choice: %w", err)
	}
	var parallel *bool
	if tc.DisableParallelToolUse {
		f := false
		parallel = &f
	}
	switch tc.Type {
	case "auto":
		return marshal("auto"), parallel, nil
	case "none":
		return marshal("none"), parallel, nil
	case "any":
		return marshal("required"), parallel, nil
	case "tool":
		return marshal(map[string]any{"type": "function", "function": map[string]string{"name": tc.Name}}), parallel, nil
	}
	return nil, nil, fmt.Errorf("translate: messages request: tool_choice type %q", tc.Type)
}

// systemToChat converts the system prompt (string or text blocks) to one
// system message.
func systemToChat(raw json.RawMessage, r *report) (*chatOutMessage, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, nil
		}
		return &chatOutMessage{Role: "system", Content: marshal(s)}, nil
	}
	var blocks []json.RawMessage
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, fmt.Errorf("translate: messages request: system: %w", err)
	}
	var parts []chatOutPart
	for i, b := range blocks {
		path := fmt.Sprintf("system[%d]", i)
		var blk messagesBlock
		if err := json.Unmarshal(b, &blk); err != nil {
			return nil, fmt.Errorf("translate: messages request: %s: %w", path, err)
		}
		if blk.Type != "text" {
			r.addf(path, "system block type %q has no OpenAI equivalent", blk.Type)
			continue
		}
		r.reportUnknown(path+".", b, blockKeys["text"], "no OpenAI equivalent")
		parts = append(parts, textPart(blk.Text))
	}
	if len(parts) == 0 {
		return nil, nil
	}
	return &chatOutMessage{Role: "system", Content: partsContent(parts)}, nil
}

func textPart(s string) chatOutPart { return chatOutPart{Type: "text", Text: &s} }

// partsContent renders content parts: a string for a lone text part.
func partsContent(parts []chatOutPart) json.RawMessage {
	if len(parts) == 1 && parts[0].Type == "text" {
		return marshal(*parts[0].Text)
	}
	return marshal(parts)
}

// anthMessageToChat converts one message. A user message's tool results
// become tool messages, first (they must follow the assistant's tool
// calls), then the rest of its content as a user message.
func anthMessageToChat(raw json.RawMessage, path string, r *report) ([]chatOutMessage, error) {
	var m struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("translate: messages request: %s: %w", path, err)
	}
	r.reportUnknown(path+".", raw, map[string]bool{"role": true, "content": true}, "no OpenAI equivalent")
	if m.Role != "user" && m.Role != "assistant" {
		r.addf(path, "role %q has no OpenAI equivalent", m.Role)
		return nil, nil
	}
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return []chatOutMessage{{Role: m.Role, Content: marshal(s)}}, nil
	}
	var blocks []json.RawMessage
	if err := json.Unmarshal(m.Content, &blocks); err != nil {
		return nil, fmt.Errorf("translate: messages request: %s.content: %w", path, err)
	}
	var out []chatOutMessage
	var parts []chatOutPart
	var calls []chatOutToolCall
	for j, braw := range blocks {
		bpath := fmt.Sprintf("%s.content[%d]", path, j)
		var b messagesBlock
		if err := json.Unmarshal(braw, &b); err != nil {
			return nil, fmt.Errorf("translate: messages request: %s: %w", bpath, err)
		}
		if keys, ok := blockKeys[b.Type]; ok {
			r.reportUnknown(bpath+".", braw, keys, "no OpenAI equivalent")
		}
		switch b.Type {
		case "text":
			parts = append(parts, textPart(b.Text))
		case "image":
			url, ok := imageURL(b.Source)
			if !ok {
				r.addf(bpath+".source", "image source type %q has no OpenAI equivalent", b.Source.Type)
				continue
			}
			parts = append(parts, chatOutPart{Type: "image_url", ImageURL: &chatOutImageURL{URL: url}})
		case "tool_use":
			args := "{}"
			if !isNull(b.Input) {
				args = string(compact(b.Input))
			}
			calls = append(calls, chatOutToolCall{ID: b.ID, Type: "function", Function: chatOutFunction{Name: b.Name, Arguments: args}})
		case "tool_result":
			if m.Role != "user" {
				r.add(bpath, "tool_result outside a user message")
				continue
			}
			if b.IsError {
				r.add(bpath+".is_error", "no OpenAI equivalent; the content is kept")
			}
			content, err := toolResultToChat(b.Content, bpath, r)
			if err != nil {
				return nil, err
			}
			out = append(out, chatOutMessage{Role: "tool", ToolCallID: b.ToolUseID, Content: content})
		default:
			r.addf(bpath, "%s block has no OpenAI equivalent", b.Type)
		}
	}
	if m.Role == "assistant" {
		msg := chatOutMessage{Role: "assistant", ToolCalls: calls, Content: json.RawMessage("null")}
		if text := joinText(parts); text != "" || len(calls) == 0 {
			msg.Content = marshal(text)
		}
		return append(out, msg), nil
	}
	if len(parts) > 0 {
		out = append(out, chatOutMessage{Role: "user", Content: partsContent(parts)})
	}
	return out, nil
}

// joinText concatenates the text parts of an assistant message (OpenAI
// assistant content is text only).
func joinText(parts []chatOutPart) string {
	var b strings.Builder
	for _, p := range parts {
		if p.Text != nil {
			b.WriteString(*p.Text)
		}
	}
	return b.String()
}

// imageURL converts an Anthropic image source to an image_url URL.
func imageURL(src anthSource) (string, bool) {
	switch src.Type {
	case "base64":
		return "data:" + src.MediaType + ";base64," + src.Data, true
	case "url":
		return src.URL, true
	}
	return "", false
}

// toolResultToChat converts a tool_result's content (string or blocks)
// to a tool message's content; only text can be carried.
func toolResultToChat(raw json.RawMessage, path string, r *report) (json.RawMessage, error) {
	if isNull(raw) {
		return marshal(""), nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return marshal(s), nil
	}
	var blocks []messagesBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, fmt.Errorf("translate: messages request: %s.content: %w", path, err)
	}
	var parts []chatOutPart
	for k, b := range blocks {
		if b.Type != "text" {
			r.addf(fmt.Sprintf("%s.content[%d]", path, k), "%s in a tool result has no OpenAI equivalent", b.Type)
			continue
		}
		parts = append(parts, textPart(b.Text))
	}
	if len(parts) == 0 {
		return marshal(""), nil
	}
	return partsContent(parts), nil
}
