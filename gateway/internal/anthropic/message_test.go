package anthropic

import (
	"encoding/json"
	"errors"
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
		{"valid", `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"hi"}]}`,
			dialect.Request{Model: "claude-sonnet-4-5"}, ""},
		{"stream", `{"model":"m","max_tokens":1,"stream":true,"messages":[]}`,
			dialect.Request{Model: "m", Stream: true}, ""},
		{"unknown fields are fine", `{"model":"m","max_tokens":1,"messages":[],"thinking":{"type":"enabled","budget_tokens":1024},"context_management":{},"service_tier":"auto"}`,
			dialect.Request{Model: "m"}, ""},
		{"session in user_id", `{"model":"m","max_tokens":1,"messages":[],"metadata":{"user_id":"user_3f2a9c_account__session_0f8e9a2b-1c3d-4e5f-8a9b-0c1d2e3f4a5b"}}`,
			dialect.Request{Model: "m", SessionID: "0f8e9a2b-1c3d-4e5f-8a9b-0c1d2e3f4a5b", UserID: "user_3f2a9c_account_"}, ""},
		{"session in JSON user_id", `{"model":"m","max_tokens":1,"messages":[],"metadata":{"user_id":"{\"device_id\":\"dev-42\",\"session_id\":\"6b1c0d7e-aaaa-bbbb-cccc-0123456789ab\"}"}}`,
			dialect.Request{Model: "m", SessionID: "6b1c0d7e-aaaa-bbbb-cccc-0123456789ab", UserID: "dev-42"}, ""},
		{"plain user_id", `{"model":"m","max_tokens":1,"messages":[],"metadata":{"user_id":"alice"}}`,
			dialect.Request{Model: "m", UserID: "alice"}, ""},
		{"null metadata", `{"model":"m","max_tokens":1,"messages":[],"metadata":null}`,
			dialect.Request{Model: "m"}, ""},
		{"missing model", `{"max_tokens":1,"messages":[]}`, dialect.Request{}, "model"},
		{"empty model", `{"model":"","max_tokens":1,"messages":[]}`, dialect.Request{}, "model"},
		{"missing messages", `{"model":"m","max_tokens":1}`, dialect.Request{}, "messages"},
		{"null messages", `{"model":"m","max_tokens":1,"messages":null}`, dialect.Request{}, "messages"},
		{"messages not an array", `{"model":"m","max_tokens":1,"messages":{"role":"user"}}`, dialect.Request{}, "array"},
		{"messages a string", `{"model":"m","max_tokens":1,"messages":"hi"}`, dialect.Request{}, "array"},
		{"missing max_tokens", `{"model":"m","messages":[]}`, dialect.Request{}, "max_tokens"},
		{"null max_tokens", `{"model":"m","max_tokens":null,"messages":[]}`, dialect.Request{}, "max_tokens"},
		{"malformed", `{"model":"m",`, dialect.Request{}, "not valid JSON"},
		{"not an object", `[1,2]`, dialect.Request{}, "not valid JSON"},
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

func TestSessionFromUserID(t *testing.T) {
	tests := []struct{ in, session, user string }{
		{"", "", ""},
		{"user_abc_account__session_123", "123", "user_abc_account_"},
		{"user_abc_account_acc-1_session_s-2", "s-2", "user_abc_account_acc-1"},
		{`{"device_id":"d","account_uuid":"a","session_id":"s"}`, "s", "a"},
		{`{"device_id":"d","account_uuid":"","session_id":"s"}`, "s", "d"},
		{`{"device_id":"d"}`, "", "d"},
		{`{not json`, "", `{not json`},
		{"someone", "", "someone"},
	}
	for _, tt := range tests {
		s, u := SessionFromUserID(tt.in)
		if s != tt.session || u != tt.user {
			t.Errorf("SessionFromUserID(%q) = %q, %q; want %q, %q", tt.in, s, u, tt.session, tt.user)
		}
	}
}

func TestErrorBody(t *testing.T) {
	tests := []struct {
		status  int
		errType string
		want    string
	}{
		{400, "", "invalid_request_error"},
		{401, "", "authentication_error"},
		{403, "", "permission_error"},
		{404, "", "not_found_error"},
		{413, "", "request_too_large"},
		{422, "", "invalid_request_error"},
		{429, "", "rate_limit_error"},
		{500, "", "api_error"},
		{502, "", "api_error"},
		{503, "", "overloaded_error"},
		{529, "", "overloaded_error"},
		{500, "overloaded_error", "overloaded_error"},
	}
	for _, tt := range tests {
		got := string(Dialect{}.ErrorBody(tt.status, tt.errType, `bad <thing> & "quote"`))
		want := `{"type":"error","error":{"type":"` + tt.want + `","message":"bad <thing> & \"quote\""}}`
		if got != want {
			t.Errorf("ErrorBody(%d, %q) = %s, want %s", tt.status, tt.errType, got, want)
		}
	}
}

// fullMessage is a complete response with every kind of block.
const fullMessage = `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[` +
	`{"type":"thinking","thinking":"Let me see.","signature":"c2ln"},` +
	`{"type":"redacted_thinking","data":"cmVk"},` +
	`{"type":"text","text":"Listing <files>."},` +
	`{"type":"tool_use","id":"toolu_01","name":"bash","input":{"command":"ls"}}],` +
	`"stop_reason":"tool_use","stop_sequence":null,"container":null,` +
	`"usage":{"input_tokens":10,"cache_creation_input_tokens":2,"cache_read_input_tokens":3,"output_tokens":20,"service_tier":"standard"}}`

func TestParseMessage(t *testing.T) {
	got, err := Dialect{}.ParseMessage([]byte(fullMessage))
	if err != nil {
		t.Fatal(err)
	}
	want := &cpv1.Message{Id: "msg_01", Model: "claude-sonnet-4-5", StopReason: "tool_use",
		Usage: &cpv1.Usage{InputTokens: 10, OutputTokens: 20, CacheCreationInputTokens: 2, CacheReadInputTokens: 3},
		Content: []*cpv1.ContentBlock{
			{Block: &cpv1.ContentBlock_Thinking{Thinking: &cpv1.ThinkingBlock{Thinking: "Let me see.", Signature: "c2ln"}}},
			{Block: &cpv1.ContentBlock_Opaque{Opaque: &cpv1.OpaqueBlock{Type: "redacted_thinking", Json: []byte(`{"type":"redacted_thinking","data":"cmVk"}`)}}},
			{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "Listing <files>."}}},
			{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "toolu_01", Name: "bash", InputJson: []byte(`{"command":"ls"}`)}}},
		}}
	if !proto.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	for _, bad := range []string{``, `{`, `[]`, `{"content":[1]}`, `{"content":"x"}`} {
		if _, err := (Dialect{}).ParseMessage([]byte(bad)); err == nil {
			t.Errorf("ParseMessage(%q): want an error", bad)
		}
	}
	if m, err := (Dialect{}).ParseMessage([]byte(`{"id":"x","content":[],"stop_reason":null}`)); err != nil || m.GetStopReason() != "" || m.GetUsage() != nil {
		t.Errorf("null stop reason: got %v, %v", m, err)
	}
}

