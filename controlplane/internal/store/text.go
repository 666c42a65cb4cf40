package store

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"luthien.dev/canon/truncate"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// ConversationText extracts what search runs over from a request body (in
// either client format, as JSON text) and the final response: the system
// prompt, every message's text, tool inputs and results, and the
// response's text and tool calls. It also returns the preview: the start
// of the first user message. The result is redacted and bounded.
func ConversationText(request []byte, response *cpv1.Message) (text, preview string) {
	var b strings.Builder
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s == "" || b.Len() >= maxTextBytes {
			return
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s)
	}
	// Fields of an unexpected type are skipped, the rest is read.
	var req textRequest
	_ = json.Unmarshal(request, &req)
	if req.Truncated != nil {
		add(truncateUTF8(req.Head, maxTextBytes)) // the start the gateway kept of a large request
	}
	collectText(req.System, add)
	for _, m := range req.Messages {
		if preview == "" && m.Role == "user" {
			collectText(m.Content, func(s string) {
				if preview == "" {
					preview = strings.TrimSpace(s)
				}
			})
		}
		collectText(m.Content, add)
		for _, tc := range m.ToolCalls {
			add(tc.Function.Name + " " + tc.Function.Arguments)
		}
	}
	for _, block := range response.GetContent() {
		switch b := block.GetBlock().(type) {
		case *cpv1.ContentBlock_Text:
			add(b.Text.GetText())
		case *cpv1.ContentBlock_ToolUse:
			add(b.ToolUse.GetName() + " " + string(b.ToolUse.GetInputJson()))
		}
	}
	return truncateUTF8(RedactString(b.String()), maxTextBytes), truncateRunes(RedactString(preview), previewRunes)
}

// TruncatedField marks a body the gateway recorded truncated:
// {"_luthien_truncated":{"original_bytes":N,"kept_bytes":K},"head":"<the
// first K bytes, as text>"} (docs/PERSISTENCE.md, package truncate).
const TruncatedField = truncate.Field

// textRequest is what ConversationText reads of a request, in either
// client format, or of the truncation marker standing for one.
type textRequest struct {
	Truncated json.RawMessage `json:"_luthien_truncated"`
	Head      string          `json:"head"`
	System    json.RawMessage `json:"system"`
	Messages  []struct {
		Role      string          `json:"role"`
		Content   json.RawMessage `json:"content"`
		ToolCalls []struct {
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
}

// textPart is a part of a list content: text, a tool call's input, or a
// tool result's content.
type textPart struct {
	Text    *string         `json:"text"`
	Name    string          `json:"name"`
	Input   json.RawMessage `json:"input"`
	Content json.RawMessage `json:"content"`
}

// collectText calls add with every text of a message content value: a
// string, or a list of parts with "text" (text parts), "input" (tool
// calls) or "content" (tool results, recursively).
func collectText(v json.RawMessage, add func(string)) {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return
	}
	switch v[0] {
	case '"':
		var s string
		if json.Unmarshal(v, &s) == nil {
			add(s)
		}
	case '[':
		var parts []json.RawMessage
		if json.Unmarshal(v, &parts) != nil {
			return
		}
		for _, raw := range parts {
			var p textPart
			if json.Unmarshal(raw, &p) != nil {
				continue
			}
			if p.Text != nil {
				add(*p.Text)
			}
			if len(p.Input) > 0 {
				var in bytes.Buffer
				if json.Compact(&in, p.Input) == nil {
					add(p.Name + " " + in.String())
				}
			}
			if len(p.Content) > 0 {
				collectText(p.Content, add)
			}
		}
	}
}

// truncateUTF8 cuts s to at most n bytes on a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// truncateRunes cuts s to at most n runes.
func truncateRunes(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// snippet returns the text around the first case-insensitive occurrence
// of one of terms, with the occurrence marked by ** on both sides.
func snippet(text string, terms []string) string {
	lower := strings.ToLower(text)
	at, term := -1, ""
	for _, t := range terms {
		if i := strings.Index(lower, strings.ToLower(t)); i >= 0 && (at < 0 || i < at) {
			at, term = i, t
		}
	}
	if at < 0 || len(lower) != len(text) {
		return truncateRunes(text, 2*snippetContext)
	}
	start, end := max(0, at-snippetContext), min(len(text), at+len(term)+snippetContext)
	for start > 0 && !utf8.RuneStart(text[start]) {
		start--
	}
	for end < len(text) && !utf8.RuneStart(text[end]) {
		end++
	}
	out := text[start:at] + "**" + text[at:at+len(term)] + "**" + text[at+len(term):end]
	if start > 0 {
		out = "…" + out
	}
	if end < len(text) {
		out += "…"
	}
	return out
}

// snippetContext is how many bytes of context a snippet shows on each
// side of the match.
const snippetContext = 80
