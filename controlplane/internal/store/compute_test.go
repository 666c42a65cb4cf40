package store

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

func TestRedact(t *testing.T) {
	s := jsonStruct(t, `{
		"headers": {"Authorization": "Bearer abc", "X-Api-Key": "k", "cookie": "a=b", "user-agent": "ua"},
		"api_key": "plain", "nested": [{"Set-Cookie": "s"}, "my key is sk-ant-api03-SECRETSECRET ok"],
		"note": "token: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "short": "sk-abc", "n": 3}`)
	RedactStruct(s)
	out, _ := protojson.Marshal(s)
	for _, secret := range []string{"Bearer abc", `"k"`, "a=b", "plain", `"s"`, "SECRETSECRET", "eyJhbGci"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("redacted payload still contains %s: %s", secret, out)
		}
	}
	for _, kept := range []string{`"ua"`, "my key is [redacted] ok", "sk-abc", `"n":3`} {
		if !strings.Contains(strings.ReplaceAll(string(out), " ", ""), strings.ReplaceAll(kept, " ", "")) {
			t.Errorf("redacted payload lost %s: %s", kept, out)
		}
	}
	m := RedactMap(map[string]any{"API-KEY": "x", "list": []any{"sk-1234567890abcdef"}}).(map[string]any)
	if m["API-KEY"] != Redacted || m["list"].([]any)[0] != Redacted {
		t.Errorf("RedactMap = %v", m)
	}
}

func TestDiff(t *testing.T) {
	a := jsonStruct(t, `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":1,"a/b":1}`)
	b := jsonStruct(t, `{"model":"m","messages":[{"role":"user","content":"HI"},{"role":"user","content":"more"}],"max_tokens":5,"a/b":1}`)
	d := Diff(a, b)
	if !d.GetChanged() {
		t.Fatal("not changed")
	}
	var got []string
	for _, c := range d.GetChanges() {
		got = append(got, c.GetOp()+" "+c.GetPath())
	}
	want := []string{"added /max_tokens", "changed /messages/0/content", "added /messages/1", "removed /temperature"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("changes %v, want %v", got, want)
	}
	if c := d.GetChanges()[1]; c.GetBefore().GetStringValue() != "hi" || c.GetAfter().GetStringValue() != "HI" {
		t.Errorf("change %v", c)
	}
	if d := Diff(a, a); d.GetChanged() || len(d.GetChanges()) != 0 {
		t.Errorf("a document differs from itself: %v", d.GetChanges())
	}
	if d := Diff(nil, b); d.GetChanged() || d.GetOriginal() != b {
		t.Errorf("a missing original: %v", d)
	}
	if d := Diff(nil, nil); d.GetChanged() || d.GetFinal() != nil {
		t.Errorf("two missing documents: %v", d)
	}
	if got := escapePointer("a/b~c"); got != "a~1b~0c" {
		t.Errorf("escapePointer = %q", got)
	}
}

func TestConversationText(t *testing.T) {
	anthropicReq := jsonStruct(t, `{"system":[{"type":"text","text":"You are terse."}],"messages":[
		{"role":"user","content":[{"type":"text","text":"List files, key sk-live-0123456789"}]},
		{"role":"assistant","content":[{"type":"tool_use","name":"bash","input":{"command":"ls"}}]},
		{"role":"user","content":[{"type":"tool_result","content":[{"type":"text","text":"a.txt"}]}]}]}`)
	resp := &cpv1.Message{Content: []*cpv1.ContentBlock{
		{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "Here they are."}}},
		{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Name: "read", InputJson: []byte(`{"path":"a.txt"}`)}}},
	}}
	text, preview := ConversationText(anthropicReq, resp)
	for _, want := range []string{"You are terse.", "List files", "bash", `"command":"ls"`, "a.txt", "Here they are.", `read {"path":"a.txt"}`} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "0123456789") || strings.Contains(preview, "0123456789") {
		t.Errorf("text or preview has the key: %q / %q", text, preview)
	}
	if preview != "List files, key [redacted]" {
		t.Errorf("preview = %q", preview)
	}
	openaiReq := jsonStruct(t, `{"messages":[{"role":"system","content":"sys"},{"role":"user","content":"`+strings.Repeat("é", 300)+`"},
		{"role":"assistant","tool_calls":[{"function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]}]}`)
	text, preview = ConversationText(openaiReq, nil)
	if !strings.Contains(text, "sys") || !strings.Contains(text, `get_weather {"city":"Oslo"}`) {
		t.Errorf("openai text = %q", text)
	}
	if preview != strings.Repeat("é", previewRunes) {
		t.Errorf("preview has %d runes, want %d", len([]rune(preview)), previewRunes)
	}
}

func TestSnippet(t *testing.T) {
	text := strings.Repeat("x", 200) + " Firewall rules " + strings.Repeat("y", 200)
	got := snippet(text, []string{"firewall"})
	if !strings.Contains(got, "**Firewall**") || !strings.HasPrefix(got, "…") || !strings.HasSuffix(got, "…") || len(got) > 250 {
		t.Errorf("snippet = %q", got)
	}
}

func TestRedactString(t *testing.T) {
	tests := map[string]string{
		`{"model":"m","api_key":"abc\"def","x":1}`:       `{"model":"m","api_key":"[redacted]","x":1}`,
		`{\"Authorization\": \"Token abc\", \"a\": 1}`:   `{\"Authorization\": \"[redacted]\", \"a\": 1}`,
		`curl -H "x-api-key: abcdef123" https://x`:       `curl -H "x-api-key: [redacted]" https://x`,
		`GET /v1?api_key=abcdef123&q=1`:                  `GET /v1?api_key=[redacted]&q=1`,
		`Cookie: session=abcdef`:                         `Cookie: [redacted]`,
		`the keyboard is fine, sk-short stays`:           `the keyboard is fine, sk-short stays`,
		`use sk-proj-ABCDEFGHIJKLMNOP now`:               `use [redacted] now`,
		`Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x.y`: `Authorization: [redacted]`,
	}
	for in, want := range tests {
		if got := RedactString(in); got != want {
			t.Errorf("RedactString(%s)\n = %s\nwant %s", in, got, want)
		}
	}
}
