package policy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// judgeMember is a serial member running a judge with an inline key.
func judgeMember(class, base, key string) map[string]any {
	cfg := map[string]any{"model": "judge-model", "api_base": base, "api_key": key}
	if class == "llm_judge" {
		cfg["instructions"] = "be nice"
	}
	return map[string]any{"class": class, "config": cfg}
}

// The judges' api_key is marked secret in their schemas.
func TestSecretSchema(t *testing.T) {
	r := builtin(t)
	for _, class := range []string{"tool_call_judge", "llm_judge"} {
		typ, _ := r.lookup(class)
		var s struct {
			Properties map[string]map[string]any `json:"properties"`
		}
		if err := json.Unmarshal([]byte(typ.ConfigSchema), &s); err != nil {
			t.Fatal(err)
		}
		key := s.Properties["api_key"]
		if key["writeOnly"] != true || key["x-secret"] != true {
			t.Errorf("%s: api_key schema %v", class, key)
		}
		if s.Properties["api_key_env"] == nil || s.Properties["api_key_env"]["x-secret"] != nil {
			t.Errorf("%s: api_key_env schema %v", class, s.Properties["api_key_env"])
		}
	}
}

// Redact hides every secret, at any depth of serial chains, and leaves the
// input alone; InlineSecrets lists their paths.
func TestRedact(t *testing.T) {
	r := builtin(t)
	cfg := map[string]any{"policies": []any{
		map[string]any{"class": "regex_block", "config": map[string]any{"patterns": []any{"rm"}}},
		judgeMember("tool_call_judge", "http://a/v1", "sk-one"),
		map[string]any{"class": "luthien_proxy.policies.multi_serial_policy:MultiSerialPolicy", "config": map[string]any{"policies": []any{
			judgeMember("llm_judge", "http://b/v1", "sk-two"),
			map[string]any{"class": "llm_judge", "config": map[string]any{"instructions": "x", "api_key": ""}},
		}}},
		map[string]any{"class": "all_caps"},
	}}
	orig, _ := json.Marshal(cfg)
	red := r.Redact("serial", cfg)
	out, _ := json.Marshal(red)
	if strings.Contains(string(out), "sk-one") || strings.Contains(string(out), "sk-two") || strings.Count(string(out), `"***"`) != 2 {
		t.Errorf("redacted: %s", out)
	}
	if after, _ := json.Marshal(cfg); string(after) != string(orig) {
		t.Errorf("input changed: %s", after)
	}
	want := []string{"policies[1].config.api_key", "policies[2].config.policies[0].config.api_key"}
	if got := r.InlineSecrets("serial", cfg); !reflect.DeepEqual(got, want) {
		t.Errorf("InlineSecrets = %q, want %q", got, want)
	}
	top := map[string]any{"model": "m", "api_key": "sk-top"}
	if got := r.Redact("tool_call_judge", top)["api_key"]; got != SecretPlaceholder || top["api_key"] != "sk-top" {
		t.Errorf("top-level: %v, input %v", got, top)
	}
	if got := r.Redact("all_caps", map[string]any{"api_key": "not a secret of all_caps"}); got["api_key"] != "not a secret of all_caps" {
		t.Errorf("all_caps: %v", got)
	}
}

// KeepSecrets puts the stored value back for a placeholder at the same
// path, and refuses a placeholder with no stored value there or whose
// judge now points elsewhere.
func TestKeepSecrets(t *testing.T) {
	r := builtin(t)
	prev := map[string]any{"policies": []any{
		map[string]any{"class": "all_caps"},
		judgeMember("tool_call_judge", "http://a/v1", "sk-one"),
	}}
	tests := []struct {
		name    string
		class   string
		cfg     map[string]any
		want    string // the key of the judge at policies[1], or of the top-level judge
		wantErr string
	}{
		{name: "same chain", class: "serial", cfg: map[string]any{"policies": []any{
			map[string]any{"class": "all_caps"}, judgeMember("tool_call_judge", "http://a/v1", "***")}}, want: "sk-one"},
		{name: "other judge class, same endpoint", class: "serial", cfg: map[string]any{"policies": []any{
			map[string]any{"class": "noop"}, judgeMember("llm_judge", "http://a:80/v1/", "***")}}, want: "sk-one"},
		{name: "new value", class: "serial", cfg: map[string]any{"policies": []any{
			map[string]any{"class": "all_caps"}, judgeMember("tool_call_judge", "http://b/v1", "sk-new")}}, want: "sk-new"},
		{name: "moved: no stored secret at the new path", class: "serial", cfg: map[string]any{"policies": []any{
			judgeMember("tool_call_judge", "http://a/v1", "***"), map[string]any{"class": "all_caps"}}},
			wantErr: `config key "policies[0].config.api_key": "***" stands for the stored secret, but the active policy has none at this path`},
		{name: "other endpoint", class: "serial", cfg: map[string]any{"policies": []any{
			map[string]any{"class": "all_caps"}, judgeMember("tool_call_judge", "http://evil/v1", "***")}},
			wantErr: `config key "policies[1].config.api_key": "***" keeps the stored secret only for the same endpoint`},
		{name: "other endpoint by format", class: "serial", cfg: map[string]any{"policies": []any{
			map[string]any{"class": "all_caps"}, map[string]any{"class": "tool_call_judge", "config": map[string]any{"model": "claude-x", "api_key": "***"}}}},
			wantErr: "only for the same endpoint"},
		{name: "longer chain", class: "serial", cfg: map[string]any{"policies": []any{
			map[string]any{"class": "all_caps"}, judgeMember("tool_call_judge", "http://a/v1", "***"), judgeMember("tool_call_judge", "http://a/v1", "***")}},
			wantErr: `config key "policies[2].config.api_key"`},
		{name: "top-level judge where a chain was", class: "tool_call_judge", cfg: map[string]any{"api_base": "http://a/v1", "api_key": "***"},
			wantErr: `config key "api_key"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := json.Marshal(tt.cfg)
			got, err := r.KeepSecrets(tt.class, tt.cfg, "serial", prev)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			member := got["policies"].([]any)[1].(map[string]any)["config"].(map[string]any)
			if member["api_key"] != tt.want {
				t.Errorf("api_key = %v, want %s", member["api_key"], tt.want)
			}
			if after, _ := json.Marshal(tt.cfg); string(after) != string(before) {
				t.Errorf("input changed: %s", after)
			}
			if _, err := r.Build(tt.class, got); err != nil {
				t.Errorf("Build: %v", err)
			}
		})
	}
	got, err := r.KeepSecrets("llm_judge", map[string]any{"instructions": "x", "api_key": "***"}, "llm_judge", map[string]any{"instructions": "y", "api_key": "sk-top"})
	if err != nil || got["api_key"] != "sk-top" {
		t.Errorf("top-level: %v %v", got, err)
	}
}
