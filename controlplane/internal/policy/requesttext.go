package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

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
	var top orderedJSON
	if err := top.decode(body); err != nil {
		return nil, false, fmt.Errorf("rewrite request: %w", err)
	}
	if system, ok := top.get("system"); ok && format == cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES {
		newSystem, c, err := rewriteContent(system, fn)
		if err != nil {
			return nil, false, fmt.Errorf("rewrite request: system: %w", err)
		}
		if c {
			top.set("system", newSystem)
			changed = true
		}
	}
	rawMsgs, ok := top.get("messages")
	if !ok {
		if !changed {
			return nil, false, nil
		}
		return top.encode(), true, nil
	}
	var msgs []json.RawMessage
	if err := json.Unmarshal(rawMsgs, &msgs); err != nil {
		return nil, false, fmt.Errorf("rewrite request: messages: %w", err)
	}
	for i, raw := range msgs {
		var m orderedJSON
		if err := m.decode(raw); err != nil {
			return nil, false, fmt.Errorf("rewrite request: messages[%d]: %w", i, err)
		}
		content, ok := m.get("content")
		if !ok {
			continue
		}
		newContent, c, err := rewriteContent(content, fn)
		if err != nil {
			return nil, false, fmt.Errorf("rewrite request: messages[%d].content: %w", i, err)
		}
		if c {
			m.set("content", newContent)
			msgs[i] = m.encode()
			changed = true
		}
	}
	if !changed {
		return nil, false, nil
	}
	top.set("messages", joinArray(msgs))
	return top.encode(), true, nil
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
		return marshalString(out), true, nil
	case '[':
		var parts []json.RawMessage
		if err := json.Unmarshal(trimmed, &parts); err != nil {
			return nil, false, err
		}
		changed := false
		for i, raw := range parts {
			var part orderedJSON
			if err := part.decode(raw); err != nil {
				continue // not an object: kept as is
			}
			typ, _ := part.get("type")
			text, ok := part.get("text")
			if !ok || string(bytes.TrimSpace(typ)) != `"text"` {
				inner, has := part.get("content")
				if !has {
					continue
				}
				newInner, c, err := rewriteContentAt(inner, fn, depth+1)
				if err != nil {
					return nil, false, fmt.Errorf("[%d].content: %w", i, err)
				}
				if c {
					part.set("content", newInner)
					parts[i] = part.encode()
					changed = true
				}
				continue
			}
			var s string
			if err := json.Unmarshal(text, &s); err != nil {
				return nil, false, fmt.Errorf("[%d].text: %w", i, err)
			}
			if out := fn(s); out != s {
				part.set("text", marshalString(out))
				parts[i] = part.encode()
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

// marshalString encodes s as JSON without HTML escaping.
func marshalString(s string) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// orderedJSON is a JSON object whose key order survives a round trip.
type orderedJSON struct {
	keys []string
	vals map[string]json.RawMessage
}

// decode reads a JSON object.
func (o *orderedJSON) decode(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	o.keys, o.vals = nil, map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if _, dup := o.vals[k]; !dup {
			o.keys = append(o.keys, k)
		}
		o.vals[k] = v
	}
	_, err = dec.Token()
	return err
}

// get returns a member.
func (o *orderedJSON) get(k string) (json.RawMessage, bool) {
	v, ok := o.vals[k]
	return v, ok
}

// set replaces or appends a member.
func (o *orderedJSON) set(k string, v json.RawMessage) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

// encode writes the object in key order.
func (o *orderedJSON) encode() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(marshalString(k))
		b.WriteByte(':')
		b.Write(o.vals[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}
