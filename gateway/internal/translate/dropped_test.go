package translate

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// hasDropped reports whether dropped has an entry for field.
func hasDropped(dropped []Dropped, field string) bool {
	for _, d := range dropped {
		if d.Field == field {
			return true
		}
	}
	return false
}

func TestChatToMessagesReportsDropped(t *testing.T) {
	const base = `"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hi"}]`
	for _, tc := range []struct{ extra, field string }{
		{`"n":2`, "n"},
		{`"logprobs":true`, "logprobs"},
		{`"top_logprobs":3`, "top_logprobs"},
		{`"presence_penalty":0.5`, "presence_penalty"},
		{`"frequency_penalty":0.5`, "frequency_penalty"},
		{`"logit_bias":{"1":2}`, "logit_bias"},
		{`"response_format":{"type":"json_object"}`, "response_format"},
		{`"seed":42`, "seed"},
		{`"service_tier":"flex"`, "service_tier"},
		{`"store":true`, "store"},
		{`"metadata":{"k":"v"}`, "metadata"},
		{`"reasoning_effort":"low"`, "reasoning_effort"},
		{`"modalities":["text"]`, "modalities"},
		{`"functions":[{"name":"f"}]`, "functions"},
		{`"temperature":1.5`, "temperature"},
		{`"tools":[{"type":"function","function":{"name":"f","strict":true}}]`, "tools[0].function.strict"},
		{`"tools":[{"type":"custom","custom":{"name":"f"}}]`, "tools[0]"},
	} {
		t.Run(tc.field, func(t *testing.T) {
			out, dropped, err := ChatToMessages([]byte(`{` + base + `,` + tc.extra + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if !hasDropped(dropped, tc.field) {
				t.Errorf("no Dropped for %s: %v", tc.field, dropped)
			}
			if key := strings.Split(tc.field, "[")[0]; key != "temperature" && key != "tools" && strings.Contains(string(out), `"`+key+`"`) {
				t.Errorf("%s reached the output: %s", key, out)
			}
		})
	}
	msgCases := []struct{ messages, field string }{
		{`[{"role":"user","name":"bob","content":"hi"}]`, "messages[0].name"},
		{`[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"high"}}]}]`, "messages[0].content[0].image_url.detail"},
		{`[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA==","format":"wav"}}]}]`, "messages[0].content[0]"},
		{`[{"role":"user","content":[{"type":"file","file":{"file_id":"f"}}]}]`, "messages[0].content[0]"},
		{`[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{bad"}}]}]`, "messages[1].tool_calls[0].function.arguments"},
		{`[{"role":"assistant","content":"hello"}]`, "messages"},
		{`[{"role":"function","name":"f","content":"x"}]`, "messages[0]"},
	}
	for _, tc := range msgCases {
		t.Run(tc.field, func(t *testing.T) {
			_, dropped, err := ChatToMessages([]byte(`{"model":"m","max_tokens":1,"messages":` + tc.messages + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if !hasDropped(dropped, tc.field) {
				t.Errorf("no Dropped for %s: %v", tc.field, dropped)
			}
		})
	}
}

func TestMessagesToChatReportsDropped(t *testing.T) {
	const base = `"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]`
	for _, tc := range []struct{ extra, field string }{
		{`"top_k":40`, "top_k"},
		{`"thinking":{"type":"enabled","budget_tokens":1024}`, "thinking"},
		{`"service_tier":"auto"`, "service_tier"},
		{`"container":"c1"`, "container"},
		{`"mcp_servers":[{"type":"url","url":"https://x","name":"x"}]`, "mcp_servers"},
		{`"context_management":{"edits":[]}`, "context_management"},
		{`"output_config":{"effort":"low"}`, "output_config"},
		{`"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}]`, "system[0].cache_control"},
		{`"tools":[{"name":"t","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}]`, "tools[0].cache_control"},
		{`"tools":[{"type":"bash_20250124","name":"bash"}]`, "tools[0]"},
	} {
		t.Run(tc.field, func(t *testing.T) {
			out, dropped, err := MessagesToChat([]byte(`{` + base + `,` + tc.extra + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if !hasDropped(dropped, tc.field) {
				t.Errorf("no Dropped for %s: %v", tc.field, dropped)
			}
			if key := strings.Split(tc.field, "[")[0]; key != "system" && key != "tools" && strings.Contains(string(out), `"`+key+`"`) {
				t.Errorf("%s reached the output: %s", key, out)
			}
		})
	}
	for _, tc := range []struct{ messages, field string }{
		{`[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"text","text":"a"}]}]`, "messages[1].content[0]"},
		{`[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"redacted_thinking","data":"xx"}]}]`, "messages[1].content[0]"},
		{`[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"d"}}]}]`, "messages[0].content[0]"},
		{`[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}]}]`, "messages[0].content[0].cache_control"},
		{`[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"url","url":"https://x"}}]}]}]`, "messages[0].content[0].content[0]"},
		{`[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"boom","is_error":true}]}]`, "messages[0].content[0].is_error"},
	} {
		t.Run(tc.field, func(t *testing.T) {
			_, dropped, err := MessagesToChat([]byte(`{"model":"m","max_tokens":1,"messages":` + tc.messages + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if !hasDropped(dropped, tc.field) {
				t.Errorf("no Dropped for %s: %v", tc.field, dropped)
			}
		})
	}
}

func TestRequestMappings(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		fn       func([]byte) ([]byte, []Dropped, error)
		want     map[string]string // top-level key -> compact JSON value
	}{
		{"max_tokens kept", `{"model":"m","max_tokens":7,"messages":[]}`, ChatToMessages, map[string]string{"max_tokens": `7`}},
		{"max_completion_tokens wins", `{"model":"m","max_tokens":7,"max_completion_tokens":9,"messages":[]}`, ChatToMessages, map[string]string{"max_tokens": `9`}},
		{"stop array", `{"model":"m","stop":["a","b"],"messages":[]}`, ChatToMessages, map[string]string{"stop_sequences": `["a","b"]`}},
		{"tool_choice auto", `{"model":"m","tool_choice":"auto","messages":[]}`, ChatToMessages, map[string]string{"tool_choice": `{"type":"auto"}`}},
		{"tool_choice none", `{"model":"m","tool_choice":"none","messages":[]}`, ChatToMessages, map[string]string{"tool_choice": `{"type":"none"}`}},
		{"tool_choice required", `{"model":"m","tool_choice":"required","messages":[]}`, ChatToMessages, map[string]string{"tool_choice": `{"type":"any"}`}},
		{"top_p", `{"model":"m","top_p":0.9,"messages":[]}`, ChatToMessages, map[string]string{"top_p": `0.9`}},
		{"no tool params", `{"model":"m","tools":[{"type":"function","function":{"name":"f"}}],"messages":[]}`, ChatToMessages,
			map[string]string{"tools": `[{"name":"f","input_schema":{"type":"object","properties":{}}}]`}},
		{"anthropic tool_choice auto", `{"model":"m","max_tokens":1,"tool_choice":{"type":"auto"},"messages":[]}`, MessagesToChat, map[string]string{"tool_choice": `"auto"`}},
		{"anthropic tool_choice none", `{"model":"m","max_tokens":1,"tool_choice":{"type":"none"},"messages":[]}`, MessagesToChat, map[string]string{"tool_choice": `"none"`}},
		{"anthropic tool_choice tool", `{"model":"m","max_tokens":1,"tool_choice":{"type":"tool","name":"f"},"messages":[]}`, MessagesToChat,
			map[string]string{"tool_choice": `{"function":{"name":"f"},"type":"function"}`}},
		{"not streamed", `{"model":"m","max_tokens":1,"messages":[]}`, MessagesToChat, map[string]string{"stream": ``, "stream_options": ``}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := tc.fn([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatal(err)
			}
			for k, want := range tc.want {
				if got := string(compact(m[k])); got != want {
					t.Errorf("%s = %s, want %s", k, got, want)
				}
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	for _, in := range []string{`not json`, `{"messages":"x"}`, `{"messages":[{"role":"user","content":5}]}`, `{"tool_choice":"sometimes","messages":[]}`} {
		if _, _, err := ChatToMessages([]byte(in)); err == nil {
			t.Errorf("ChatToMessages(%s): no error", in)
		}
	}
	for _, in := range []string{`not json`, `{"messages":[{"role":"user","content":5}]}`, `{"tool_choice":{"type":"maybe"},"messages":[]}`} {
		if _, _, err := MessagesToChat([]byte(in)); err == nil {
			t.Errorf("MessagesToChat(%s): no error", in)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		status     int
		body       string
		wantStatus int
		wantType   string
	}{
		{400, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long"}}`, 400, "invalid_request_error"},
		{401, `{"type":"error","error":{"type":"authentication_error","message":"bad key"}}`, 401, "invalid_request_error"},
		{429, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`, 429, "rate_limit_error"},
		{500, `{"type":"error","error":{"type":"api_error","message":"oops"}}`, 500, "server_error"},
		{529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, http.StatusServiceUnavailable, "server_error"},
		{502, `<html>bad gateway</html>`, 502, "server_error"},
	} {
		status, body := ErrorToChat(tc.status, []byte(tc.body))
		var e struct {
			Error struct{ Type, Message string }
		}
		if err := json.Unmarshal(body, &e); err != nil || status != tc.wantStatus || e.Error.Type != tc.wantType || e.Error.Message == "" {
			t.Errorf("ErrorToChat(%d, %s) = %d %s", tc.status, tc.body, status, body)
		}
	}
	for _, tc := range []struct {
		status   int
		body     string
		wantType string
	}{
		{400, `{"error":{"message":"context_length_exceeded","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`, "invalid_request_error"},
		{401, `{"error":{"message":"Incorrect API key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, "authentication_error"},
		{403, `{"error":{"message":"no","type":"permission_error","param":null,"code":null}}`, "permission_error"},
		{404, `{"error":{"message":"no model","type":"invalid_request_error","param":null,"code":"model_not_found"}}`, "not_found_error"},
		{429, `{"error":{"message":"Rate limit","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, "rate_limit_error"},
		{500, `{"error":{"message":"oops","type":"server_error","param":null,"code":null}}`, "api_error"},
		{503, `{"error":{"message":"busy","type":"server_error","param":null,"code":null}}`, "overloaded_error"},
		{500, ``, "api_error"},
	} {
		status, body := ErrorToAnthropic(tc.status, []byte(tc.body))
		var e struct {
			Type  string
			Error struct{ Type, Message string }
		}
		if err := json.Unmarshal(body, &e); err != nil || status != tc.status || e.Type != "error" || e.Error.Type != tc.wantType || e.Error.Message == "" {
			t.Errorf("ErrorToAnthropic(%d, %s) = %d %s, want type %s", tc.status, tc.body, status, body, tc.wantType)
		}
	}
}
