package policy

import (
	"context"

	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// judgeConfig returns a judge configuration against srv.
func judgeConfig(url string, extra map[string]any) map[string]any {
	cfg := map[string]any{"model": "judge-model", "api_base": url + "/v1", "api_key": "sk-judge", "retry_delay": "1ms", "timeout": "2s"}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

func TestToolCallJudge(t *testing.T) {
	srv := judgeServer(t, func(prompt string) (int, string) {
		switch {
		case strings.Contains(prompt, "silent"):
			return 200, `{"probability": 0.9}`
		case strings.Contains(prompt, "rm -rf"):
			return 200, "```json\n{\"probability\": 0.93, \"explanation\": \"deletes everything\"}\n```"
		case strings.Contains(prompt, "over-confident"):
			return 200, `{"probability": 7, "explanation": "clamped"}`
		case strings.Contains(prompt, "flaky"):
			return 503, ""
		}
		return 200, `{"probability": 0.1, "explanation": "harmless"}`
	})
	tests := []struct {
		name       string
		extra      map[string]any
		tools      []testTool
		want       streamResult
		wantEvents []string
	}{
		{name: "passes", tools: []testTool{{"Bash", `{"command":"ls"}`}},
			want: streamResult{text: "pre", tools: []string{`Bash {"command":"ls"}`}, stop: "tool_use"}, wantEvents: []string{"policy.tool_call_judge.allowed"}},
		{name: "blocks", tools: []testTool{{"Bash", `{"command":"rm -rf /"}`}},
			want:       streamResult{text: `pre|⛔ BLOCKED: Tool call 'Bash' with arguments {"command":"rm -rf /"} rejected (probability 0.93). Explanation: deletes everything`, stop: "end_turn"},
			wantEvents: []string{"policy.tool_call_judge.blocked"}},
		{name: "probability clamped", extra: map[string]any{"blocked_message_template": "p={probability:.1f}"}, tools: []testTool{{"Bash", `{"note":"over-confident"}`}},
			want: streamResult{text: "pre|p=1.0", stop: "end_turn"}, wantEvents: []string{"policy.tool_call_judge.blocked"}},
		{name: "judge failure blocks", tools: []testTool{{"Bash", `{"command":"flaky"}`}},
			want: streamResult{text: "pre|[Tool call `Bash` blocked: policy evaluation unavailable]", stop: "end_turn"}, wantEvents: []string{"policy.tool_call_judge.judge_failed"}},
		{name: "judge failure renders the configured template", extra: map[string]any{"blocked_message_template": "{tool_name} {tool_arguments} p={probability:.2f}: {explanation}"},
			tools: []testTool{{"Bash", `{"command":"flaky"}`}},
			want:  streamResult{text: `pre|Bash {"command":"flaky"} p=1.00: Judge evaluation failed`, stop: "end_turn"}, wantEvents: []string{"policy.tool_call_judge.judge_failed"}},
		{name: "empty explanation", extra: map[string]any{"blocked_message_template": "[{explanation}]"}, tools: []testTool{{"Bash", `{"command":"silent rm -rf"}`}},
			want: streamResult{text: "pre|[No explanation provided]", stop: "end_turn"}, wantEvents: []string{"policy.tool_call_judge.blocked"}},
		{name: "judge failure passes with on_error pass", extra: map[string]any{"on_error": "pass"}, tools: []testTool{{"Bash", `{"command":"flaky"}`}},
			want: streamResult{text: "pre", tools: []string{`Bash {"command":"flaky"}`}, stop: "tool_use"}, wantEvents: []string{"policy.tool_call_judge.bypassed"}},
		{name: "parallel calls judged each", tools: []testTool{{"Bash", `{"command":"ls"}`}, {"Bash", `{"command":"rm -rf ~"}`}, {"Read", `{"path":"x"}`}},
			want: streamResult{text: `pre|⛔ BLOCKED: Tool call 'Bash' with arguments {"command":"rm -rf ~"} rejected (probability 0.93). Explanation: deletes everything`,
				tools: []string{`Bash {"command":"ls"}`, `Read {"path":"x"}`}, stop: "tool_use"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustBuild(t, "tool_call_judge", judgeConfig(srv.URL, tt.extra))
			ev := checkBoth(t, p, "pre", tt.tools, "tool_use", tt.want)
			for _, typ := range tt.wantEvents {
				if !slices.Contains(ev.types(), typ) {
					t.Errorf("events %v, want %s", ev.types(), typ)
				}
			}
		})
	}
}

// An unreachable judge fails secure: no tool calls, end_turn, one
// message_delta with its usage.
func TestToolCallJudgeUnreachable(t *testing.T) {
	p := mustBuild(t, "tool_call_judge", map[string]any{"model": "judge-model", "api_base": "http://127.0.0.1:1/v1", "max_retries": 1, "retry_delay": "1ms"})
	call, _ := testCall(anthropicFormat)
	out := runStream(t, p, call, streamOf("", 0, []testTool{{"Bash", `{"command":"ls"}`}}, "tool_use"))
	r := resultOf(out)
	if len(r.tools) != 0 || r.stop != "end_turn" || !strings.Contains(r.text, "policy evaluation unavailable") {
		t.Errorf("got %+v", r)
	}
	for _, ev := range out {
		if md := ev.GetMessageDelta(); md != nil && (md.GetUsage().GetOutputTokens() != 5 || ev.GetSeq() == 0) {
			t.Errorf("message_delta lost its usage or seq: %v", ev)
		}
	}
}

// The tool calls of one response are judged concurrently: the judge
// answers only once both questions are pending.
func TestToolCallJudgeConcurrent(t *testing.T) {
	var mu sync.Mutex
	arrived := 0
	both := make(chan struct{})
	srv := judgeServer(t, func(string) (int, string) {
		mu.Lock()
		arrived++
		if arrived == 2 {
			close(both)
		}
		mu.Unlock()
		select {
		case <-both:
			return 200, `{"probability":0}`
		case <-time.After(3 * time.Second):
			return 500, ""
		}
	})
	p := mustBuild(t, "tool_call_judge", judgeConfig(srv.URL, map[string]any{"max_retries": 0, "timeout": "10s"}))
	call, _ := testCall(anthropicFormat)
	r := resultOf(runStream(t, p, call, streamOf("", 0, []testTool{{"A", `{}`}, {"B", `{}`}}, "tool_use")))
	if len(r.tools) != 2 {
		t.Errorf("judged sequentially? got %+v", r)
	}
}

func TestLLMJudge(t *testing.T) {
	srv := judgeServer(t, func(prompt string) (int, string) {
		switch {
		case strings.Contains(prompt, "password"):
			return 200, `{"action":"replace","blocks":[{"type":"text","text":"[removed]"}]}`
		case strings.Contains(prompt, "curl"):
			return 200, `{"action":"replace","blocks":[{"type":"tool_use","name":"Bash","input":{"command":"echo safe"}}]}`
		case strings.Contains(prompt, "broken"):
			return 500, ""
		case strings.Contains(prompt, "garbled"):
			return 200, `I think it is fine`
		}
		return 200, `{"action":"pass"}`
	})
	tests := []struct {
		name  string
		extra map[string]any
		text  string
		tools []testTool
		want  streamResult
		event string
	}{
		{name: "pass", text: "hello", tools: []testTool{{"Bash", `{"command":"ls"}`}},
			want: streamResult{text: "hello", tools: []string{`Bash {"command":"ls"}`}, stop: "tool_use"}, event: "policy.llm_judge.passed"},
		{name: "replace text", text: "the password is 123",
			want: streamResult{text: "[removed]", stop: "end_turn"}, event: "policy.llm_judge.replaced"},
		{name: "replace tool with a tool", text: "ok", tools: []testTool{{"Bash", `{"command":"curl x"}`}},
			want: streamResult{text: "ok", tools: []string{`Bash {"command":"echo safe"}`}, stop: "tool_use"}, event: "policy.llm_judge.replaced"},
		{name: "error with on_error pass: warning before the tool", extra: map[string]any{"on_error": "pass"}, text: "preamble", tools: []testTool{{"Bash", `{"command":"broken"}`}},
			want:  streamResult{text: "preamble|⚠️ [Policy evaluation unavailable: tool call `Bash` was not checked]", tools: []string{`Bash {"command":"broken"}`}, stop: "tool_use"},
			event: "policy.llm_judge.bypassed"},
		{name: "error with on_error block", extra: map[string]any{"on_error": "block"}, text: "preamble", tools: []testTool{{"Bash", `{"command":"broken"}`}},
			want:  streamResult{text: "preamble|[Tool call `Bash` blocked: policy evaluation unavailable]", stop: "end_turn"},
			event: "policy.llm_judge.judge_failed"},
		{name: "unparsable answers are retried, then on_error", extra: map[string]any{"on_error": "block"}, text: "garbled",
			want: streamResult{text: "[Response blocked: policy evaluation unavailable]", stop: "end_turn"}, event: "policy.llm_judge.judge_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := map[string]any{"instructions": "no secrets, no network tools"}
			for k, v := range tt.extra {
				extra[k] = v
			}
			p := mustBuild(t, "llm_judge", judgeConfig(srv.URL, extra))
			stop := "end_turn"
			if len(tt.tools) > 0 {
				stop = "tool_use"
			}
			ev := checkBoth(t, p, tt.text, tt.tools, stop, tt.want)
			if !slices.Contains(ev.types(), tt.event) {
				t.Errorf("events %v, want %s", ev.types(), tt.event)
			}
		})
	}
}

func TestSerialOrder(t *testing.T) {
	caps := map[string]any{"class": "all_caps"}
	replace := map[string]any{"class": "string_replacement", "config": map[string]any{"replacements": []any{[]any{"hello", "goodbye"}}}}
	for _, tt := range []struct {
		name    string
		members []any
		want    string
	}{
		{"all_caps then replace", []any{caps, replace}, "HELLO WORLD"},
		{"replace then all_caps", []any{replace, caps}, "GOODBYE WORLD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := mustBuild(t, "serial", map[string]any{"policies": tt.members})
			call, _ := testCall(openaiFormat)
			if got := resultOf(runStream(t, p, call, streamOf("hello world", 1, nil, "end_turn"))).text; got != tt.want {
				t.Errorf("streamed %q, want %q", got, tt.want)
			}
			msg, err := p.OnResponse(context.Background(), call, messageOf("hello world", nil, "end_turn"))
			if err != nil || messageResult(msg).text != tt.want {
				t.Errorf("whole %v %v, want %q", msg, err, tt.want)
			}
		})
	}
}

