package policy

import (
	"context"
	"testing"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Which policies look at requests, and a policy that says it does not
// leaves every request alone.
func TestInspectsRequest(t *testing.T) {
	for _, tt := range []struct {
		class string
		cfg   map[string]any
		want  bool
	}{
		{"noop", nil, false},
		{"all_caps", nil, false},
		{"regex_block", map[string]any{"patterns": []any{"rm"}}, false},
		{"sql_protection", nil, false},
		{"tool_call_judge", nil, false},
		{"llm_judge", map[string]any{"instructions": "x"}, false},
		{"string_replacement", map[string]any{"replacements": []any{[]any{"a", "b"}}}, false},
		{"string_replacement", map[string]any{"replacements": []any{[]any{"a", "b"}}, "apply_to": "both"}, true},
		{"string_replacement", map[string]any{"replacements": []any{}, "apply_to": "request"}, false},
		{"debug_logging", nil, true},
		{"serial", map[string]any{"policies": []any{map[string]any{"class": "noop"}, map[string]any{"class": "all_caps"}}}, false},
		{"serial", map[string]any{"policies": []any{map[string]any{"class": "noop"}, map[string]any{"class": "debug_logging"}}}, true},
		{"all_caps", map[string]any{"on_error": "pass", "timeout": "1s"}, false},
		{"debug_logging", map[string]any{"on_error": "pass"}, true},
	} {
		p := mustBuild(t, tt.class, tt.cfg)
		if got := InspectsRequest(p); got != tt.want {
			t.Errorf("%s %v: InspectsRequest = %v, want %v", tt.class, tt.cfg, got, tt.want)
		}
		if tt.want {
			continue
		}
		for format, body := range map[cpv1.ClientFormat]string{
			anthropicFormat: `{"model":"m","max_tokens":5,"system":"a","messages":[{"role":"user","content":"a rm a"}]}`,
			openaiFormat:    `{"model":"m","messages":[{"role":"user","content":"a rm a"}]}`,
		} {
			call, _ := testCall(format)
			call.Request = []byte(body)
			res, err := p.OnRequest(context.Background(), call)
			if err != nil || res.Body != nil || res.Respond != nil || res.Reject != nil {
				t.Errorf("%s says it does not look at requests, yet answered %+v, %v", tt.class, res, err)
			}
		}
	}
}
