package policy

import (
	"context"
	"strings"
	"testing"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

func TestStringReplacementStream(t *testing.T) {
	tests := []struct {
		name      string
		pairs     [][]any
		matchCase bool
		text      string
		chunk     int
		want      string
	}{
		{name: "one rune per chunk", pairs: [][]any{{"cat", "dog"}}, text: "a cat sat", chunk: 1, want: "a dog sat"},
		{name: "target split across chunks", pairs: [][]any{{"hello", "bye"}}, text: "say hello now", chunk: 3, want: "say bye now"},
		{name: "target at the end", pairs: [][]any{{"end", "END!"}}, text: "the end", chunk: 2, want: "the END!"},
		{name: "partial target at the end stays", pairs: [][]any{{"ending", "x"}}, text: "the end", chunk: 1, want: "the end"},
		{name: "several targets, in order", pairs: [][]any{{"ab", "1"}, {"abc", "2"}, {"c", "3"}}, text: "abcabc", chunk: 1, want: "1313"},
		{name: "regex metacharacters are literal", pairs: [][]any{{"a.b*", "ok"}}, text: "a.b* axbb", chunk: 1, want: "ok axbb"},
		{name: "unicode", pairs: [][]any{{"café", "thé"}}, text: "un café ☕", chunk: 1, want: "un thé ☕"},
		{name: "capitalization kept", pairs: [][]any{{"hello", "goodbye"}}, matchCase: true, text: "hello Hello HELLO hELLo", chunk: 1,
			want: "goodbye Goodbye GOODBYE gOODbye"},
		{name: "case-sensitive without match_capitalization", pairs: [][]any{{"hello", "bye"}}, text: "hello Hello", chunk: 4, want: "bye Hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pairs := make([]any, len(tt.pairs))
			for i, p := range tt.pairs {
				pairs[i] = p
			}
			p := mustBuild(t, "string_replacement", map[string]any{"replacements": pairs, "match_capitalization": tt.matchCase})
			call, _ := testCall(anthropicFormat)
			out := runStream(t, p, call, streamOf(tt.text, tt.chunk, nil, "end_turn"))
			if got := resultOf(out).text; got != tt.want {
				t.Errorf("streamed %q, want %q", got, tt.want)
			}
			msg, err := p.OnResponse(context.Background(), call, messageOf(tt.text, nil, "end_turn"))
			if err != nil {
				t.Fatal(err)
			}
			if got := messageResult(msg).text; got != tt.want {
				t.Errorf("whole %q, want %q", got, tt.want)
			}
		})
	}
}

// Deltas without a possible match pass through as the input pointers.
func TestStringReplacementPassthrough(t *testing.T) {
	p := mustBuild(t, "string_replacement", map[string]any{"replacements": []any{[]any{"zzz", "y"}}})
	call, _ := testCall(anthropicFormat)
	in := streamOf("hello there", 3, []testTool{{"Bash", `{"command":"zzz"}`}}, "tool_use")
	out := runStream(t, p, call, in)
	if len(out) != len(in) {
		t.Fatalf("%d events out, want %d", len(out), len(in))
	}
	for i := range in {
		if in[i] != out[i] {
			t.Errorf("event %d not passed through: %v", i, out[i])
		}
	}
	msg := messageOf("hello", nil, "end_turn")
	if got, _ := p.OnResponse(context.Background(), call, msg); got != msg {
		t.Error("unchanged message not returned as is")
	}
}