func TestRenderMessage(t *testing.T) {
	parsed, err := Dialect{}.ParseMessage([]byte(fullMessage))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("unchanged message renders the original", func(t *testing.T) {
		got, err := Dialect{}.RenderMessage([]byte(fullMessage), parsed)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != fullMessage {
			t.Errorf("got\n%s\nwant\n%s", got, fullMessage)
		}
	})
	t.Run("changed message keeps every other field", func(t *testing.T) {
		msg := &cpv1.Message{Id: "ignored", Model: "ignored", StopReason: "end_turn",
			Usage: &cpv1.Usage{InputTokens: 1},
			Content: []*cpv1.ContentBlock{
				parsed.GetContent()[0],
				{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "Blocked by policy."}}},
			}}
		got, err := Dialect{}.RenderMessage([]byte(fullMessage), msg)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[` +
			`{"type":"thinking","thinking":"Let me see.","signature":"c2ln"},` +
			`{"type":"text","text":"Blocked by policy."}],` +
			`"stop_reason":"end_turn","stop_sequence":null,"container":null,` +
			`"usage":{"input_tokens":10,"cache_creation_input_tokens":2,"cache_read_input_tokens":3,"output_tokens":20,"service_tier":"standard"}}`
		if string(got) != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("without original", func(t *testing.T) {
		got, err := Dialect{}.RenderMessage(nil, parsed)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[` +
			`{"type":"thinking","thinking":"Let me see.","signature":"c2ln"},` +
			`{"type":"redacted_thinking","data":"cmVk"},` +
			`{"type":"text","text":"Listing <files>."},` +
			`{"type":"tool_use","id":"toolu_01","name":"bash","input":{"command":"ls"}}],` +
			`"stop_reason":"tool_use","stop_sequence":null,` +
			`"usage":{"input_tokens":10,"output_tokens":20,"cache_creation_input_tokens":2,"cache_read_input_tokens":3}}`
		if string(got) != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
		back, err := Dialect{}.ParseMessage(got)
		if err != nil || !proto.Equal(back, parsed) {
			t.Errorf("parse of render: got %v, %v; want %v", back, err, parsed)
		}
	})
	t.Run("without original, empty message", func(t *testing.T) {
		got, err := Dialect{}.RenderMessage(nil, &cpv1.Message{})
		if err != nil {
			t.Fatal(err)
		}
		want := `{"id":"","type":"message","role":"assistant","model":"","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}`
		if string(got) != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
	t.Run("tool input that is not JSON renders as {}", func(t *testing.T) {
		msg := &cpv1.Message{Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{
			Id: "t", Name: "n", InputJson: []byte(`{"a":`)}}}}}
		got, err := Dialect{}.RenderMessage([]byte(`{"content":[],"stop_reason":"end_turn"}`), msg)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"content":[{"type":"tool_use","id":"t","name":"n","input":{}}],"stop_reason":null}`; string(got) != want {
			t.Errorf("got %s, want %s", got, want)
		}
		if !json.Valid(got) {
			t.Error("invalid JSON")
		}
	})
	t.Run("original not JSON", func(t *testing.T) {
		if _, err := (Dialect{}).RenderMessage([]byte(`nope`), parsed); err == nil {
			t.Error("want an error")
		}
	})
}
