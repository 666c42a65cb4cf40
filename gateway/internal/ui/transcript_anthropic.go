package ui

import "strings"

// txAnthropicBlocks reads an Anthropic content value (a string or a list of
// blocks) as parts. Tool results nested in blocks become their text;
// blocks without text (images, documents, ...) are named by their type.
func txAnthropicBlocks(v any) []txBlock {
	if s, ok := v.(string); ok {
		return []txBlock{{Kind: blockText, Text: s}}
	}
	var parts []txBlock
	for _, raw := range txList(v) {
		b := txObj(raw)
		typ := txStr(b, "type")
		switch {
		case typ == "text":
			parts = append(parts, txBlock{Kind: blockText, Text: txStr(b, "text")})
		case typ == "thinking":
			parts = append(parts, txBlock{Kind: blockThinking, Text: txStr(b, "thinking")})
		case typ == "tool_use" || typ == "server_tool_use" || typ == "mcp_tool_use":
			parts = append(parts, txBlock{Kind: blockToolUse, ToolID: txStr(b, "id"), ToolName: txStr(b, "name"), ToolArgs: txJSON(b["input"])})
		case strings.HasSuffix(typ, "tool_result"):
			isErr, _ := b["is_error"].(bool)
			parts = append(parts, txBlock{Kind: blockToolResult, ToolID: txStr(b, "tool_use_id"), Text: txResultText(b["content"]), IsError: isErr})
		case typ == "":
			continue
		default:
			parts = append(parts, txBlock{Kind: blockOther, Text: typ})
		}
	}
	return parts
}

// txResultText is the text of a tool result's content: a string, the texts
// of a list of blocks (other blocks named by type), or the JSON of
// anything else.
func txResultText(v any) string {
	switch c := v.(type) {
	case nil:
		return ""
	case string:
		return c
	case []any:
		var texts []string
		for _, raw := range c {
			b := txObj(raw)
			switch t := txStr(b, "type"); {
			case t == "text":
				texts = append(texts, txStr(b, "text"))
			case t != "":
				texts = append(texts, "["+t+"]")
			default:
				texts = append(texts, txJSON(raw))
			}
		}
		return strings.Join(texts, "\n")
	default:
		return txJSON(v)
	}
}
