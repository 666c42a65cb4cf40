package store

import (
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// ConversationText extracts what search runs over from a request body (in
// either client format, as an event payload) and the final response: the
// system prompt, every message's text, tool inputs and results, and the
// response's text and tool calls. It also returns the preview: the start
// of the first user message. The result is redacted and bounded.
func ConversationText(request *structpb.Struct, response *cpv1.Message) (text, preview string) {
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
	fields := request.GetFields()
	collectText(fields["system"], add)
	for _, m := range fields["messages"].GetListValue().GetValues() {
		msg := m.GetStructValue().GetFields()
		if preview == "" && msg["role"].GetStringValue() == "user" {
			collectText(msg["content"], func(s string) {
				if preview == "" {
					preview = strings.TrimSpace(s)
				}
			})
		}
		collectText(msg["content"], add)
		for _, tc := range msg["tool_calls"].GetListValue().GetValues() {
			fn := tc.GetStructValue().GetFields()["function"].GetStructValue().GetFields()
			add(fn["name"].GetStringValue() + " " + fn["arguments"].GetStringValue())
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

// collectText calls add with every text of a message content value: a
// string, or a list of parts with "text" (text parts), "input" (tool
// calls) or "content" (tool results, recursively).
func collectText(v *structpb.Value, add func(string)) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		add(k.StringValue)
	case *structpb.Value_ListValue:
		for _, part := range k.ListValue.GetValues() {
			p := part.GetStructValue().GetFields()
			if t, ok := p["text"]; ok {
				add(t.GetStringValue())
			}
			if in, ok := p["input"]; ok {
				if j, err := in.MarshalJSON(); err == nil {
					add(p["name"].GetStringValue() + " " + string(j))
				}
			}
			if c, ok := p["content"]; ok {
				collectText(c, add)
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
