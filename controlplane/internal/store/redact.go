package store

import (
	"regexp"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
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

// RedactStruct removes credentials from s in place, at any depth: the
// values of credential keys become Redacted and API keys inside strings
// are replaced.
func RedactStruct(s *structpb.Struct) {
	if s == nil {
		return
	}
	for k, v := range s.Fields {
		if IsSecretKey(k) {
			s.Fields[k] = structpb.NewStringValue(Redacted)
			continue
		}
		redactValue(v)
	}
}

func redactValue(v *structpb.Value) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		k.StringValue = RedactString(k.StringValue)
	case *structpb.Value_StructValue:
		RedactStruct(k.StructValue)
	case *structpb.Value_ListValue:
		for _, e := range k.ListValue.GetValues() {
			redactValue(e)
		}
	}
}

// RedactMap removes credentials from a JSON-like value in place, like
// RedactStruct, and returns it (strings cannot be changed in place).
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
