package policy

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

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
		{"anthropic system string", anthropicFormat,
			`{"system":"a secret system","messages":[]}`,
			`{"system":"a [redacted] system","messages":[]}`},
		{"anthropic system blocks, no messages", anthropicFormat,
			`{"system":[{"type":"text","text":"secret"}]}`,
			`{"system":[{"type":"text","text":"[redacted]"}]}`},
		{"anthropic tool results, string and blocks, nested; tool calls and thinking kept", anthropicFormat,
			`{"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"secret","signature":"s"},{"type":"tool_use","id":"t1","name":"secret","input":{"q":"secret"}}]},` +
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"the secret is out"},` +
				`{"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"secret one"},{"type":"image","source":{"data":"secret"}},{"type":"search_result","content":[{"type":"text","text":"deep secret"}]}]}]}]}`,
			`{"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"secret","signature":"s"},{"type":"tool_use","id":"t1","name":"secret","input":{"q":"secret"}}]},` +
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"the [redacted] is out"},` +
				`{"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"[redacted] one"},{"type":"image","source":{"data":"secret"}},{"type":"search_result","content":[{"type":"text","text":"deep [redacted]"}]}]}]}]}`},
		{"openai tool and developer messages; tool calls kept", openaiFormat,
			`{"messages":[{"role":"developer","content":"secret rules"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"secret\":1}"}}]},` +
				`{"role":"tool","tool_call_id":"c","content":"secret output"},{"role":"tool","tool_call_id":"d","content":[{"type":"text","text":"more secret"}]}]}`,
			`{"messages":[{"role":"developer","content":"[redacted] rules"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"secret\":1}"}}]},` +
				`{"role":"tool","tool_call_id":"c","content":"[redacted] output"},{"role":"tool","tool_call_id":"d","content":[{"type":"text","text":"more [redacted]"}]}]}`},
		{"openai system is a message, not a field", openaiFormat, `{"system":"secret","messages":[]}`, ""},
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
	// Content nested past any real request's depth is refused, not
	// followed down the stack.
	deep := strings.Repeat(`[{"type":"tool_result","content":`, 40) + `"secret"` + strings.Repeat(`}]`, 40)
	call, _ := testCall(anthropicFormat)
	call.Request = []byte(`{"messages":[{"role":"user","content":` + deep + `}]}`)
	if _, err := p.OnRequest(context.Background(), call); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("deep content: %v", err)
	}
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
		{"string_replacement", map[string]any{"replacements": []any{[]any{"a"}}}, `"replacements[0]": want a [from, to] pair`},
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

// Pairs apply in turn, each to the result of the previous one, as in the
// earlier system, streamed (whatever the chunking) and whole.
func TestStringReplacementSequential(t *testing.T) {
	tests := []struct {
		name      string
		pairs     []any
		matchCase bool
		text      string
		want      string
	}{
		{name: "a pair rewrites the previous one's output", pairs: []any{[]any{"foo", "barbar"}, []any{"bar", "y"}}, text: "foobar", want: "yyy"},
		{name: "a later pair sees no text an earlier one replaced", pairs: []any{[]any{"cat", "dog"}, []any{"cat", "x"}}, text: "cat", want: "dog"},
		{name: "swap is not a swap", pairs: []any{[]any{"a", "b"}, []any{"b", "a"}}, text: "ab", want: "aa"},
		{name: "a match made of two replacements", pairs: []any{[]any{"x", "he"}, []any{"y", "llo"}, []any{"hello", "bye"}}, text: "xy!", want: "bye!"},
		{name: "with capitalization", pairs: []any{[]any{"foo", "barbar"}, []any{"bar", "y"}}, matchCase: true, text: "Foo BAR", want: "Yy Y"},
	}
	for _, tt := range tests {
		p := mustBuild(t, "string_replacement", map[string]any{"replacements": tt.pairs, "match_capitalization": tt.matchCase})
		call, _ := testCall(anthropicFormat)
		msg, err := p.OnResponse(context.Background(), call, messageOf(tt.text, nil, "end_turn"))
		if err != nil {
			t.Fatal(err)
		}
		if got := messageResult(msg).text; got != tt.want {
			t.Errorf("%s: whole %q, want %q", tt.name, got, tt.want)
		}
		for chunk := 1; chunk <= len(tt.text); chunk++ {
			if got := resultOf(runStream(t, p, call, streamOf(tt.text, chunk, nil, "end_turn"))).text; got != tt.want {
				t.Errorf("%s: streamed in chunks of %d: %q, want %q", tt.name, chunk, got, tt.want)
			}
		}
	}
}

