package dialect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Overlay returns base with every key of patch written over it. Objects
// present in both are merged recursively; any other value in patch
// replaces base's. Keys only in base are kept in their order, so a
// response a policy changed keeps the provider's unknown fields.
func Overlay(base, patch []byte) ([]byte, error) {
	var b, p orderedObject
	if err := b.decode(base); err != nil {
		return nil, fmt.Errorf("overlay: base: %w", err)
	}
	if err := p.decode(patch); err != nil {
		return nil, fmt.Errorf("overlay: patch: %w", err)
	}
	for _, k := range p.keys {
		pv := p.vals[k]
		if bv, ok := b.vals[k]; ok && isObject(bv) && isObject(pv) {
			merged, err := Overlay(bv, pv)
			if err != nil {
				return nil, err
			}
			b.vals[k] = merged
			continue
		}
		b.set(k, pv)
	}
	return b.encode(), nil
}

// orderedObject is a JSON object whose key order survives a round trip.
type orderedObject struct {
	keys []string
	vals map[string]json.RawMessage
}

func (o *orderedObject) decode(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("not a JSON object")
	}
	o.vals = map[string]json.RawMessage{}
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
		o.set(k, v)
	}
	// The closing brace, then nothing: a truncated or trailed object is
	// not an object.
	if _, err := dec.Token(); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("data after the JSON object")
	}
	return nil
}

func (o *orderedObject) set(k string, v json.RawMessage) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *orderedObject) encode() []byte {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(o.vals[k])
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

func isObject(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && v[0] == '{'
}

// Without returns obj without key, other keys in their order.
func Without(obj []byte, key string) ([]byte, error) {
	var o orderedObject
	if err := o.decode(obj); err != nil {
		return nil, fmt.Errorf("without: %w", err)
	}
	if _, ok := o.vals[key]; !ok {
		return obj, nil
	}
	delete(o.vals, key)
	for i, k := range o.keys {
		if k == key {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			break
		}
	}
	return o.encode(), nil
}

// Marshal is json.Marshal without HTML escaping, as the providers write
// JSON ("<" stays "<").
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// AppendString appends s as a JSON string, escaping only what JSON
// requires (quotes, backslashes, control characters), as the providers do.
func AppendString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
