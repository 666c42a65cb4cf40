package ui

import (
	"encoding/json"
	"reflect"
	"testing"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// decode parses a JSON object for a test.
func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("test body: %v", err)
	}
	return m
}

func TestRequestCallItems(t *testing.T) {
	tests := []struct {
		name   string
		openai bool
		body   string
		want   []callItem
	}{
		{"openai", true, `{"model":"m","messages":[
			{"role":"system","content":"be brief"},
			{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
			{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"Bash","arguments":"{\"command\":\"ls\",\"timeout\":5}"}}]},
			{"role":"tool","tool_call_id":"call_1","content":"a.txt"},
			{"role":"assistant","content":"done","tool_calls":[{"id":"call_2","function":{"name":"Odd","arguments":"not json"}}]}]}`,
			[]callItem{
				{Role: "system", Kind: "text", Text: "be brief"},
				{Role: "user", Kind: "text", Text: "look"},
				{Role: "user", Kind: "image", Text: "data: image/png;base64, 4 characters"},
				{Role: "assistant", Kind: "tool_call", Tool: &callTool{ID: "call_1", Name: "Bash", Object: true,
					Args: []callArg{{Key: "command", Value: "ls"}, {Key: "timeout", Value: "5"}}}},
				{Role: "tool", Kind: "tool_result", Label: "call_1", Text: "a.txt"},
				{Role: "assistant", Kind: "text", Text: "done"},
				{Role: "assistant", Kind: "tool_call", Tool: &callTool{ID: "call_2", Name: "Odd", Raw: "not json"}},
			}},
		{"anthropic", false, `{"model":"m","system":[{"type":"text","text":"be brief"},{"type":"text","text":"be kind"}],"messages":[
			{"role":"user","content":"hi <b>"},
			{"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"x"},{"type":"text","text":"let me see"},
				{"type":"tool_use","id":"tu_1","name":"Bash","input":{"command":"ls","opts":{"a":[1,"<x>"]}}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"tu_1","content":[{"type":"text","text":"a.txt"},{"type":"image"}],"is_error":true},
				{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"AAAAAAAA"}},
				{"type":"document","source":{"type":"text","data":"d"}}]}]}`,
			[]callItem{
				{Role: "system", Kind: "text", Text: "be brief"},
				{Role: "system", Kind: "text", Text: "be kind"},
				{Role: "user", Kind: "text", Text: "hi <b>"},
				{Role: "assistant", Kind: "thinking", Text: "hmm"},
				{Role: "assistant", Kind: "text", Text: "let me see"},
				{Role: "assistant", Kind: "tool_call", Tool: &callTool{ID: "tu_1", Name: "Bash", Object: true,
					Args: []callArg{{Key: "command", Value: "ls"}, {Key: "opts", Value: `{"a":[1,"<x>"]}`}}}},
				{Role: "user", Kind: "tool_result", Label: "tu_1", Text: "a.txt\n[image]", IsError: true},
				{Role: "user", Kind: "image", Label: "image/jpeg", Text: "8 characters of base64"},
				{Role: "user", Kind: "other", Label: "document", Text: `{"source":{"data":"d","type":"text"},"type":"document"}`},
			}},
		{"anthropic system string", false, `{"system":"sys","messages":[{"role":"user","content":"q"}]}`,
			[]callItem{{Role: "system", Kind: "text", Text: "sys"}, {Role: "user", Kind: "text", Text: "q"}}},
		{"empty", false, `{}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := requestCallItems(tt.openai, decode(t, tt.body))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("requestCallItems:\n got %s\nwant %s", dump(got), dump(tt.want))
			}
		})
	}
}

func TestResponseCallItems(t *testing.T) {
	tests := []struct {
		name   string
		openai bool
		body   string
		want   []callItem
	}{
		{"openai text", true, `{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"HELLO"},"finish_reason":"stop"}],"usage":{}}`,
			[]callItem{{Role: "assistant", Kind: "text", Text: "HELLO"}, {Kind: "stop", Label: "finish_reason", Text: "stop"}}},
		{"openai tool calls", true, `{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[
			{"id":"c1","type":"function","function":{"name":"execute_sql","arguments":"{\"query\":\"DROP TABLE users\"}"}}]},"finish_reason":"tool_calls"}]}`,
			[]callItem{{Role: "assistant", Kind: "tool_call", Tool: &callTool{ID: "c1", Name: "execute_sql", Object: true,
				Args: []callArg{{Key: "query", Value: "DROP TABLE users"}}}}, {Kind: "stop", Label: "finish_reason", Text: "tool_calls"}}},
		{"openai refusal", true, `{"choices":[{"message":{"role":"assistant","content":null,"refusal":"no"},"finish_reason":"stop"}]}`,
			[]callItem{{Role: "assistant", Kind: "text", Label: "refusal", Text: "no"}, {Kind: "stop", Label: "finish_reason", Text: "stop"}}},
		{"openai two choices", true, `{"choices":[{"message":{"content":"a"}},{"message":{"content":"b"}}]}`,
			[]callItem{{Role: "assistant (choice 1)", Kind: "text", Text: "a"}, {Role: "assistant (choice 2)", Kind: "text", Text: "b"}}},
		{"anthropic", false, `{"type":"message","role":"assistant","content":[{"type":"thinking","thinking":"t"},{"type":"text","text":"Stopping it. "},
			{"type":"tool_use","id":"tu","name":"Bash","input":{"command":"docker compose down"}}],"stop_reason":"tool_use","stop_sequence":null}`,
			[]callItem{{Role: "assistant", Kind: "thinking", Text: "t"}, {Role: "assistant", Kind: "text", Text: "Stopping it. "},
				{Role: "assistant", Kind: "tool_call", Tool: &callTool{ID: "tu", Name: "Bash", Object: true, Args: []callArg{{Key: "command", Value: "docker compose down"}}}},
				{Kind: "stop", Label: "stop_reason", Text: "tool_use"}}},
		{"anthropic tool without input", false, `{"content":[{"type":"tool_use","id":"tu","name":"Now"}],"stop_reason":"tool_use"}`,
			[]callItem{{Role: "assistant", Kind: "tool_call", Tool: &callTool{ID: "tu", Name: "Now"}}, {Kind: "stop", Label: "stop_reason", Text: "tool_use"}}},
		{"anthropic error", false, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`,
			[]callItem{{Kind: "error", Label: "rate_limit_error", Text: "slow down"}}},
		{"openai error", true, `{"error":{"message":"bad key","type":"invalid_request_error"}}`,
			[]callItem{{Kind: "error", Label: "invalid_request_error", Text: "bad key"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := responseCallItems(tt.openai, decode(t, tt.body))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("responseCallItems:\n got %s\nwant %s", dump(got), dump(tt.want))
			}
		})
	}
}

func TestCallIsOpenAI(t *testing.T) {
	tests := []struct {
		name              string
		format            cpv1.ClientFormat
		request, response string
		want              bool
	}{
		{"openai format", cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT, `{}`, `{"content":[]}`, true},
		{"anthropic format", cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES, `{}`, `{"choices":[]}`, false},
		{"guessed from choices", 0, `{}`, `{"choices":[]}`, true},
		{"guessed from a system message", 0, `{"messages":[{"role":"system","content":"s"}]}`, `{}`, true},
		{"anthropic by default", 0, `{"messages":[{"role":"user","content":"s"}]}`, `{"content":[]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := callIsOpenAI(tt.format, decode(t, tt.request), decode(t, tt.response)); got != tt.want {
				t.Errorf("callIsOpenAI = %v, want %v", got, tt.want)
			}
		})
	}
}

// dump renders items for a failure message.
func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}
