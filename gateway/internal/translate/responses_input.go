package translate

import (
	"encoding/json"
	"fmt"
	"strings"
)

// This file: the parts of a Responses request — input items, content
// parts, tools, tool_choice, text — as Chat Completions parts.

// responsesItem is one input item; the fields used depend on Type.
type responsesItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    json.RawMessage `json:"output"`
}

// Known keys of the input items that map (id and status are the ids and
// states of items the API returned: they say nothing to the model).
var (
	responsesMessageKeys      = map[string]bool{"type": true, "role": true, "content": true, "id": true, "status": true}
	responsesFunctionCallKeys = map[string]bool{"type": true, "call_id": true, "name": true, "arguments": true, "id": true, "status": true}
	responsesCallOutputKeys   = map[string]bool{"type": true, "call_id": true, "output": true, "id": true, "status": true}
)

// responsesInput converts input (a string or a list of items) to chat
// messages. Function calls join the assistant message before them, as
// the tool calls of one chat turn.
func responsesInput(raw json.RawMessage, r *report) ([]rcMessage, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []rcMessage{{Role: "user", Content: marshal(s)}}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, &RequestError{Param: "input", Message: "input must be a string or a list of items"}
	}
	var out []rcMessage
	for i, itemRaw := range items {
		path := fmt.Sprintf("input[%d]", i)
		var it responsesItem
		if err := json.Unmarshal(itemRaw, &it); err != nil {
			return nil, &RequestError{Param: path, Message: fmt.Sprintf("%s is not a valid input item: %v", path, err)}
		}
		typ := it.Type
		if typ == "" && it.Role != "" {
			typ = "message"
		}
		switch typ {
		case "message":
			r.reportUnknown(path+".", itemRaw, responsesMessageKeys, "no Chat Completions equivalent")
			m, err := responsesMessage(it, path, r)
			if err != nil {
				return nil, err
			}
			if m != nil {
				out = append(out, *m)
			}
		case "function_call":
			r.reportUnknown(path+".", itemRaw, responsesFunctionCallKeys, "no Chat Completions equivalent")
			var tc rcToolCall
			tc.ID, tc.Type = it.CallID, "function"
			tc.Function.Name, tc.Function.Arguments = it.Name, it.Arguments
			if n := len(out); n > 0 && out[n-1].Role == "assistant" {
				out[n-1].ToolCalls = append(out[n-1].ToolCalls, tc)
			} else {
				out = append(out, rcMessage{Role: "assistant", ToolCalls: []rcToolCall{tc}})
			}
		case "function_call_output":
			r.reportUnknown(path+".", itemRaw, responsesCallOutputKeys, "no Chat Completions equivalent")
			content, err := responsesCallOutput(it.Output, path, r)
			if err != nil {
				return nil, err
			}
			out = append(out, rcMessage{Role: "tool", ToolCallID: it.CallID, Content: content})
		case "item_reference":
			return nil, &RequestError{Param: path, Message: errItemReference}
		case "reasoning":
			r.add(path, "reasoning items have no Chat Completions equivalent")
		default:
			r.addf(path, "input item type %q has no Chat Completions equivalent", typ)
		}
	}
	return out, nil
}

// responsesMessage converts a message item; nil when nothing of it maps.
func responsesMessage(it responsesItem, path string, r *report) (*rcMessage, error) {
	switch it.Role {
	case "user", "assistant", "system", "developer":
	default:
		r.addf(path, "role %q has no Chat Completions equivalent", it.Role)
		return nil, nil
	}
	content, err := responsesContent(it.Content, it.Role, path, r)
	if err != nil {
		return nil, err
	}
	if content == nil {
		return nil, nil
	}
	return &rcMessage{Role: it.Role, Content: content}, nil
}

// responsesPart is one element of an item's content list.
type responsesPart struct {
	Type        string          `json:"type"`
	Text        *string         `json:"text"`
	Refusal     *string         `json:"refusal"`
	ImageURL    string          `json:"image_url"`
	Detail      string          `json:"detail"`
	FileID      string          `json:"file_id"`
	FileData    string          `json:"file_data"`
	FileURL     string          `json:"file_url"`
	Filename    string          `json:"filename"`
	Annotations json.RawMessage `json:"annotations"`
}

// responsesContent converts a message's content (a string or a part
// list) to chat content: a string stays a string, and so does a list of
// one text part; other lists become chat parts. nil when nothing maps.
func responsesContent(raw json.RawMessage, role, path string, r *report) (json.RawMessage, error) {
	if isNull(raw) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return marshal(s), nil
	}
	var parts []responsesPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, &RequestError{Param: path + ".content", Message: path + ".content must be a string or a list of content parts"}
	}
	var out []rcPart
	for j, p := range parts {
		ppath := fmt.Sprintf("%s.content[%d]", path, j)
		switch p.Type {
		case "input_text", "output_text":
			if p.Text == nil {
				continue
			}
			if a := strings.TrimSpace(string(p.Annotations)); a != "" && a != "null" && a != "[]" {
				r.add(ppath+".annotations", "no Chat Completions equivalent")
			}
			out = append(out, rcPart{Type: "text", Text: p.Text})
		case "refusal":
			if role != "assistant" || p.Refusal == nil {
				r.add(ppath, "refusal parts are carried only in assistant messages")
				continue
			}
			out = append(out, rcPart{Type: "refusal", Refusal: p.Refusal})
		case "input_image":
			if p.ImageURL == "" {
				if p.FileID != "" {
					r.add(ppath+".file_id", "images by file id have no Chat Completions equivalent")
				} else {
					r.add(ppath, "image without image_url")
				}
				continue
			}
			out = append(out, rcPart{Type: "image_url", ImageURL: &rcImageURL{URL: p.ImageURL, Detail: p.Detail}})
		case "input_file":
			if p.FileURL != "" {
				r.add(ppath+".file_url", "files by URL have no Chat Completions equivalent")
			}
			if p.FileData == "" && p.FileID == "" {
				if p.FileURL == "" {
					r.add(ppath, "file without file_data or file_id")
				}
				continue
			}
			out = append(out, rcPart{Type: "file", File: &rcFile{FileData: p.FileData, FileID: p.FileID, Filename: p.Filename}})
		default:
			r.addf(ppath, "content part type %q has no Chat Completions equivalent", p.Type)
		}
	}
	switch {
	case len(out) == 0:
		return nil, nil
	case len(out) == 1 && out[0].Type == "text":
		return marshal(*out[0].Text), nil
	}
	return marshal(out), nil
}

