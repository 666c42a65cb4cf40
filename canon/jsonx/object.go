// Package jsonx writes JSON the way the LLM providers do and edits JSON
// objects without disturbing them: Object keeps an object's members in
// their order and their values as raw bytes, so that a body changed in one
// member keeps every other byte where it was; Marshal and MarshalIndent
// leave "<", ">" and "&" as they are, where encoding/json escapes them
// for HTML.
package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"slices"
)

// Object is a JSON object whose members keep their order and their values
// (as raw JSON, never re-encoded) through Decode and Encode. A member set
// anew goes last; a member replaced keeps its place. The zero value is an
// empty object, ready to use.
type Object struct {
	keys []string
	vals map[string]json.RawMessage
}

// Decode replaces o with the object data holds: exactly one JSON object,
// with nothing but white space around it. Of duplicate keys the last
// value is kept, in the first key's place.
func (o *Object) Decode(data []byte) error {
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
		o.Set(k, v)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}
	return nil
}

// Get returns the value of member k.
func (o *Object) Get(k string) (json.RawMessage, bool) {
	v, ok := o.vals[k]
	return v, ok
}

// Set replaces the value of member k in its place, or appends the member.
// v must be one valid JSON value; it is written as it is.
func (o *Object) Set(k string, v json.RawMessage) {
	if o.vals == nil {
		o.vals = map[string]json.RawMessage{}
	}
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

// Del removes member k; the others keep their order.
func (o *Object) Del(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	o.keys = slices.DeleteFunc(o.keys, func(key string) bool { return key == k })
}

// Len returns the number of members.
func (o *Object) Len() int { return len(o.keys) }

// All yields the members in order.
func (o *Object) All() iter.Seq2[string, json.RawMessage] {
	return func(yield func(string, json.RawMessage) bool) {
		for _, k := range o.keys {
			if !yield(k, o.vals[k]) {
				return
			}
		}
	}
}

// Encode returns the object as compact JSON: the members in order, each
// value as it was decoded or set.
func (o *Object) Encode() []byte {
	n := 2
	for _, k := range o.keys {
		n += len(k) + len(o.vals[k]) + 4
	}
	buf := make([]byte, 0, n)
	buf = append(buf, '{')
	for i, k := range o.keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendKey(buf, k)
		buf = append(buf, ':')
		buf = append(buf, o.vals[k]...)
	}
	return append(buf, '}')
}

// appendKey appends k as a JSON string, as Marshal writes it.
func appendKey(buf []byte, k string) []byte {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return append(buf, String(k)...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, k...)
	return append(buf, '"')
}

// IsObject reports whether v is a JSON object (judged by its first byte
// that is not white space).
func IsObject(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && v[0] == '{'
}
