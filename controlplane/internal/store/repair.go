package store

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"luthien.dev/canon/jsonx"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Text PostgreSQL cannot store would cost a call its record: PostgreSQL
// rejects invalid UTF-8 in text and json, NUL in text (a "\u0000" escape
// in json reaches text through the conversation text), and readers
// (protojson, gRPC) reject invalid UTF-8 and unpaired surrogate escapes.
// So before anything is written the store repairs such text, with one
// rule: every byte that is not part of valid UTF-8, every NUL (a byte or a
// \u0000 escape) and every unpaired surrogate escape (\ud800) becomes
// U+FFFD, the replacement character (written \ufffd where it replaces an
// escape). An event whose payload was repaired says so in its payload:
// RepairedField, whose value names what was repaired.

// RepairedField is the payload field that marks a repaired payload. Its
// value is RepairedUTF8, RepairedNUL or both, joined by ", ".
const RepairedField = "_luthien_repaired"

// What a repair replaced.
const (
	RepairedUTF8 = "invalid utf-8" // bytes that are not UTF-8, unpaired surrogate escapes
	RepairedNUL  = "nul"           // NUL bytes, \u0000 escapes
)

// replacement is U+FFFD in UTF-8.
const replacement = "\uFFFD"

// repairs names what a repair replaced: "" when nothing.
func repairs(invalid, nul bool) string {
	switch {
	case invalid && nul:
		return RepairedUTF8 + ", " + RepairedNUL
	case invalid:
		return RepairedUTF8
	case nul:
		return RepairedNUL
	}
	return ""
}

// repairString returns s with invalid UTF-8 and NUL replaced by U+FFFD, and
// whether it changed.
func repairString(s string) (string, bool) {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s, false
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0 || r == utf8.RuneError && size == 1 {
			b.WriteString(replacement)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String(), true
}

// repairJSON returns the text of a JSON document (or of anything) with
// invalid UTF-8, NUL bytes, \u0000 escapes and unpaired surrogate escapes
// replaced by U+FFFD, and what it repaired ("" when nothing, and then b
// itself).
func repairJSON(b []byte) ([]byte, string) {
	if utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 && !hasBadEscape(b) {
		return b, ""
	}
	out := make([]byte, 0, len(b)+16)
	invalid, nul := false, false
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == 0:
			out, nul = append(out, replacement...), true
			i++
		case c == '\\' && i+1 < len(b):
			n := escapeLen(b, i)
			switch r := escapedRune(b, i); {
			case r == 0:
				out, nul = append(out, `\ufffd`...), true
			case r < 0:
				out, invalid = append(out, `\ufffd`...), true
			default:
				out = append(out, b[i:i+n]...)
			}
			i += n
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				out, invalid = append(out, replacement...), true
			} else {
				out = append(out, b[i:i+size]...)
			}
			i += size
		}
	}
	return out, repairs(invalid, nul)
}

// hasBadEscape reports whether b has a \u0000 escape or an unpaired
// surrogate escape.
func hasBadEscape(b []byte) bool {
	for i := 0; ; {
		k := bytes.Index(b[i:], []byte(`\u`))
		if k < 0 {
			return false
		}
		at := i + k
		n := 0 // backslashes ending at at: an odd number escapes the u
		for j := at; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 1 {
			if r := escapedRune(b, at); r <= 0 {
				return true
			}
			i = at + escapeLen(b, at)
			continue
		}
		i = at + 2
	}
}

// escapeLen is the length of the escape at b[i] (a backslash): a \u
// escape with its 4 hex digits, 12 bytes for a surrogate pair, else 2.
func escapeLen(b []byte, i int) int {
	if b[i+1] != 'u' {
		return 2
	}
	r, ok := hex4(b, i+2)
	if !ok {
		return 2
	}
	if 0xd800 <= r && r < 0xdc00 && i+12 <= len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
		if low, ok := hex4(b, i+8); ok && 0xdc00 <= low && low < 0xe000 {
			return 12
		}
	}
	return 6
}

// escapedRune returns, for the escape at b[i] (a backslash), 0 for
// \u0000, -1 for an unpaired surrogate and 1 for anything else.
func escapedRune(b []byte, i int) int {
	if b[i+1] != 'u' {
		return 1
	}
	r, ok := hex4(b, i+2)
	switch {
	case !ok:
		return 1
	case r == 0:
		return 0
	case 0xdc00 <= r && r < 0xe000, 0xd800 <= r && r < 0xdc00 && escapeLen(b, i) != 12:
		return -1
	}
	return 1
}

// hex4 decodes the 4 hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// markRepaired adds RepairedField with the value what to the JSON object
// b (b is returned as it is when it is not an object).
func markRepaired(b []byte, what string) []byte {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return b
	}
	// Without escapes (which could spell the field's name) and without the
	// name, the field is written in front of the others.
	if !bytes.Contains(b, []byte(`\u`)) && !bytes.Contains(b, []byte("luthien_repaired")) {
		field := `"` + RepairedField + `":"` + what + `"`
		out := make([]byte, 0, len(b)+len(field)+1)
		out = append(append(out, b[:i+1]...), field...)
		if j := skipSpace(b, i+1); j < len(b) && b[j] != '}' {
			out = append(out, ',')
		}
		return append(out, b[i+1:]...)
	}
	// The field may be there already: the object is decoded, given the
	// field and encoded.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return b
	}
	m[RepairedField] = what
	out, err := jsonx.Marshal(m)
	if err != nil {
		return b
	}
	return out
}

// repairedEvent returns ev, or a repaired copy when its payload or its
// strings hold text the store cannot keep (the payload then marked).
// Queued events are shared, so they are never changed in place.
func repairedEvent(ev *cpv1.CallEvent) *cpv1.CallEvent {
	original := PayloadJSON(ev)
	payload, what := repairJSON(original)
	callID, badID := repairString(ev.GetCallId())
	session, badSession := repairString(ev.GetSessionId())
	typ, badType := repairString(ev.GetEventType())
	if what == "" && !badID && !badSession && !badType {
		return ev
	}
	out := &cpv1.CallEvent{CallId: callID, SessionId: session, EventType: typ, Time: ev.GetTime(), PayloadJson: original}
	if what != "" {
		out.PayloadJson = markRepaired(payload, what)
	}
	return out
}

// repairedCall returns c, or a repaired copy when its strings hold text
// the store cannot keep.
func repairedCall(c *Call) *Call {
	s := c.Summary
	if s == nil {
		s = &cpv1.CallSummary{}
	}
	fields := []*string{&s.CallId, &s.SessionId, &s.UserId, &s.Model, &s.Upstream, &s.PolicyRevision, &s.Error}
	var fixed []string
	for i, f := range fields {
		if r, bad := repairString(*f); bad {
			if fixed == nil {
				fixed = make([]string, len(fields))
			}
			fixed[i] = r
		}
	}
	preview, badPreview := repairString(c.Preview)
	text, badText := repairString(c.Text)
	if fixed == nil && !badPreview && !badText {
		return c
	}
	out := *c
	out.Preview, out.Text = preview, text
	if fixed != nil {
		sum := proto.CloneOf(s)
		copied := []*string{&sum.CallId, &sum.SessionId, &sum.UserId, &sum.Model, &sum.Upstream, &sum.PolicyRevision, &sum.Error}
		for i, r := range fixed {
			if r != "" {
				*copied[i] = r
			}
		}
		out.Summary = sum
	}
	return &out
}