// responsesCallOutput converts a function_call_output's output (a string,
// or a list of parts of which the text is carried) to a tool message's
// content.
func responsesCallOutput(raw json.RawMessage, path string, r *report) (json.RawMessage, error) {
	if isNull(raw) {
		return marshal(""), nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return marshal(s), nil
	}
	var parts []responsesPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, &RequestError{Param: path + ".output", Message: path + ".output must be a string or a list of content parts"}
	}
	var texts []rcPart
	for j, p := range parts {
		if p.Type == "input_text" && p.Text != nil {
			texts = append(texts, rcPart{Type: "text", Text: p.Text})
			continue
		}
		r.addf(fmt.Sprintf("%s.output[%d]", path, j), "%s in a tool result has no Chat Completions equivalent", p.Type)
	}
	if len(texts) == 0 {
		return marshal(""), nil
	}
	return marshal(texts), nil
}

// responsesFunctionTool is a Responses function tool (flat, unlike chat's).
type responsesFunctionTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

var responsesToolKeys = map[string]bool{"type": true, "name": true, "description": true, "parameters": true, "strict": true}

// responsesTool converts a function tool; built-in tools (web search,
// file search, computer use, ...) are reported and left out.
func responsesTool(raw json.RawMessage, path string, r *report) (rcTool, bool) {
	var t responsesFunctionTool
	if err := json.Unmarshal(raw, &t); err != nil || t.Type != "function" {
		r.addf(path, "tool type %q has no Chat Completions equivalent", t.Type)
		return rcTool{}, false
	}
	r.reportUnknown(path+".", raw, responsesToolKeys, "no Chat Completions equivalent")
	return rcTool{Type: "function", Function: rcToolFunction{Name: t.Name, Description: t.Description,
		Parameters: nonNull(t.Parameters), Strict: t.Strict}}, true
}

// responsesToolChoice converts tool_choice: the options are the same
// words; a named function moves its name under "function".
func responsesToolChoice(raw json.RawMessage, r *report) json.RawMessage {
	if isNull(raw) {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto", "none", "required":
			return marshal(s)
		}
		r.addf("tool_choice", "%q has no Chat Completions equivalent", s)
		return nil
	}
	var named struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &named); err != nil || named.Type != "function" || named.Name == "" {
		r.addf("tool_choice", "choice of type %q has no Chat Completions equivalent", named.Type)
		return nil
	}
	type function struct {
		Name string `json:"name"`
	}
	return marshal(struct {
		Type     string   `json:"type"`
		Function function `json:"function"`
	}{"function", function{named.Name}})
}

// responsesTextConfig is the text field: the output format and verbosity.
type responsesTextConfig struct {
	Format *struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Schema      json.RawMessage `json:"schema"`
		Strict      *bool           `json:"strict"`
	} `json:"format"`
	Verbosity json.RawMessage `json:"verbosity"`
}

var responsesTextKeys = map[string]bool{"format": true, "verbosity": true}

// responsesText converts text.format to response_format (text needs
// none) and text.verbosity to verbosity.
func responsesText(raw json.RawMessage, r *report) (format, verbosity json.RawMessage, err error) {
	if isNull(raw) {
		return nil, nil, nil
	}
	var t responsesTextConfig
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, nil, &RequestError{Param: "text", Message: "text must be an object: " + err.Error()}
	}
	r.reportUnknown("text.", raw, responsesTextKeys, "no Chat Completions equivalent")
	verbosity = nonNull(t.Verbosity)
	if t.Format == nil {
		return nil, verbosity, nil
	}
	switch f := t.Format; f.Type {
	case "", "text":
		return nil, verbosity, nil
	case "json_object":
		return marshal(map[string]string{"type": "json_object"}), verbosity, nil
	case "json_schema":
		type jsonSchema struct {
			Name        string          `json:"name"`
			Description string          `json:"description,omitempty"`
			Schema      json.RawMessage `json:"schema,omitempty"`
			Strict      *bool           `json:"strict,omitempty"`
		}
		return marshal(struct {
			Type       string     `json:"type"`
			JSONSchema jsonSchema `json:"json_schema"`
		}{"json_schema", jsonSchema{f.Name, f.Description, nonNull(f.Schema), f.Strict}}), verbosity, nil
	default:
		r.addf("text.format", "format type %q has no Chat Completions equivalent", f.Type)
		return nil, verbosity, nil
	}
}