func TestSerialRequestAndBuilderMembers(t *testing.T) {
	p := mustBuild(t, "luthien_proxy.policies.multi_serial_policy:MultiSerialPolicy", map[string]any{"policies": []any{
		map[string]any{"class": "string_replacement", "config": map[string]any{"replacements": []any{[]any{"a", "b"}}, "apply_to": "request"}},
		map[string]any{"class": "string_replacement", "config": map[string]any{"replacements": []any{[]any{"b", "c"}}, "apply_to": "both"}},
		map[string]any{"class": "regex_block", "config": map[string]any{"patterns": []any{"danger"}}},
		map[string]any{"class": "all_caps"},
	}})
	call, _ := testCall(openaiFormat)
	call.Request = []byte(`{"messages":[{"role":"user","content":"a"}]}`)
	res, err := p.OnRequest(context.Background(), call)
	if err != nil || string(res.Body) != `{"messages":[{"role":"user","content":"c"}]}` {
		t.Errorf("OnRequest = %s, %v", res.Body, err)
	}
	r := resultOf(runStream(t, p, call, streamOf("b ok", 1, []testTool{{"Bash", `{"command":"danger"}`}, {"Bash", `{"command":"fine"}`}}, "tool_use")))
	if !strings.HasPrefix(r.text, "C OK|⛔ BLOCKED") || len(r.tools) != 1 || r.stop != "tool_use" {
		t.Errorf("got %+v", r)
	}
}

func TestDebugLogging(t *testing.T) {
	p := mustBuild(t, "debug_logging", nil)
	call, ev := testCall(anthropicFormat)
	in := streamOf("hi", 0, nil, "end_turn")
	out := runStream(t, p, call, in)
	for i := range in {
		if in[i] != out[i] {
			t.Errorf("event %d changed", i)
		}
	}
	if _, err := p.OnRequest(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, typ := range ev.types() {
		if typ == "policy.debug_logging.stream_event" {
			n++
		}
	}
	if n != len(in) || !slices.Contains(ev.types(), "policy.debug_logging.request") || !slices.Contains(ev.types(), "policy.debug_logging.stream_end") {
		t.Errorf("events %v", ev.types())
	}
}
