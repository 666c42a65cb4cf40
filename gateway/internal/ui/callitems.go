package ui

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"luthien.dev/canon/jsonx"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// callItem is one piece of a recorded body in a form common to both
// client formats: the call page compares the original and the final body
// item by item. A request gives its system prompt and its messages' parts;
// a response gives its text, thinking and tool calls and why it stopped.
type callItem struct {
	// Role is system, developer, user, assistant or tool; empty for a
	// response's stop reason and for an error body.
	Role string
	// Kind is text, thinking, tool_call, tool_result, image, stop, error
	// or other (a block of another type).
	Kind string
	// Label qualifies the item: a tool result's tool call id, a stop
	// reason's field, an image's media type, an other block's type, a
	// refusal.
	Label string
	// Text is what the item says (a stop item: the reason).
	Text string
	// Tool is a tool_call's name and arguments.
	Tool *callTool
	// IsError marks a tool result reporting a failure.
	IsError bool
}

// callTool is a tool call: its arguments by key when they are a JSON
// object, else as their raw text.
type callTool struct {
	ID, Name string
	Object   bool
	Args     []callArg // in key order, when Object
	Raw      string    // when not Object
}

// callArg is one argument of a tool call; Value is a string argument's
// text, or any other value as compact JSON.
type callArg struct {
	Key, Value string
}

// key identifies an item's content, for aligning two bodies.
func (it callItem) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00%s\x00%s\x00%s\x00%t", it.Role, it.Kind, it.Label, it.Text, it.IsError)
	if t := it.Tool; t != nil {
		fmt.Fprintf(&b, "\x00%s\x00%s\x00%t\x00%s", t.ID, t.Name, t.Object, t.Raw)
		for _, a := range t.Args {
			fmt.Fprintf(&b, "\x00%s\x01%s", a.Key, a.Value)
		}
	}
	return b.String()
}

// callIsOpenAI tells a call's client format, guessing from its bodies
// when the summary does not say.
func callIsOpenAI(format cpv1.ClientFormat, request, response map[string]any) bool {
	switch format {
	case cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT:
		return true
	case cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES:
		return false
	}
	if _, ok := response["choices"]; ok {
		return true
	}
	for _, m := range jsonList(request["messages"]) {
		if r := jsonStr(jsonObj(m), "role"); r == "system" || r == "tool" || r == "developer" {
			return true
		}
	}
	return false
}

// requestCallItems reads the conversation of a request body.
func requestCallItems(openai bool, body map[string]any) []callItem {
	var out []callItem
	if !openai {
		out = anthropicItems("system", body["system"])
	}
	for _, m := range jsonList(body["messages"]) {
		mo := jsonObj(m)
		role := jsonStr(mo, "role")
		if openai {
			out = append(out, openaiMessageItems(role, mo)...)
		} else {
			out = append(out, anthropicItems(role, mo["content"])...)
		}
	}
	return out
}

// responseCallItems reads the answer of a response body, or its error.
func responseCallItems(openai bool, body map[string]any) []callItem {
	if e := jsonObj(body["error"]); e != nil {
		return []callItem{{Kind: "error", Label: jsonStr(e, "type"), Text: jsonStr(e, "message")}}
	}
	if !openai {
		out := anthropicItems("assistant", body["content"])
		if s := jsonStr(body, "stop_reason"); s != "" {
			out = append(out, callItem{Kind: "stop", Label: "stop_reason", Text: s})
		}
		if s := jsonStr(body, "stop_sequence"); s != "" {
			out = append(out, callItem{Kind: "stop", Label: "stop_sequence", Text: s})
		}
		return out
	}
	var out []callItem
	choices := jsonList(body["choices"])
	for i, c := range choices {
		co := jsonObj(c)
		msg := jsonObj(co["message"])
		role := jsonStr(msg, "role")
		if role == "" {
			role = "assistant"
		}
		if len(choices) > 1 {
			role += " (choice " + strconv.Itoa(i+1) + ")"
		}
		out = append(out, openaiMessageItems(role, msg)...)
		if s := jsonStr(co, "finish_reason"); s != "" {
			out = append(out, callItem{Kind: "stop", Label: "finish_reason", Text: s})
		}
	}
	return out
}

// openaiMessageItems reads one Chat Completions message: its content,
// refusal, tool calls, or, from the tool role, a tool result.
func openaiMessageItems(role string, m map[string]any) []callItem {
	var out []callItem
	if role == "tool" {
		return []callItem{{Role: role, Kind: "tool_result", Label: jsonStr(m, "tool_call_id"), Text: openaiContentText(m["content"])}}
	}
	switch c := m["content"].(type) {
	case string:
		out = append(out, callItem{Role: role, Kind: "text", Text: c})
	case []any:
		for _, p := range c {
			out = append(out, openaiPartItem(role, jsonObj(p)))
		}
	}
	if s := jsonStr(m, "refusal"); s != "" {
		out = append(out, callItem{Role: role, Kind: "text", Label: "refusal", Text: s})
	}
	for _, tc := range jsonList(m["tool_calls"]) {
		tco := jsonObj(tc)
		fn := jsonObj(tco["function"])
		out = append(out, callItem{Role: role, Kind: "tool_call",
			Tool: newCallTool(jsonStr(tco, "id"), jsonStr(fn, "name"), parseToolArgs(fn["arguments"]))})
	}
	if fn := jsonObj(m["function_call"]); fn != nil {
		out = append(out, callItem{Role: role, Kind: "tool_call", Tool: newCallTool("", jsonStr(fn, "name"), parseToolArgs(fn["arguments"]))})
	}
	return out
}

