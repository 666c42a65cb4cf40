package openai

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"luthien.dev/gateway/internal/dialect"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    dialect.Request
		wantErr string // a part of the error message; "" for success
	}{
		{"valid", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, dialect.Request{Model: "gpt-4o"}, ""},
		{"stream with usage", `{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}`,
			dialect.Request{Model: "m", Stream: true, IncludeUsage: true}, ""},
		{"stream without usage", `{"model":"m","messages":[],"stream":true,"stream_options":null}`,
			dialect.Request{Model: "m", Stream: true}, ""},
		{"user", `{"model":"m","messages":[],"user":"alice","max_completion_tokens":5,"tools":[]}`,
			dialect.Request{Model: "m", UserID: "alice"}, ""},
		{"max_tokens is optional", `{"model":"m","messages":[]}`, dialect.Request{Model: "m"}, ""},
		{"missing model", `{"messages":[]}`, dialect.Request{}, "model"},
		{"empty model", `{"model":"","messages":[]}`, dialect.Request{}, "model"},
		{"missing messages", `{"model":"m"}`, dialect.Request{}, "messages"},
		{"null messages", `{"model":"m","messages":null}`, dialect.Request{}, "messages"},
		{"messages not an array", `{"model":"m","messages":{"role":"user"}}`, dialect.Request{}, "array"},
		{"messages a number", `{"model":"m","messages":3}`, dialect.Request{}, "array"},
		{"malformed", `{"model":`, dialect.Request{}, "not valid JSON"},
		{"not an object", `"hi"`, dialect.Request{}, "not valid JSON"},
		{"empty", ``, dialect.Request{}, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Dialect{}.ParseRequest([]byte(tt.body))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if got != tt.want {
					t.Errorf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			var de *dialect.Error
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a *dialect.Error", err)
			}
			if de.Status != 400 || de.Type != "invalid_request_error" || !strings.Contains(de.Message, tt.wantErr) {
				t.Errorf("got %+v, want a 400 invalid_request_error mentioning %q", de, tt.wantErr)
			}
		})
	}
}

func TestErrorBody(t *testing.T) {
	tests := []struct {
		status        int
		errType       string
		wantType      string
		wantCode      string // JSON
		wantAnthropic string // the Anthropic type TypeForStatus gives
	}{
		{400, "", "invalid_request_error", "null", "invalid_request_error"},
		{401, "", "invalid_request_error", `"invalid_api_key"`, "authentication_error"},
		{403, "", "permission_error", "null", "permission_error"},
		{404, "", "invalid_request_error", `"not_found"`, "not_found_error"},
		{413, "", "invalid_request_error", `"request_too_large"`, "request_too_large"},
		{422, "", "invalid_request_error", "null", "invalid_request_error"},
		{429, "", "rate_limit_error", `"rate_limit_exceeded"`, "rate_limit_error"},
		{500, "", "server_error", "null", "api_error"},
		{502, "", "server_error", "null", "api_error"},
		{503, "", "server_error", `"overloaded"`, "overloaded_error"},
		{529, "", "server_error", `"overloaded"`, "overloaded_error"},
		{500, "overloaded_error", "server_error", `"overloaded"`, ""},
		{502, "weird_error", "server_error", "null", ""},
		{418, "weird_error", "invalid_request_error", "null", ""},
	}
	for _, tt := range tests {
		got := string(Dialect{}.ErrorBody(tt.status, tt.errType, `bad <thing> & "quote"`))
		want := `{"error":{"message":"bad <thing> & \"quote\"","type":"` + tt.wantType + `","param":null,"code":` + tt.wantCode + `}}`
		if got != want {
			t.Errorf("ErrorBody(%d, %q) = %s, want %s", tt.status, tt.errType, got, want)
		}
		if tt.wantAnthropic != "" && dialect.TypeForStatus(tt.status) != tt.wantAnthropic {
			t.Errorf("TypeForStatus(%d) = %s, want %s", tt.status, dialect.TypeForStatus(tt.status), tt.wantAnthropic)
		}
	}
}

func TestStopReasonMapping(t *testing.T) {
	for _, tt := range []struct{ finish, stop string }{
		{"stop", "end_turn"},
		{"length", "max_tokens"},
		{"tool_calls", "tool_use"},
		{"function_call", "tool_use"},
		{"content_filter", "content_filter"},
		{"", ""},
	} {
		if got := StopReason(tt.finish); got != tt.stop {
			t.Errorf("StopReason(%q) = %q, want %q", tt.finish, got, tt.stop)
		}
	}
	for _, tt := range []struct{ stop, finish string }{
		{"end_turn", "stop"},
		{"stop_sequence", "stop"},
		{"", "stop"},
		{"max_tokens", "length"},
		{"tool_use", "tool_calls"},
		{"refusal", "content_filter"},
		{"pause_turn", "pause_turn"},
	} {
		if got := FinishReason(tt.stop); got != tt.finish {
			t.Errorf("FinishReason(%q) = %q, want %q", tt.stop, got, tt.finish)
		}
	}
	// Every finish reason OpenAI sends survives the trip to the canonical
	// vocabulary and back.
	for _, f := range []string{"stop", "length", "tool_calls", "content_filter"} {
		if got := FinishReason(StopReason(f)); got != f {
			t.Errorf("FinishReason(StopReason(%q)) = %q", f, got)
		}
	}
}