// Streamed and whole replacement agree on any text and chunking.
func FuzzStringReplacementStream(f *testing.F) {
	f.Add("foobar barfoo", "foo", "barbar", "bar", "y", uint8(2), false)
	f.Add("Hello HELLO", "hello", "x", "xx", "hello", uint8(1), true)
	f.Fuzz(func(t *testing.T, text, from1, to1, from2, to2 string, chunk uint8, matchCase bool) {
		if from1 == "" || from2 == "" || chunk == 0 || !utf8.ValidString(text+from1+to1+from2+to2) {
			return
		}
		p := mustBuild(t, "string_replacement", map[string]any{
			"replacements": []any{[]any{from1, to1}, []any{from2, to2}}, "match_capitalization": matchCase})
		call, _ := testCall(anthropicFormat)
		msg, err := p.OnResponse(context.Background(), call, messageOf(text, nil, "end_turn"))
		if err != nil {
			t.Fatal(err)
		}
		whole := messageResult(msg).text
		if got := resultOf(runStream(t, p, call, streamOf(text, int(chunk), nil, "end_turn"))).text; got != whole {
			t.Errorf("streamed %q, whole %q", got, whole)
		}
	})
}

// Configurations the earlier system ran as no-ops load with a warning and
// change nothing.
func TestNoOpConfigurationsWarn(t *testing.T) {
	for _, tt := range []struct {
		class string
		cfg   map[string]any
		want  string
	}{
		{"string_replacement", nil, "no pair to apply"},
		{"string_replacement", map[string]any{"replacements": []any{}}, "no pair to apply"},
		{"string_replacement", map[string]any{"replacements": []any{[]any{"", "x"}, []any{"a", "b"}}}, "replacements[0]: from is empty"},
		{"serial", map[string]any{"policies": []any{}}, "the chain is empty"},
		{"serial", map[string]any{"policies": []any{map[string]any{"class": "string_replacement", "config": map[string]any{"replacements": []any{}}}}}, "policies[0]: replacements: no pair"},
		{"string_replacement", map[string]any{"replacements": []any{}, "on_error": "pass"}, "no pair to apply"},
	} {
		p := mustBuild(t, tt.class, tt.cfg)
		ws := Warnings(p)
		if len(ws) == 0 || !strings.Contains(strings.Join(ws, "\n"), tt.want) {
			t.Errorf("%s %v: warnings %q, want one containing %q", tt.class, tt.cfg, ws, tt.want)
		}
	}
	p := mustBuild(t, "string_replacement", map[string]any{"replacements": []any{}, "apply_to": "both"})
	if p.InspectsResponse() {
		t.Error("an empty replacement list inspects responses")
	}
	call, _ := testCall(anthropicFormat)
	call.Request = []byte(`{"messages":[{"role":"user","content":"a"}]}`)
	if res, err := p.OnRequest(context.Background(), call); err != nil || res.Body != nil {
		t.Errorf("OnRequest = %v, %v", res, err)
	}
	if ws := Warnings(mustBuild(t, "string_replacement", map[string]any{"replacements": []any{[]any{"a", "b"}}})); len(ws) != 0 {
		t.Errorf("warnings for a sound configuration: %q", ws)
	}
}