// openaiPartItem reads one part of a Chat Completions content array.
func openaiPartItem(role string, p map[string]any) callItem {
	switch typ := jsonStr(p, "type"); typ {
	case "text":
		return callItem{Role: role, Kind: "text", Text: jsonStr(p, "text")}
	case "refusal":
		return callItem{Role: role, Kind: "text", Label: "refusal", Text: jsonStr(p, "refusal")}
	case "image_url":
		return callItem{Role: role, Kind: "image", Text: imageText(jsonStr(jsonObj(p["image_url"]), "url"))}
	default:
		return callItem{Role: role, Kind: "other", Label: typ, Text: clipText(compactJSONValue(p), 300)}
	}
}

// openaiContentText is the text of a content that is a string or an array of
// text parts.
func openaiContentText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var texts []string
	for _, p := range jsonList(v) {
		if s := jsonStr(jsonObj(p), "text"); s != "" {
			texts = append(texts, s)
		}
	}
	return strings.Join(texts, "\n")
}

// anthropicItems reads a Messages content (or system prompt): a string or
// an array of blocks.
func anthropicItems(role string, content any) []callItem {
	if s, ok := content.(string); ok {
		if s == "" && role == "system" {
			return nil
		}
		return []callItem{{Role: role, Kind: "text", Text: s}}
	}
	var out []callItem
	for _, b := range jsonList(content) {
		out = append(out, anthropicBlockItem(role, jsonObj(b)))
	}
	return out
}

// anthropicBlockItem reads one content block.
func anthropicBlockItem(role string, b map[string]any) callItem {
	switch typ := jsonStr(b, "type"); typ {
	case "text":
		return callItem{Role: role, Kind: "text", Text: jsonStr(b, "text")}
	case "thinking":
		return callItem{Role: role, Kind: "thinking", Text: jsonStr(b, "thinking")}
	case "tool_use", "server_tool_use":
		return callItem{Role: role, Kind: "tool_call", Tool: newCallTool(jsonStr(b, "id"), jsonStr(b, "name"), b["input"])}
	case "tool_result":
		isErr, _ := b["is_error"].(bool)
		return callItem{Role: role, Kind: "tool_result", Label: jsonStr(b, "tool_use_id"), Text: anthropicResultText(b["content"]), IsError: isErr}
	case "image":
		src := jsonObj(b["source"])
		if u := jsonStr(src, "url"); u != "" {
			return callItem{Role: role, Kind: "image", Text: imageText(u)}
		}
		data := jsonStr(src, "data")
		return callItem{Role: role, Kind: "image", Label: jsonStr(src, "media_type"), Text: fmt.Sprintf("%d characters of base64", len(data))}
	default:
		return callItem{Role: role, Kind: "other", Label: typ, Text: clipText(compactJSONValue(b), 300)}
	}
}

// anthropicResultText is a tool result's content as text: a string, or
// its text blocks (other blocks named by their type).
func anthropicResultText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var texts []string
	for _, b := range jsonList(v) {
		bo := jsonObj(b)
		if typ := jsonStr(bo, "type"); typ == "text" {
			texts = append(texts, jsonStr(bo, "text"))
		} else {
			texts = append(texts, "["+typ+"]")
		}
	}
	return strings.Join(texts, "\n")
}

// imageText shows an image's URL, a data: URL as its media type and size.
func imageText(u string) string {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		media, data, _ := strings.Cut(rest, ",")
		return fmt.Sprintf("data: %s, %d characters", media, len(data))
	}
	return clipText(u, 300)
}

// parseToolArgs parses OpenAI's arguments (JSON text) into a value; text
// that is not JSON stays a string.
func parseToolArgs(v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	var parsed any
	if err := json.Unmarshal([]byte(s), &parsed); err != nil {
		return s
	}
	if _, isObj := parsed.(map[string]any); !isObj {
		return s
	}
	return parsed
}

// newCallTool builds a tool call from its arguments: an object becomes
// arguments by key, anything else raw text.
func newCallTool(id, name string, args any) *callTool {
	t := &callTool{ID: id, Name: name}
	obj, ok := args.(map[string]any)
	if !ok {
		if s, isStr := args.(string); isStr {
			t.Raw = s
		} else if args != nil {
			t.Raw = compactJSONValue(args)
		}
		return t
	}
	t.Object = true
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, isStr := obj[k].(string)
		if !isStr {
			v = compactJSONValue(obj[k])
		}
		t.Args = append(t.Args, callArg{Key: k, Value: v})
	}
	return t
}

// compactJSONValue renders a JSON value as compact JSON text, with <, > and
// & left as they are (the page escapes what it shows).
func compactJSONValue(v any) string {
	b, err := jsonx.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// jsonList, jsonObj and jsonStr read decoded JSON values of an expected
// type: nil or "" for anything else.
func jsonList(v any) []any {
	l, _ := v.([]any)
	return l
}

func jsonObj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func jsonStr(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}