// completion is a complete response with text, two tool calls, a second
// choice and fields the model does not cover.
const completion = `{"id":"chatcmpl-1","object":"chat.completion","created":1761500000,"model":"gpt-4o-2024-08-06","choices":[` +
	`{"index":0,"message":{"role":"assistant","content":"Checking <both>.","tool_calls":[` +
	`{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},` +
	`{"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}],"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"tool_calls"},` +
	`{"index":1,"message":{"role":"assistant","content":"Other."},"logprobs":null,"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42,"prompt_tokens_details":{"cached_tokens":16,"audio_tokens":0}},` +
	`"service_tier":"default","system_fingerprint":"fp_1"}`

func TestParseMessage(t *testing.T) {
	got, err := Dialect{}.ParseMessage([]byte(completion))
	if err != nil {
		t.Fatal(err)
	}
	want := &cpv1.Message{Id: "chatcmpl-1", Model: "gpt-4o-2024-08-06", StopReason: "tool_use",
		Usage: &cpv1.Usage{InputTokens: 30, OutputTokens: 12, CacheReadInputTokens: 16},
		Content: []*cpv1.ContentBlock{
			{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "Checking <both>."}}},
			{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "call_1", Name: "get_weather", InputJson: []byte(`{"city":"Paris"}`)}}},
			{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "call_2", Name: "get_time", InputJson: []byte(`{}`)}}},
		}}
	if !proto.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	for _, tt := range []struct {
		body string
		want *cpv1.Message
	}{
		{`{"id":"x","choices":[]}`, &cpv1.Message{Id: "x"}},
		{`{"id":"x","choices":[{"message":{"content":null},"finish_reason":null}]}`, &cpv1.Message{Id: "x"}},
		{`{"id":"x","choices":[{"message":{"content":""},"finish_reason":"length"}]}`, &cpv1.Message{Id: "x", StopReason: "max_tokens"}},
	} {
		got, err := Dialect{}.ParseMessage([]byte(tt.body))
		if err != nil || !proto.Equal(got, tt.want) {
			t.Errorf("ParseMessage(%s) = %v, %v; want %v", tt.body, got, err, tt.want)
		}
	}
	for _, bad := range []string{``, `{`, `[]`, `{"choices":{}}`} {
		if _, err := (Dialect{}).ParseMessage([]byte(bad)); err == nil {
			t.Errorf("ParseMessage(%q): want an error", bad)
		}
	}
}

func TestRenderMessage(t *testing.T) {
	parsed, err := Dialect{}.ParseMessage([]byte(completion))
	if err != nil {
		t.Fatal(err)
	}
	text := func(s string) *cpv1.ContentBlock {
		return &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: s}}}
	}
	tests := []struct {
		name     string
		original string
		msg      *cpv1.Message
		want     string
	}{
		{"unchanged message renders the original", completion, parsed, completion},
		{"text changed, tool calls dropped", completion,
			&cpv1.Message{Id: "ignored", StopReason: "end_turn", Content: []*cpv1.ContentBlock{text("Blocked.")}},
			strings.Replace(completion,
				`"content":"Checking <both>.","tool_calls":[`+
					`{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},`+
					`{"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}],"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"tool_calls"}`,
				`"content":"Blocked.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}`, 1)},
		{"tool call changed, text dropped", completion,
			&cpv1.Message{StopReason: "tool_use", Content: []*cpv1.ContentBlock{parsed.GetContent()[2]}},
			strings.Replace(completion,
				`"content":"Checking <both>.","tool_calls":[`+
					`{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},`,
				`"content":null,"tool_calls":[`, 1)},
		{"tool calls added to a text answer", `{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"x","refusal":null},"finish_reason":"stop"}],"x":1}`,
			&cpv1.Message{StopReason: "tool_use", Content: []*cpv1.ContentBlock{text("a"), text("b"),
				{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "call_9", Name: "f"}}},
				{Block: &cpv1.ContentBlock_Thinking{Thinking: &cpv1.ThinkingBlock{Thinking: "not rendered"}}}}},
			`{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"ab","refusal":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"x":1}`},
		{"no choices", `{"id":"c","choices":[]}`, &cpv1.Message{Content: []*cpv1.ContentBlock{text("hi")}},
			`{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Dialect{}.RenderMessage([]byte(tt.original), tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	t.Run("original not JSON", func(t *testing.T) {
		if _, err := (Dialect{}).RenderMessage([]byte(`nope`), parsed); err == nil {
			t.Error("want an error")
		}
	})
}

func TestRenderMessageWithoutOriginal(t *testing.T) {
	parsed, err := Dialect{}.ParseMessage([]byte(completion))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Dialect{}.RenderMessage(nil, parsed)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	if c, ok := v["created"].(float64); !ok || c <= 0 {
		t.Errorf("created = %v, want a timestamp", v["created"])
	}
	delete(v, "created")
	var want map[string]any
	_ = json.Unmarshal([]byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[`+
		`{"index":0,"message":{"role":"assistant","content":"Checking <both>.","tool_calls":[`+
		`{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},`+
		`{"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],`+
		`"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}`), &want)
	if !reflect.DeepEqual(v, want) {
		t.Errorf("got %s", got)
	}
	back, err := Dialect{}.ParseMessage(got)
	parsed.Usage.CacheReadInputTokens = 0 // not rendered
	if err != nil || !proto.Equal(back, parsed) {
		t.Errorf("parse of render: got %v, %v; want %v", back, err, parsed)
	}
	empty, err := Dialect{}.RenderMessage(nil, &cpv1.Message{})
	if err != nil || !json.Valid(empty) || !strings.Contains(string(empty), `"message":{"role":"assistant","content":null}`) ||
		!strings.Contains(string(empty), `"finish_reason":"stop"`) {
		t.Errorf("empty message: %s, %v", empty, err)
	}
}
