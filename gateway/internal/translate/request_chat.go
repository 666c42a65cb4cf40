package translate

import (
	"encoding/json"
	"fmt"
	"strings"

	"luthien.dev/canon/jsonx"
)

// This file: OpenAI Chat Completions request → Anthropic Messages request.

// chatRequest is the part of a Chat Completions request that maps.
type chatRequest struct {
	Model               string            `json:"model"`
	Messages            []json.RawMessage `json:"messages"`
	MaxTokens           *int64            `json:"max_tokens"`
	MaxCompletionTokens *int64            `json:"max_completion_tokens"`
	Stop                json.RawMessage   `json:"stop"`
	Temperature         *float64          `json:"temperature"`
	TopP                json.RawMessage   `json:"top_p"`
	Tools               []json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage   `json:"tool_choice"`
	ParallelToolCalls   *bool             `json:"parallel_tool_calls"`
	User                string            `json:"user"`
	Stream              bool              `json:"stream"`
}

// chatRequestKeys are the request fields that map (stream_options is read
// by the stream translator: Anthropic streams always carry usage).
var chatRequestKeys = map[string]bool{
	"model": true, "messages": true, "max_tokens": true, "max_completion_tokens": true,
	"stop": true, "temperature": true, "top_p": true, "tools": true, "tool_choice": true,
	"parallel_tool_calls": true, "user": true, "stream": true, "stream_options": true,
}

type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  []chatToolCall  `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

var chatMessageKeys = map[string]bool{"role": true, "content": true, "tool_calls": true, "tool_call_id": true}

type chatToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// chatPart is one element of a content array.
type chatPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Refusal  string `json:"refusal"`
	ImageURL struct {
		URL    string `json:"url"`
		Detail string `json:"detail"`
	} `json:"image_url"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
		Strict      *bool           `json:"strict"`
	} `json:"function"`
}

// anthRequest is the Messages request written; its field order is the
// order of the output.
type anthRequest struct {
	Model         string          `json:"model"`
	System        json.RawMessage `json:"system,omitempty"`
	Messages      []anthMessage   `json:"messages"`
	MaxTokens     int64           `json:"max_tokens"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          json.RawMessage `json:"top_p,omitempty"`
	Tools         []anthTool      `json:"tools,omitempty"`
	ToolChoice    *anthToolChoice `json:"tool_choice,omitempty"`
	Metadata      *anthMetadata   `json:"metadata,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
}

type anthMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// anthBlock is any content block; the fields used depend on Type.
type anthBlock struct {
	Type      string          `json:"type"`
	Text      *string         `json:"text,omitempty"`
	Source    *anthSource     `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
}

type anthSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type anthTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type anthToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type anthMetadata struct {
	UserID string `json:"user_id"`
}

// emptySchema is the input_schema of a function declared without
// parameters.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// userPlaceholder is the user turn put before a conversation that starts
// with the assistant.
const userPlaceholder = "."

// ChatToMessages translates an OpenAI Chat Completions request body to an
// Anthropic Messages request body. It reports every field it cannot carry
// and every default it applies; it fails only on a body that is not a
// Chat Completions request.
func ChatToMessages(body []byte) ([]byte, []Dropped, error) {
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, nil, fmt.Errorf("translate: chat request: %w", err)
	}
	var r report
	r.reportUnknown("", body, chatRequestKeys, "no Anthropic Messages equivalent")
	out := anthRequest{Model: req.Model, Stream: req.Stream, TopP: req.TopP}
	if isNull(out.TopP) {
		out.TopP = nil
	}

	switch {
	case req.MaxCompletionTokens != nil:
		out.MaxTokens = *req.MaxCompletionTokens
		if req.MaxTokens != nil {
			r.add("max_tokens", "max_completion_tokens given too; it is used")
		}
	case req.MaxTokens != nil:
		out.MaxTokens = *req.MaxTokens
	default:
		out.MaxTokens = DefaultMaxTokens
		r.addf("max_tokens", "absent; Anthropic requires it, default %d applied", DefaultMaxTokens)
	}
	if t := req.Temperature; t != nil {
		v := *t
		if v > 1 {
			r.addf("temperature", "%g is above Anthropic's maximum; clamped to 1", v)
			v = 1
		}
		out.Temperature = &v
	}
	if !isNull(req.Stop) {
		var one string
		if json.Unmarshal(req.Stop, &one) == nil {
			out.StopSequences = []string{one}
		} else if err := json.Unmarshal(req.Stop, &out.StopSequences); err != nil {
			return nil, nil, fmt.Errorf("translate: chat request: stop: %w", err)
		}
	}
	if req.User != "" {
		out.Metadata = &anthMetadata{UserID: req.User}
	}

	for i, raw := range req.Tools {
		if t, ok := chatToolToAnthropic(raw, fmt.Sprintf("tools[%d]", i), &r); ok {
			out.Tools = append(out.Tools, t)
		}
	}
	tc, err := chatToolChoice(req.ToolChoice)
	if err != nil {
		return nil, nil, err
	}
	if req.ParallelToolCalls != nil && !*req.ParallelToolCalls {
		if tc == nil {
			tc = &anthToolChoice{Type: "auto"}
		}
		if tc.Type != "none" {
			tc.DisableParallelToolUse = true
		}
	}
	out.ToolChoice = tc

	system, msgs, err := chatMessagesToAnthropic(req.Messages, &r)
	if err != nil {
		return nil, nil, err
	}
	out.System, out.Messages = system, msgs

	b, err := jsonx.Marshal(out)
	if err != nil {
		return nil, nil, fmt.Errorf("translate: messages request: %w", err)
	}
	return b, r, nil
}

func chatToolToAnthropic(raw json.RawMessage, path string, r *report) (anthTool, bool) {
	var t chatTool
	if err := json.Unmarshal(raw, &t); err != nil || (t.Type != "function" && t.Type != "") {
		r.addf(path, "tool type %q has no Anthropic equivalent", t.Type)
		return anthTool{}, false
	}
	out := anthTool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: t.Function.Parameters}
	if isNull(out.InputSchema) {
		out.InputSchema = emptySchema
	}
	if t.Function.Strict != nil {
		r.add(path+".function.strict", "no Anthropic equivalent")
	}
	return out, true
}

func chatToolChoice(raw json.RawMessage) (*anthToolChoice, error) {
	if isNull(raw) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto":
			return &anthToolChoice{Type: "auto"}, nil
		case "none":
			return &anthToolChoice{Type: "none"}, nil
		case "required":
			return &anthToolChoice{Type: "any"}, nil
		}
		return nil, fmt.Errorf("translate: chat request: tool_choice %q", s)
	}
	var named struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &named); err != nil || named.Function.Name == "" {
		return nil, fmt.Errorf("translate: chat request: tool_choice: %s", raw)
	}
	return &anthToolChoice{Type: "tool", Name: named.Function.Name}, nil
}

// turn is one Anthropic message being built.
type turn struct {
	role   string
	blocks []anthBlock
}

// chatMessagesToAnthropic splits system messages out and converts the
// rest to alternating turns.
func chatMessagesToAnthropic(raws []json.RawMessage, r *report) (json.RawMessage, []anthMessage, error) {
	var system []anthBlock
	var turns []turn
	add := func(role string, blocks []anthBlock) {
		if len(blocks) == 0 {
			return
		}
		if n := len(turns); n > 0 && turns[n-1].role == role {
			turns[n-1].blocks = append(turns[n-1].blocks, blocks...)
			return
		}
		turns = append(turns, turn{role: role, blocks: blocks})
	}
	for i, raw := range raws {
		path := fmt.Sprintf("messages[%d]", i)
		var m chatMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, nil, fmt.Errorf("translate: chat request: %s: %w", path, err)
		}
		r.reportUnknown(path+".", raw, chatMessageKeys, "no Anthropic Messages equivalent")
		switch m.Role {
		case "system", "developer":
			if len(turns) > 0 {
				r.add(path, "system message inside the conversation moved to the top-level system prompt")
			}
			blocks, err := chatContent(m.Content, path, r)
			if err != nil {
				return nil, nil, err
			}
			for _, b := range blocks {
				if b.Type == "text" {
					system = append(system, b)
				} else {
					r.add(path+".content", "non-text system content has no Anthropic equivalent")
				}
			}
		case "user":
			blocks, err := chatContent(m.Content, path, r)
			if err != nil {
				return nil, nil, err
			}
			add("user", blocks)
		case "assistant":
			blocks, err := chatContent(m.Content, path, r)
			if err != nil {
				return nil, nil, err
			}
			for j, tc := range m.ToolCalls {
				blocks = append(blocks, chatToolCallToBlock(tc, fmt.Sprintf("%s.tool_calls[%d]", path, j), r))
			}
			add("assistant", blocks)
		case "tool":
			content, err := toolResultContent(m.Content, path, r)
			if err != nil {
				return nil, nil, err
			}
			add("user", []anthBlock{{Type: "tool_result", ToolUseID: m.ToolCallID, Content: content}})
		default:
			r.addf(path, "role %q has no Anthropic equivalent", m.Role)
		}
	}
	if len(turns) > 0 && turns[0].role != "user" {
		r.add("messages", "conversation starts with the assistant; a \""+userPlaceholder+"\" user turn was inserted")
		turns = append([]turn{{role: "user", blocks: []anthBlock{textBlock(userPlaceholder)}}}, turns...)
	}
	msgs := make([]anthMessage, 0, len(turns))
	for _, t := range turns {
		msgs = append(msgs, anthMessage{Role: t.role, Content: blocksContent(t.blocks)})
	}
	var sys json.RawMessage
	switch {
	case len(system) == 1:
		sys = marshal(*system[0].Text)
	case len(system) > 1:
		sys = marshal(system)
	}
	return sys, msgs, nil
}

func textBlock(s string) anthBlock { return anthBlock{Type: "text", Text: &s} }

// blocksContent renders a turn's content: a string for a lone text block,
// the block array otherwise.
func blocksContent(blocks []anthBlock) json.RawMessage {
	if len(blocks) == 1 && blocks[0].Type == "text" {
		return marshal(*blocks[0].Text)
	}
	return marshal(blocks)
}

// chatContent converts a message's content (string, parts or null) to
// blocks. Empty text is left out (Anthropic rejects empty text blocks).
func chatContent(raw json.RawMessage, path string, r *report) ([]anthBlock, error) {
	if isNull(raw) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, nil
		}
		return []anthBlock{textBlock(s)}, nil
	}
	var parts []chatPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, fmt.Errorf("translate: chat request: %s.content: %w", path, err)
	}
	var out []anthBlock
	for j, p := range parts {
		ppath := fmt.Sprintf("%s.content[%d]", path, j)
		switch p.Type {
		case "text":
			if p.Text != "" {
				out = append(out, textBlock(p.Text))
			}
		case "image_url":
			src, ok := imageSource(p.ImageURL.URL)
			if !ok {
				r.add(ppath, "image URL is neither a base64 data: URL nor http(s)")
				continue
			}
			if p.ImageURL.Detail != "" {
				r.add(ppath+".image_url.detail", "no Anthropic equivalent")
			}
			out = append(out, anthBlock{Type: "image", Source: src})
		case "refusal":
			r.add(ppath, "refusal parts have no Anthropic request equivalent")
		default:
			r.addf(ppath, "content part type %q has no Anthropic equivalent", p.Type)
		}
	}
	return out, nil
}

// imageSource converts an image_url URL to an Anthropic image source.
func imageSource(url string) (*anthSource, bool) {
	if rest, ok := strings.CutPrefix(url, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mediaType, isB64 := strings.CutSuffix(meta, ";base64")
		if !ok || !isB64 || mediaType == "" {
			return nil, false
		}
		return &anthSource{Type: "base64", MediaType: mediaType, Data: data}, true
	}
	if strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://") {
		return &anthSource{Type: "url", URL: url}, true
	}
	return nil, false
}

// chatToolCallToBlock converts one tool call; arguments that are not a
// JSON object are reported and sent as {}.
func chatToolCallToBlock(tc chatToolCall, path string, r *report) anthBlock {
	input := json.RawMessage(`{}`)
	args := strings.TrimSpace(tc.Function.Arguments)
	switch {
	case args == "":
	case json.Valid([]byte(args)) && args[0] == '{':
		input = compact([]byte(args))
	default:
		r.add(path+".function.arguments", "not a JSON object; sent as {}")
	}
	return anthBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input}
}

// toolResultContent converts a tool message's content to a tool_result's
// content: a string, or text blocks.
func toolResultContent(raw json.RawMessage, path string, r *report) (json.RawMessage, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return marshal(s), nil
	}
	blocks, err := chatContent(raw, path, r)
	if err != nil {
		return nil, err
	}
	var texts []anthBlock
	for _, b := range blocks {
		if b.Type == "text" {
			texts = append(texts, b)
		} else {
			r.add(path+".content", "non-text tool content dropped")
		}
	}
	if len(texts) == 0 {
		return marshal(""), nil
	}
	return marshal(texts), nil
}
