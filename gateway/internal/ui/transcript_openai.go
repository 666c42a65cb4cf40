package ui

// txOpenAIMessages reads the messages of an OpenAI Chat Completions request:
// system and developer messages, user and assistant messages (with their
// tool_calls) and tool results (role "tool", matched by tool_call_id).
func txOpenAIMessages(body map[string]any) []txMessage {
	var out []txMessage
	for _, raw := range txList(body["messages"]) {
		out = append(out, txOpenAIMessage(txObj(raw)))
	}
	return out
}

// txOpenAIMessage reads one message.
func txOpenAIMessage(m map[string]any) txMessage {
	role := txStr(m, "role")
	switch role {
	case "developer":
		role = "system"
	case "tool", "function":
		id := txStr(m, "tool_call_id")
		if id == "" {
			id = txStr(m, "name")
		}
		return txMessage{Role: "tool", Parts: []txBlock{{Kind: blockToolResult, ToolID: id, Text: txResultText(m["content"])}}}
	}
	msg := txMessage{Role: role}
	if r := txStr(m, "reasoning_content"); r != "" {
		msg.Parts = append(msg.Parts, txBlock{Kind: blockThinking, Text: r})
	}
	msg.Parts = append(msg.Parts, txOpenAIContent(m["content"])...)
	if r := txStr(m, "refusal"); r != "" {
		msg.Parts = append(msg.Parts, txBlock{Kind: blockText, Text: r})
	}
	for _, raw := range txList(m["tool_calls"]) {
		tc := txObj(raw)
		fn := txObj(tc["function"])
		msg.Parts = append(msg.Parts, txBlock{Kind: blockToolUse, ToolID: txStr(tc, "id"), ToolName: txStr(fn, "name"),
			ToolArgs: txIndentJSON(txStr(fn, "arguments"))})
	}
	if fc := txObj(m["function_call"]); fc != nil {
		msg.Parts = append(msg.Parts, txBlock{Kind: blockToolUse, ToolID: txStr(fc, "name"), ToolName: txStr(fc, "name"),
			ToolArgs: txIndentJSON(txStr(fc, "arguments"))})
	}
	return msg
}

// txOpenAIContent reads a content value: a string or a list of parts
// ({type: text, text} and others named by their type).
func txOpenAIContent(v any) []txBlock {
	if s, ok := v.(string); ok {
		if s == "" {
			return nil
		}
		return []txBlock{{Kind: blockText, Text: s}}
	}
	var parts []txBlock
	for _, raw := range txList(v) {
		p := txObj(raw)
		switch t := txStr(p, "type"); t {
		case "text", "input_text", "output_text":
			parts = append(parts, txBlock{Kind: blockText, Text: txStr(p, "text")})
		case "refusal":
			parts = append(parts, txBlock{Kind: blockText, Text: txStr(p, "refusal")})
		case "":
		default:
			parts = append(parts, txBlock{Kind: blockOther, Text: t})
		}
	}
	return parts
}

// txOpenAIAnswer reads a Chat Completions response: the first choice's
// message and its finish reason.
func txOpenAIAnswer(body map[string]any) *txAnswer {
	choices := txList(body["choices"])
	if len(choices) == 0 {
		return &txAnswer{Message: txMessage{Role: "assistant"}}
	}
	c := txObj(choices[0])
	m := txOpenAIMessage(txObj(c["message"]))
	m.Role = "assistant"
	return &txAnswer{Message: m, StopReason: txStr(c, "finish_reason")}
}
