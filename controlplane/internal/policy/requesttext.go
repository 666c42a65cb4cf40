package policy

import (
	"bytes"
	"encoding/json"
	"fmt"

	"luthien.dev/canon/jsonx"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// rewriteRequestText applies fn to every text a request body in the
// client's format holds for the model to read: the Anthropic top-level
// system (a string or text blocks); each message's content, when a string;
// each text block or part ({"type":"text","text":...}, both formats); and
// the content of every other block that has one, at any depth — Anthropic
// tool_result content as a string or as blocks, and OpenAI tool messages,
// whose content is a message content like any other. Tool calls (tool_use
// input, tool_calls arguments), images, documents and thinking blocks
// (whose signatures a change would break) are kept, as is everything else,
// with its key order. changed reports whether any text changed (body is
// then nil when not).
func rewriteRequestText(format cpv1.ClientFormat, body []byte, fn func(string) string) (out []byte, changed bool, err error) {
	switch format {
	case cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES, cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT:
	default:
		return nil, false, fmt.Errorf("rewrite request: unsupported format %v", format)
	}
	var top jsonx.Object
	if err := top.Decode(body); err != nil {
		return nil, false, fmt.Errorf("rewrite request: %w", err)
	}
	if system, ok := top.Get("system"); ok && format == cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES {
		newSystem, c, err := rewriteContent(system, fn)
		if err != nil {
			return nil, false, fmt.Errorf("rewrite request: system: %w", err)
		}
		if c {
			top.Set("system", newSystem)
			changed = true
		}
	}
	rawMsgs, ok := top.Get("messages")
	if !ok {
		if !changed {
			return nil, false, nil
		}
		return top.Encode(), true, nil
	}
	var msgs []json.RawMessage
	if err := json.Unmarshal(rawMsgs, &msgs); err != nil {
		return nil, false, fmt.Errorf("rewrite request: messages: %w", err)
	}
	for i, raw := range msgs {
		var m jsonx.Object
		if err := m.Decode(raw); err != nil {
			return nil, false, fmt.Errorf("rewrite request: messages[%d]: %w", i, err)
		}
		content, ok := m.Get("content")
		if !ok {
			continue
		}
		newContent, c, err := rewriteContent(content, fn)
		if err != nil {
			return nil, false, fmt.Errorf("rewrite request: messages[%d].content: %w", i, err)
		}
		if c {
			m.Set("content", newContent)
			msgs[i] = m.Encode()
			changed = true
		}
	}
	if !changed {
		return nil, false, nil
	}
	top.Set("messages", joinArray(msgs))
	return top.Encode(), true, nil
}

// maxContentDepth bounds how deep rewriteContent follows nested content,
// so that a crafted request cannot exhaust the stack (encoding/json allows
// 10000 levels).
const maxContentDepth = 32

// rewriteContent rewrites a message content: a string or a list of parts.
func rewriteContent(content json.RawMessage, fn func(string) string) (json.RawMessage, bool, error) {
	return rewriteContentAt(content, fn, 0)
}

// rewriteContentAt rewrites a content at nesting depth depth: a string, or
// a list of blocks whose texts, and nested contents, it rewrites.
func rewriteContentAt(content json.RawMessage, fn func(string) string, depth int) (json.RawMessage, bool, error) {
	if depth > maxContentDepth {
		return nil, false, fmt.Errorf("content nested deeper than %d levels", maxContentDepth)
	}
	trimmed := bytes.TrimSpace(content)
	if len(trimmed) == 0 {
		return content, false, nil
	}
	switch trimmed[0] {
	case '"':
		var s string
		if err := json.Unmarshal(trimmed, &s); err != nil {
			return nil, false, err
		}
		out := fn(s)
		if out == s {
			return content, false, nil
		}
		return jsonx.String(out), true, nil
	case '[':
		var parts []json.RawMessage
		if err := json.Unmarshal(trimmed, &parts); err != nil {
			return nil, false, err
		}
		changed := false
		for i, raw := range parts {
			var part jsonx.Object
			if err := part.Decode(raw); err != nil {
				continue // not an object: kept as is
			}
			typ, _ := part.Get("type")
			text, ok := part.Get("text")
			if !ok || string(bytes.TrimSpace(typ)) != `"text"` {
				inner, has := part.Get("content")
				if !has {
					continue
				}
				newInner, c, err := rewriteContentAt(inner, fn, depth+1)
				if err != nil {
					return nil, false, fmt.Errorf("[%d].content: %w", i, err)
				}
				if c {
					part.Set("content", newInner)
					parts[i] = part.Encode()
					changed = true
				}
				continue
			}
			var s string
			if err := json.Unmarshal(text, &s); err != nil {
				return nil, false, fmt.Errorf("[%d].text: %w", i, err)
			}
			if out := fn(s); out != s {
				part.Set("text", jsonx.String(out))
				parts[i] = part.Encode()
				changed = true
			}
		}
		if !changed {
			return content, false, nil
		}
		return joinArray(parts), true, nil
	}
	return content, false, nil
}

// joinArray writes a JSON array of raw values as they are.
func joinArray(items []json.RawMessage) json.RawMessage {
	out := []byte{'['}
	for i, it := range items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, it...)
	}
	return append(out, ']')
}
