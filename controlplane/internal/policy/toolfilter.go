package policy

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"

	"luthien.dev/controlplane/internal/stream"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// defaultRegexBlockMessage is regex_block's default block notice.
const defaultRegexBlockMessage = "⛔ BLOCKED: Tool call '{tool_name}' was blocked by policy: its command matched the pattern '{pattern}'. Command: {command}"

// regexBlockType describes the regex_block policy.
func regexBlockType() Type {
	return Type{
		Class:       "regex_block",
		Description: "Blocks tool calls whose command or arguments match a pattern (case-insensitive); a blocked call becomes a text notice.",
		Legacy:      []Legacy{dogfoodSafety},
		ConfigSchema: `{"type":"object","additionalProperties":false,"required":["patterns"],"properties":{` +
			`"patterns":{"type":"array","items":{"type":"string","format":"regex"},"minItems":1,"description":"regular expressions (RE2 syntax, matched case-insensitively) against the command or the arguments"},` +
			`"tool_names":{"type":"array","items":{"type":"string"},"description":"tools checked (case-insensitive); empty checks every tool"},` +
			`"message":{"type":"string","description":"the notice replacing a blocked call; placeholders {tool_name}, {command} (first 200 characters), {pattern}","default":` + jsonQuote(defaultRegexBlockMessage) + `}}}`,
		New: func(cfg map[string]any) (Policy, error) {
			s := newSettings(cfg)
			f := &toolFilter{
				class:     "regex_block",
				patterns:  s.regexps("patterns"),
				toolNames: s.strings("tool_names"),
				message:   s.str("message", defaultRegexBlockMessage),
				field:     "command",
			}
			if _, ok := cfg["patterns"]; !ok || (s.err == nil && len(f.patterns) == 0) {
				s.fail("patterns", "want a non-empty list of regular expressions")
			}
			if err := s.done(); err != nil {
				return nil, err
			}
			return f.policy(), nil
		},
	}
}

// toolFilter blocks tool calls whose arguments match a pattern. It backs
// regex_block and sql_protection.
type toolFilter struct {
	class     string
	patterns  []*regexp.Regexp
	toolNames []string               // exact names; empty matches all
	nameMatch func(name string) bool // overrides toolNames when set
	message   string                 // template
	field     string                 // the argument shown as {command}
}

// policy returns the filter as a Policy.
func (f *toolFilter) policy() Policy {
	return &blockPolicy{name: f.class, decider: func(call *Call) stream.Decider {
		return toolDecider(func(ctx context.Context, tool *cpv1.ToolUseBlock) stream.Decision {
			return f.decide(ctx, call, tool)
		})
	}}
}

// decide blocks one tool call when it matches.
func (f *toolFilter) decide(ctx context.Context, call *Call, tool *cpv1.ToolUseBlock) stream.Decision {
	matches := f.nameMatch
	if matches == nil {
		matches = func(name string) bool { return nameMatches(f.toolNames, name) }
	}
	if !matches(tool.GetName()) {
		return stream.KeepBlock()
	}
	command, scanned := toolText(tool.GetInputJson(), f.field)
	for _, re := range f.patterns {
		if !re.MatchString(scanned) {
			continue
		}
		pattern := strings.TrimPrefix(re.String(), "(?i)")
		call.Record(ctx, "policy."+f.class+".blocked", map[string]any{
			"tool_name": tool.GetName(), "tool_use_id": tool.GetId(), "pattern": pattern, "command": truncateRunes(command, 200),
		})
		return stream.ReplaceWithText(formatTemplate(f.message, map[string]any{
			"tool_name": tool.GetName(), "name": tool.GetName(), "command": truncateRunes(command, 200), "pattern": pattern,
		}))
	}
	return stream.KeepBlock()
}

// toolText returns what a filter shows of a tool call (the named argument
// when it is a string, else the raw arguments) and what it scans: the raw
// arguments followed by every string value, so that JSON escaping hides
// nothing. Unparsable arguments are scanned as raw text.
func toolText(input []byte, field string) (shown, scanned string) {
	raw := string(input)
	var v any
	if err := json.Unmarshal(input, &v); err != nil {
		return raw, raw
	}
	var sb strings.Builder
	sb.WriteString(raw)
	collectStrings(v, &sb)
	shown = raw
	if m, ok := v.(map[string]any); ok {
		if s, ok := m[field].(string); ok {
			shown = s
		}
	}
	return shown, sb.String()
}

// collectStrings appends every string in v, each on its own line.
func collectStrings(v any, sb *strings.Builder) {
	switch x := v.(type) {
	case string:
		sb.WriteByte('\n')
		sb.WriteString(x)
	case []any:
		for _, item := range x {
			collectStrings(item, sb)
		}
	case map[string]any:
		for _, item := range x {
			collectStrings(item, sb)
		}
	}
}

// jsonQuote returns s as a JSON string.
func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// sqlProtectionMessage is the notice replacing a blocked SQL tool call.
const sqlProtectionMessage = "⛔ BLOCKED: Tool call '{tool_name}' was blocked because it attempted a harmful SQL operation."

// harmfulSQL matches the destructive SQL statements sql_protection blocks.
var harmfulSQL = regexp.MustCompile(`(?i)\b(DROP\s+TABLE|DROP\s+DATABASE|TRUNCATE\s+TABLE|DELETE\s+FROM)\b`)

// sqlProtectionType describes the sql_protection policy.
func sqlProtectionType() Type {
	return Type{
		Class:        "sql_protection",
		Description:  "Blocks SQL tool calls (tools named like sql or execute) whose query drops, truncates or deletes (DROP TABLE, DROP DATABASE, TRUNCATE TABLE, DELETE FROM).",
		Aliases:      []string{earlier + "sql_protection:SQLProtectionPolicy"},
		ConfigSchema: emptySchema,
		New: func(cfg map[string]any) (Policy, error) {
			if err := requireEmptyConfig(cfg); err != nil {
				return nil, err
			}
			f := &toolFilter{
				class:    "sql_protection",
				patterns: []*regexp.Regexp{harmfulSQL},
				nameMatch: func(name string) bool {
					n := strings.ToLower(name)
					return strings.Contains(n, "sql") || strings.Contains(n, "execute")
				},
				message: sqlProtectionMessage,
				field:   "query",
			}
			return f.policy(), nil
		},
	}
}
