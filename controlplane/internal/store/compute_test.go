package store

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

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
	anthropicReq := []byte(`{"system":[{"type":"text","text":"You are terse."}],"messages":[
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
	if preview != "List files, key [redacted:api-key]" {
		t.Errorf("preview = %q", preview)
	}
	openaiReq := []byte(`{"messages":[{"role":"system","content":"sys"},{"role":"user","content":"` + strings.Repeat("é", 300) + `"},
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

func TestTakePayload(t *testing.T) {
	body := []byte(`{"model":"m","messages":[]}`)
	tests := []struct {
		name string
		ev   *cpv1.CallEvent
		want string
	}{
		{"object kept as sent", &cpv1.CallEvent{PayloadJson: body}, string(body)},
		{"not an object", &cpv1.CallEvent{PayloadJson: []byte(`upstream said "no"`)}, `{"raw":"upstream said \"no\""}`},
		{"an array", &cpv1.CallEvent{PayloadJson: []byte(`[1,2]`)}, `{"raw":"[1,2]"}`},
		{"broken object", &cpv1.CallEvent{PayloadJson: []byte(`{"a":`)}, `{"raw":"{\"a\":"}`},
		{"a Struct from a writer", &cpv1.CallEvent{Payload: &structpb.Struct{Fields: map[string]*structpb.Value{
			"n": structpb.NewNumberValue(2)}}}, `{"n":2}`},
		{"payload_json wins", &cpv1.CallEvent{PayloadJson: []byte(`{"a":1}`), Payload: &structpb.Struct{}}, `{"a":1}`},
		{"nothing", &cpv1.CallEvent{}, `{}`},
		{"a credential", &cpv1.CallEvent{PayloadJson: []byte(`{"headers":{"x-api-key":"secret1"}}`)}, `{"headers":{"x-api-key":"[redacted]"}}`},
	}
	for _, tt := range tests {
		TakePayload(tt.ev)
		if got := string(tt.ev.GetPayloadJson()); got != tt.want || tt.ev.GetPayload() != nil {
			t.Errorf("%s: payload_json %s (payload %v), want %s", tt.name, got, tt.ev.GetPayload(), tt.want)
		}
	}
	// Readers get a Struct, in a copy: the stored event keeps its text.
	ev := &cpv1.CallEvent{EventType: "request.received", PayloadJson: body}
	r := Readable(ev)
	if r == ev || len(r.GetPayloadJson()) != 0 || r.GetPayload().GetFields()["model"].GetStringValue() != "m" || len(ev.GetPayloadJson()) == 0 {
		t.Errorf("Readable = %v (stored %v)", r, ev)
	}
}
