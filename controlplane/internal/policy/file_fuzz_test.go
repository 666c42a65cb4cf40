package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzPolicyConfig feeds arbitrary files to the policy config loader and
// whatever it accepts to the registry: neither may panic, a file the
// loader accepts names a class, and a configuration that builds once
// builds again from its JSON form (what SetPolicy receives).
func FuzzPolicyConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "..", "config", "policies", "*.yaml"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	for _, seed := range []string{
		"policy:\n  class: serial\n  config:\n    policies:\n      - {class: serial, config: {policies: [{class: all_caps}]}}\n",
		"policy: {class: regex_block, config: {patterns: ['(', '\\\\']}}\n",
		"policy: {class: string_replacement, config: {replacements: [[a, b], [b]]}}\n",
		"policy: &a {class: noop, config: *a}\n",
		"policy: {class: tool_call_judge, config: {api_base: 'http://[::1', api_key_env: PATH, timeout: -1}}\n",
		"policy:\n  class: noop\n---\npolicy: {class: all_caps}\n",
		"\x00\xff",
	} {
		f.Add([]byte(seed))
	}
	reg, err := NewBuiltin(JudgeAccess{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		class, cfg, err := parseFile(data)
		if err != nil {
			return
		}
		if class == "" || cfg == nil {
			t.Fatalf("accepted a file without a class or with a nil config: %q %v", class, cfg)
		}
		if _, err := reg.Build(class, cfg); err != nil {
			return
		}
		raw, err := json.Marshal(cfg)
		if err != nil {
			return // YAML can hold what JSON cannot (e.g. non-string keys were refused earlier)
		}
		var again map[string]any
		if err := json.Unmarshal(raw, &again); err != nil {
			t.Fatalf("config does not survive JSON: %v", err)
		}
		if _, err := reg.Build(class, again); err != nil {
			t.Fatalf("built from the file but not from its JSON form: %v\nconfig: %s", err, raw)
		}
	})
}