func TestStringReplacementRequest(t *testing.T) {
	p := mustBuild(t, "string_replacement", map[string]any{"replacements": []any{[]any{"secret", "[redacted]"}}, "apply_to": "request"})
	if p.InspectsResponse() {
		t.Error("apply_to request inspects responses")
	}
	tests := []struct {
		name   string
		format cpv1.ClientFormat
		body   string
		want   string
	}{
		{"anthropic string and blocks", anthropicFormat,
			`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"my secret <x>"},{"role":"assistant","content":[{"type":"text","text":"a secret","cache_control":{"type":"ephemeral"}},{"type":"image","source":{}}]}],"zzz":1}`,
			`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"my [redacted] <x>"},{"role":"assistant","content":[{"type":"text","text":"a [redacted]","cache_control":{"type":"ephemeral"}},{"type":"image","source":{}}]}],"zzz":1}`},
		{"openai parts", openaiFormat,
			`{"messages":[{"role":"system","content":"keep"},{"role":"user","content":[{"type":"text","text":"secret!"},{"type":"image_url","image_url":{"url":"u"}}]}],"model":"gpt"}`,
			`{"messages":[{"role":"system","content":"keep"},{"role":"user","content":[{"type":"text","text":"[redacted]!"},{"type":"image_url","image_url":{"url":"u"}}]}],"model":"gpt"}`},
		{"unchanged", openaiFormat, `{"messages":[{"role":"user","content":"nothing"}]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call, events := testCall(tt.format)
			call.Request = []byte(tt.body)
			res, err := p.OnRequest(context.Background(), call)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Body) != tt.want {
				t.Errorf("body\n got %s\nwant %s", res.Body, tt.want)
			}
			if tt.want != "" && len(events.types()) != 1 {
				t.Errorf("events %v, want one request_modified", events.types())
			}
		})
	}
	call, _ := testCall(anthropicFormat)
	call.Request = []byte(`not json`)
	if _, err := p.OnRequest(context.Background(), call); err == nil {
		t.Error("no error for a malformed body")
	}
}

func TestReplacerCapitalization(t *testing.T) {
	r := &replacer{matchCase: true}
	for _, tt := range []struct{ src, to, want string }{
		{"CAT", "dog", "DOG"},
		{"cat", "DOG", "dog"},
		{"Cat", "dOG", "Dog"},
		{"cAt", "dog", "dOg"},
		{"cAT", "mouse", "mOUse"},
		{"C", "dog", "Dog"},
		{"123", "dog", "dog"},
	} {
		if got := r.convert(tt.src, tt.to); got != tt.want {
			t.Errorf("convert(%q, %q) = %q, want %q", tt.src, tt.to, got, tt.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		class   string
		cfg     map[string]any
		wantErr string
	}{
		{"string_replacement", nil, `"replacements"`},
		{"string_replacement", map[string]any{"replacements": []any{[]any{"a"}}}, `"replacements[0]": want a [from, to] pair`},
		{"string_replacement", map[string]any{"replacements": []any{[]any{"", "x"}}}, "from must not be empty"},
		{"string_replacement", map[string]any{"replacements": []any{[]any{"a", "b"}}, "apply_to": "both ways"}, `"apply_to": want one of response, request, both`},
		{"string_replacement", map[string]any{"replacements": []any{[]any{"a", "b"}}, "typo": 1}, `"typo": unknown key`},
		{"string_replacement", map[string]any{"replacements": []any{[]any{"a", "b"}}, "match_capitalization": "yes"}, `"match_capitalization": want true or false`},
		{"regex_block", nil, `"patterns"`},
		{"regex_block", map[string]any{"patterns": []any{"("}}, `"patterns[0]": want a regular expression`},
		{"regex_block", map[string]any{"patterns": "rm"}, `"patterns": want a list of strings`},
		{"tool_call_judge", map[string]any{"probability_threshold": 2}, `"probability_threshold": want a number from 0 to 1`},
		{"tool_call_judge", map[string]any{"timeout": "soon"}, `"timeout": want a duration`},
		{"tool_call_judge", map[string]any{"on_error": "ignore"}, `"on_error": want one of block, pass`},
		{"tool_call_judge", map[string]any{"api_format": "grpc"}, `"api_format"`},
		{"llm_judge", map[string]any{"model": "m"}, `"instructions": required`},
		{"llm_judge", map[string]any{"instructions": "x", "max_retries": 1.5}, `"max_retries": want a whole number`},
		{"sql_protection", map[string]any{"x": 1}, `"x": unknown key`},
		{"serial", nil, `"policies"`},
		{"serial", map[string]any{"policies": []any{map[string]any{"class": "nope"}}}, `policies[0]: unknown policy class "nope"`},
		{"serial", map[string]any{"policies": []any{map[string]any{"class": "regex_block", "config": map[string]any{}}}}, `policies[0]: policy regex_block: config key "patterns"`},
		{"serial", map[string]any{"policies": []any{"all_caps"}}, `"policies[0]": want a mapping`},
	}
	for _, tt := range tests {
		t.Run(tt.class+" "+tt.wantErr, func(t *testing.T) {
			_, err := builtin(t).Build(tt.class, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Build error = %v, want one containing %s", err, tt.wantErr)
			}
		})
	}
}
