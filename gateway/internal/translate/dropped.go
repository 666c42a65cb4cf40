package translate

import (
	"bytes"
	"encoding/json"
	"fmt"

	"luthien.dev/canon/jsonx"
)

// DefaultMaxTokens is the max_tokens sent to Anthropic when an OpenAI
// request gives neither max_tokens nor max_completion_tokens (Anthropic
// requires it).
const DefaultMaxTokens = 4096

// Dropped is a field of the source that the target format cannot carry,
// or a default the translation had to apply. Field is a path in the
// source document (e.g. "messages[2].content[0].image_url.detail").
type Dropped struct {
	Field  string
	Reason string
}

// String renders d for logs.
func (d Dropped) String() string { return d.Field + ": " + d.Reason }

// report collects Dropped entries.
type report []Dropped

func (r *report) add(field, reason string) { *r = append(*r, Dropped{Field: field, Reason: reason}) }

func (r *report) addf(field, format string, args ...any) {
	r.add(field, fmt.Sprintf(format, args...))
}

// isNull reports whether raw is absent or the JSON null.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// objectKeys returns the keys of a JSON object with non-null values, in
// document order.
func objectKeys(raw []byte) ([]string, error) {
	var o jsonx.Object
	if err := o.Decode(raw); err != nil {
		return nil, err
	}
	var keys []string
	for k, v := range o.All() {
		if !isNull(v) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// reportUnknown adds an entry for every non-null key of raw not in known.
func (r *report) reportUnknown(prefix string, raw []byte, known map[string]bool, reason string) {
	keys, err := objectKeys(raw)
	if err != nil {
		return
	}
	for _, k := range keys {
		if !known[k] {
			r.add(prefix+k, reason)
		}
	}
}

// marshal is jsonx.Marshal for values that always encode.
func marshal(v any) json.RawMessage {
	b, err := jsonx.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("translate: marshal %T: %v", v, err)) // only called on plain structs
	}
	return b
}

// compact returns raw without insignificant white space, or raw when it
// is not valid JSON.
func compact(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}
