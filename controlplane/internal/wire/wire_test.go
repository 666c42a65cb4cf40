package wire

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	openAI    = cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT
	anthropic = cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES
)

// upper uppercases every text block, as all_caps does.
func upper(msg *cpv1.Message) *cpv1.Message {
	out := proto.CloneOf(msg)
	for _, b := range out.GetContent() {
		if t := b.GetText(); t != nil {
			t.Text = strings.ToUpper(t.GetText())
		}
	}
	return out
}

// dropTools removes every tool call and ends the turn, as a blocking
// policy does.
func dropTools(msg *cpv1.Message) *cpv1.Message {
	out := proto.CloneOf(msg)
	out.Content = nil
	for _, b := range msg.GetContent() {
		if b.GetToolUse() == nil {
			out.Content = append(out.Content, proto.CloneOf(b))
		}
	}
	out.Content = append(out.Content, &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "blocked"}}})
	out.StopReason = "end_turn"
	return out
}

// TestRenderOverOriginal parses each testdata/<name>.json, changes the
// message and renders it over the original: the result must equal
// testdata/<name>.golden (go test -update rewrites it), and rendering the
// unchanged message must change nothing but what the message covers.
func TestRenderOverOriginal(t *testing.T) {
	tests := []struct {
		name      string
		format    cpv1.ClientFormat
		change    func(*cpv1.Message) *cpv1.Message
		wantTexts []string
	}{
		{name: "anthropic_text_upper", format: anthropic, change: upper, wantTexts: []string{"HELLO <WORLD>"}},
		{name: "anthropic_tools_dropped", format: anthropic, change: dropTools, wantTexts: []string{"let me look", "blocked"}},
		{name: "openai_text_upper", format: openAI, change: upper, wantTexts: []string{"HELLO <WORLD>"}},
		{name: "openai_tools_dropped", format: openAI, change: dropTools, wantTexts: []string{"let me lookblocked"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			original, err := os.ReadFile(filepath.Join("testdata", tt.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			msg, err := ParseMessage(tt.format, original)
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			got, err := RenderMessage(tt.format, original, tt.change(msg))
			if err != nil {
				t.Fatalf("RenderMessage: %v", err)
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, bytes.TrimSuffix(want, []byte("\n"))) {
				t.Errorf("rendered\n%s\nwant\n%s", got, want)
			}
			back, err := ParseMessage(tt.format, got)
			if err != nil {
				t.Fatalf("ParseMessage(rendered): %v", err)
			}
			var texts []string
			for _, b := range back.GetContent() {
				if b.GetText() != nil {
					texts = append(texts, b.GetText().GetText())
				}
			}
			if strings.Join(texts, "|") != strings.Join(tt.wantTexts, "|") {
				t.Errorf("texts after the round trip %q, want %q", texts, tt.wantTexts)
			}
			same, err := RenderMessage(tt.format, original, msg)
			if err != nil {
				t.Fatalf("RenderMessage(unchanged): %v", err)
			}
			if !jsonEqual(t, same, original) {
				t.Errorf("rendering the unchanged message changed the response:\n%s\nfrom\n%s", same, original)
			}
		})
	}
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

// TestRenderWhole renders a message without an original, as an answer a
// policy gives itself, and reads it back.
func TestRenderWhole(t *testing.T) {
	msg := &cpv1.Message{Id: "msg_local", Model: "m", StopReason: "end_turn",
		Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "refused"}}}},
		Usage:   &cpv1.Usage{InputTokens: 1, OutputTokens: 2}}
	for _, format := range []cpv1.ClientFormat{openAI, anthropic} {
		t.Run(format.String(), func(t *testing.T) {
			got, err := RenderMessage(format, nil, msg)
			if err != nil {
				t.Fatalf("RenderMessage: %v", err)
			}
			back, err := ParseMessage(format, got)
			if err != nil {
				t.Fatalf("ParseMessage(%s): %v", got, err)
			}
			if !proto.Equal(back, msg) {
				t.Errorf("round trip of %s = %v, want %v", got, back, msg)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		format cpv1.ClientFormat
		body   string
	}{
		{name: "openai not JSON", format: openAI, body: `{"choices":`},
		{name: "anthropic not JSON", format: anthropic, body: `nope`},
		{name: "anthropic content not a list", format: anthropic, body: `{"content":"text"}`},
		{name: "unspecified format", format: cpv1.ClientFormat_CLIENT_FORMAT_UNSPECIFIED, body: `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if msg, err := ParseMessage(tt.format, []byte(tt.body)); err == nil {
				t.Errorf("ParseMessage(%s) = %v, want an error", tt.body, msg)
			}
		})
	}
}
