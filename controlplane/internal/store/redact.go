package store

import (
	"bytes"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"

	"luthien.dev/canon/jsonx"
)

// Redaction: what is recorded (payloads, call rows, the activity feed)
// passes through RedactJSON or RedactString first. The credentials found
// and their markers are in credentials.go. RedactString is the function
// for any other text (logs, errors).

// IsSecretKey reports whether values under this object key, header or
// variable name are credentials: its name ends with one of secretNames, in
// any case ("X-Api-Key", "db_password", "SecretAccessKey").
func IsSecretKey(key string) bool { return isSecretName(key) }

// namesByLast lists secretNames by their last byte.
var namesByLast [256][]string

func init() {
	for _, n := range secretNames {
		namesByLast[n[len(n)-1]] = append(namesByLast[n[len(n)-1]], n)
	}
}

func isSecretName[T string | []byte](k T) bool {
	if len(k) == 0 {
		return false
	}
	for _, n := range namesByLast[lower(k[len(k)-1])] {
		if len(k) < len(n) {
			continue
		}
		tail, match := k[len(k)-len(n):], true
		for i := range len(n) {
			if lower(tail[i]) != n[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// RedactString replaces the credentials in s: each one found by its form
// becomes [redacted:<kind>], a value found by the name before it
// ("x-api-key: …", "\"password\": \"…\"") becomes [redacted]. Text without
// a hint of one is returned as it is, without copying.
func RedactString(s string) string {
	spans := findCredentials(s, nil)
	if len(spans) == 0 {
		return s
	}
	return string(appendRedacted(make([]byte, 0, len(s)), s, spans))
}

// RedactMap removes credentials from a JSON-like value in place, at any
// depth: under a credential key (IsSecretKey), a value that is not an
// object becomes Redacted (an object is walked: its own keys decide, so a
// tool's schema for a "password" parameter stays), and every string is
// passed through RedactString. Object keys are kept. It returns the value
// (strings cannot be changed in place).
func RedactMap(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if _, isObject := e.(map[string]any); IsSecretKey(k) && !isObject {
				t[k] = Redacted
				continue
			}
			t[k] = RedactMap(e)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = RedactMap(e)
		}
		return t
	case string:
		return RedactString(t)
	default:
		return v
	}
}

// RedactJSON removes credentials from the text of a JSON document as
// RedactMap does from its tree, without decoding it: its strings are
// redacted in place (those with escapes decoded first), the values of
// credential keys replaced, and every other byte kept, so a document
// without credentials comes back as it is, without copying. A document
// without a hint of a credential and without escapes is not even read as
// JSON. Text that is not JSON is redacted as a string.
func RedactJSON(b []byte) []byte {
	if !mayHoldSecret(b) {
		return b
	}
	if !json.Valid(b) {
		return []byte(RedactString(string(b)))
	}
	return redactValidJSON(b)
}

// mayHoldSecret reports whether a JSON document may hold a credential: it
// has a hint of one, or an escape (a document without escapes reads as it
// is written, so its strings and keys have hints only where it has).
func mayHoldSecret(b []byte) bool {
	return bytes.IndexByte(b, '\\') >= 0 || hasHint(b)
}

// redactValidJSON is RedactJSON for a document known to be valid JSON.
func redactValidJSON(b []byte) []byte {
	var out, scratch []byte
	changed, last := false, 0
	for i := 0; ; {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			break
		}
		start := i + q
		end := stringEnd(b, start+1)
		if end < 0 { // not valid JSON after all
			break
		}
		i = end + 1
		if j := skipSpace(b, end+1); j < len(b) && b[j] == ':' { // a key
			i = j + 1
			v := skipSpace(b, j+1)
			if v < len(b) && b[v] != '{' && secretKey(b[start:end+1]) {
				ve := valueEnd(b, v)
				out = append(append(out, b[last:v]...), `"`+Redacted+`"`...)
				changed, last, i = true, ve, ve
			}
			continue
		}
		if r, ok := redactToken(b[start:end+1], &scratch); ok {
			out = append(append(out, b[last:start]...), r...)
			changed, last = true, end+1
		}
	}
	if !changed {
		return b
	}
	return append(out, b[last:]...)
}

// secretKey reports whether a JSON string token (quotes included) is a
// credential key.
func secretKey(tok []byte) bool {
	if bytes.IndexByte(tok, '\\') < 0 {
		return isSecretName(tok[1 : len(tok)-1])
	}
	var k string
	return json.Unmarshal(tok, &k) == nil && isSecretName(k)
}

// redactToken redacts a JSON string token (quotes included) and reports
// whether it changed. A token without escapes is its text; one with
// escapes is decoded (into scratch), redacted and, when it changed,
// encoded again.
func redactToken(tok []byte, scratch *[]byte) ([]byte, bool) {
	content := tok[1 : len(tok)-1]
	if bytes.IndexByte(content, '\\') < 0 {
		spans := findCredentials(content, nil)
		if len(spans) == 0 {
			return nil, false
		}
		out := appendRedacted(append(make([]byte, 0, len(tok)), '"'), content, spans)
		return append(out, '"'), true
	}
	decoded, ok := unescape((*scratch)[:0], content)
	*scratch = decoded
	if !ok {
		return nil, false
	}
	spans := findCredentials(decoded, nil)
	if len(spans) == 0 {
		return nil, false
	}
	return jsonx.String(string(appendRedacted(nil, decoded, spans))), true
}

// unescape appends to dst the text of the content of a JSON string (its
// escapes decoded as encoding/json decodes them: an unpaired surrogate
// becomes U+FFFD) and reports whether the content was well formed.
func unescape(dst, content []byte) ([]byte, bool) {
	for i := 0; i < len(content); {
		k := bytes.IndexByte(content[i:], '\\')
		if k < 0 {
			return append(dst, content[i:]...), true
		}
		dst = append(dst, content[i:i+k]...)
		if i += k; i+1 >= len(content) {
			return dst, false
		}
		c := content[i+1]
		i += 2
		switch c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(content, i)
			if !ok {
				return dst, false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if i+6 <= len(content) && content[i] == '\\' && content[i+1] == 'u' {
					r2, ok = hex4(content, i+2)
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r, i = dec, i+6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, false
		}
	}
	return dst, true
}

// stringEnd returns the index of the quote closing the string whose
// content starts at from, or -1.
func stringEnd(b []byte, from int) int {
	for {
		q := bytes.IndexByte(b[from:], '"')
		if q < 0 {
			return -1
		}
		at := from + q
		n := 0 // backslashes just before the quote
		for k := at - 1; k >= from && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return at
		}
		from = at + 1
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value that starts at i.
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		if end := stringEnd(b, i+1); end >= 0 {
			return end + 1
		}
		return len(b)
	case '[', '{':
		depth := 0
		for k := i; k < len(b); k++ {
			switch b[k] {
			case '"':
				end := stringEnd(b, k+1)
				if end < 0 {
					return len(b)
				}
				k = end
			case '[', '{':
				depth++
			case ']', '}':
				if depth--; depth == 0 {
					return k + 1
				}
			}
		}
		return len(b)
	default:
		k := i
		for k < len(b) && !isValueEnd(b[k]) {
			k++
		}
		return k
	}
}

// isValueEnd reports whether c ends a number or literal.
func isValueEnd(c byte) bool {
	switch c {
	case ',', ']', '}', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}
