package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"luthien.dev/canon/jsonx"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// txMessage is one conversation message in a form common to both client
// formats: a role and its parts in order.
type txMessage struct {
	// Role is "system", "user", "assistant" or "tool" (OpenAI's tool
	// results; Anthropic's arrive as parts of a user message).
	Role  string
	Parts []txBlock
}

// Kinds of message parts.
const (
	blockText       = "text"
	blockThinking   = "thinking"
	blockToolUse    = "tool_use"
	blockToolResult = "tool_result"
	// blockOther is any other block (image, document, server tool...): only
	// its type is shown.
	blockOther = "other"
)

// txBlock is a piece of a message.
type txBlock struct {
	Kind string
	// Text is the text of a text, thinking or tool_result part, or the
	// block type of an other part.
	Text string
	// ToolID is the tool call id of a tool_use or tool_result part.
	ToolID string
	// ToolName and ToolArgs (JSON text) describe a tool_use part.
	ToolName, ToolArgs string
	// IsError marks a tool_result reporting a failure.
	IsError bool
}

// txRequest is what a request body says: the system prompt and the
// messages, plus whether it is a preflight probe.
type txRequest struct {
	System    string
	Messages  []txMessage
	Preflight bool
}

// txAnswer is what a response body says: the assistant message and why it
// stopped.
type txAnswer struct {
	Message    txMessage
	StopReason string
}

// txIsOpenAI tells a call's format, guessing from the bodies when the call
// does not say.
func txIsOpenAI(format cpv1.ClientFormat, request, response map[string]any) bool {
	switch format {
	case cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT:
		return true
	case cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES:
		return false
	}
	if _, ok := response["choices"]; ok {
		return true
	}
	if _, ok := request["system"]; ok {
		return false
	}
	for _, m := range txList(request["messages"]) {
		if r, _ := txObj(m)["role"].(string); r == "system" || r == "tool" || r == "developer" {
			return true
		}
	}
	return false
}

// txParseRequest reads a request body of either format.
func txParseRequest(openai bool, body map[string]any) txRequest {
	var c txRequest
	if body == nil {
		return c
	}
	c.Preflight = txIsPreflight(body)
	if openai {
		c.Messages = txOpenAIMessages(body)
		return c
	}
	c.System = txJoinTexts(txAnthropicBlocks(body["system"]))
	for _, m := range txList(body["messages"]) {
		mo := txObj(m)
		role, _ := mo["role"].(string)
		c.Messages = append(c.Messages, txMessage{Role: role, Parts: txAnthropicBlocks(mo["content"])})
	}
	return c
}

// txParseResponse reads a response body of either format; nil without one.
func txParseResponse(openai bool, body map[string]any) *txAnswer {
	if body == nil {
		return nil
	}
	if openai {
		return txOpenAIAnswer(body)
	}
	stop, _ := body["stop_reason"].(string)
	return &txAnswer{Message: txMessage{Role: "assistant", Parts: txAnthropicBlocks(body["content"])}, StopReason: stop}
}

// txIsPreflight tells Claude Code's probes: requests for a single token.
func txIsPreflight(body map[string]any) bool {
	for _, k := range []string{"max_tokens", "max_completion_tokens"} {
		if n, ok := body[k].(float64); ok && n == 1 {
			return true
		}
	}
	return false
}

// txJoinTexts joins the text parts of parts.
func txJoinTexts(parts []txBlock) string {
	var texts []string
	for _, p := range parts {
		if p.Kind == blockText && p.Text != "" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, "\n\n")
}

// fingerprint identifies a message for comparing histories across turns:
// its role and parts, without what a client moves or drops between turns
// (cache markers, thinking blocks, the form a text takes).
func (m txMessage) fingerprint() string {
	var b strings.Builder
	b.WriteString(m.Role)
	for _, p := range m.Parts {
		if p.Kind == blockThinking {
			continue
		}
		fmt.Fprintf(&b, "\x00%s\x01%s\x01%s\x01%s\x01%s\x01%t", p.Kind, p.Text, p.ToolID, p.ToolName, txCompactJSON(p.ToolArgs), p.IsError)
	}
	return b.String()
}

// txList and obj read JSON values of an expected type, nil otherwise.
func txList(v any) []any {
	l, _ := v.([]any)
	return l
}

func txObj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// txStr reads a string field.
func txStr(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// txJSON renders a value as indented JSON text (shown as text, so
// markup characters are left as they are).
func txJSON(v any) string {
	if v == nil {
		return ""
	}
	b, err := jsonx.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// txIndentJSON indents JSON text, keeping its key order; other text is
// returned as it is.
func txIndentJSON(s string) string {
	var buf bytes.Buffer
	if s == "" || json.Indent(&buf, []byte(s), "", "  ") != nil {
		return s
	}
	return buf.String()
}

// txCompactJSON compacts JSON text so that formatting does not count as a
// difference; other text is returned as it is.
func txCompactJSON(s string) string {
	var buf bytes.Buffer
	if s == "" || json.Compact(&buf, []byte(s)) != nil {
		return s
	}
	return buf.String()
}

// txSortedKeys returns m's keys in order.
func txSortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
