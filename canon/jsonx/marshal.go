package jsonx

import (
	"bytes"
	"encoding/json"
)

// Marshal is json.Marshal without HTML escaping, as the providers write
// JSON: "<", ">" and "&" stay as they are. Everything else is
// json.Marshal's: map keys sorted, invalid UTF-8 replaced, U+2028 and
// U+2029 escaped.
func Marshal(v any) ([]byte, error) {
	return encode(v, "", "")
}

// MarshalIndent is Marshal with json.MarshalIndent's layout: each element
// on a new line starting with prefix, indented by indent per level.
func MarshalIndent(v any, prefix, indent string) ([]byte, error) {
	return encode(v, prefix, indent)
}

// encode writes v with an encoder that does not escape HTML, without the
// newline the encoder ends its output with.
func encode(v any, prefix, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if prefix != "" || indent != "" {
		enc.SetIndent(prefix, indent)
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// String returns s as a JSON string, written as Marshal writes it.
func String(s string) []byte {
	b, _ := Marshal(s) // a string always encodes
	return b
}
