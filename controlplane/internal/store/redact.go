package store

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
)

// Redacted replaces every credential removed from a record.
const Redacted = "[redacted]"

// secretKeys are object keys whose values are credentials, lower-cased.
var secretKeys = map[string]bool{
	"authorization":       true,
	"proxy-authorization": true,
	"x-api-key":           true,
	"api-key":             true,
	"api_key":             true,
	"apikey":              true,
	"x-goog-api-key":      true,
	"cookie":              true,
	"set-cookie":          true,
}

// secretPattern matches API keys in free text: "sk-..." keys (OpenAI,
// Anthropic's "sk-ant-...") and bearer tokens.
var secretPattern = regexp.MustCompile(`sk-[A-Za-z0-9_\-]{8,}|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{8,}=*`)

// secretKeyNames is the alternation of credential keys in the patterns
// below.
const secretKeyNames = `authorization|proxy-authorization|x-api-key|x-goog-api-key|api[-_]?key|cookie|set-cookie`

// Credential values inside text: JSON embedded in a string (plain or
// escaped once) and header or query-string spellings ("x-api-key: v",
// "api_key=v").
var (
	jsonSecretPattern    = regexp.MustCompile(`(?i)"(` + secretKeyNames + `)"(\s*:\s*)"(?:[^"\\]|\\.)*"`)
	escapedSecretPattern = regexp.MustCompile(`(?i)\\"(` + secretKeyNames + `)\\"(\s*:\s*)\\"(?:[^"\\]|\\[^"])*\\"`)
	headerSecretPattern  = regexp.MustCompile(`(?i)\b(x-api-key|x-goog-api-key|api[-_]?key|cookie|set-cookie)(\s*[:=]\s*)[^\s"',;&]{4,}`)
)

// IsSecretKey reports whether values under this object key are credentials.
func IsSecretKey(key string) bool {
	return secretKeys[strings.ToLower(key)]
}

// RedactString replaces API keys, bearer tokens and credential values
// (in embedded JSON or header spellings) in s.
func RedactString(s string) string {
	lower := strings.ToLower(s)
	if !strings.Contains(lower, "sk-") && !strings.Contains(lower, "bearer") && !strings.Contains(lower, "key") &&
		!strings.Contains(lower, "cookie") && !strings.Contains(lower, "authorization") {
		return s
	}
	s = jsonSecretPattern.ReplaceAllString(s, `"$1"$2"`+Redacted+`"`)
	s = escapedSecretPattern.ReplaceAllString(s, `\"$1\"$2\"`+Redacted+`\"`)
	s = headerSecretPattern.ReplaceAllString(s, `$1$2`+Redacted)
	return secretPattern.ReplaceAllString(s, Redacted)
}

// RedactMap removes credentials from a JSON-like value in place, at any
// depth: the values of credential keys become Redacted and API keys inside
// strings are replaced. It returns the value (strings cannot be changed in
// place).
func RedactMap(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if IsSecretKey(k) {
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

// secretHints are what every credential RedactString or a secret key
// catches contains, lower-cased, and the escape that could spell a key in
// JSON without them.
var secretHints = []string{"sk-", "bearer", "key", "cookie", "authorization", `\u`}

// RedactJSON removes credentials from the text of a JSON document as
// RedactMap does from its tree. Text without a hint of one (secretHints, in
// any case) is returned as it is, which is most bodies; the rest is
// decoded (numbers kept as written), redacted and encoded again. Text that
// is not JSON is redacted as a string.
func RedactJSON(b []byte) []byte {
	if !mayHoldSecret(b) {
		return b
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []byte(RedactString(string(b)))
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(RedactMap(v)); err != nil {
		return []byte(RedactString(string(b)))
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n"))
}

// mayHoldSecret reports whether b contains one of secretHints, ignoring
// ASCII case, in one pass over b.
func mayHoldSecret(b []byte) bool {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch c {
		case 's', 'b', 'k', 'c', 'a', '\\':
		default:
			continue
		}
		for _, h := range secretHints {
			if h[0] == c && len(b)-i >= len(h) && bytes.EqualFold(b[i:i+len(h)], []byte(h)) {
				return true
			}
		}
	}
	return false
}
