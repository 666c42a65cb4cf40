package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}

func TestLoadFile(t *testing.T) {
	tests := []struct {
		name      string
		content   string
		wantClass string
		wantCfg   map[string]any
		wantErrIn []string // substrings of the error; nil means success
	}{
		{
			name:      "class and empty config",
			content:   "policy:\n  class: all_caps\n  config: {}\n",
			wantClass: "all_caps",
			wantCfg:   map[string]any{},
		},
		{
			name:      "no config",
			content:   "# comment\npolicy:\n  class: noop\n",
			wantClass: "noop",
			wantCfg:   map[string]any{},
		},
		{
			name:      "null config",
			content:   "policy:\n  class: noop\n  config:\n",
			wantClass: "noop",
			wantCfg:   map[string]any{},
		},
		{
			name:      "alias class",
			content:   "policy:\n  class: \"luthien_proxy.policies.all_caps_policy:AllCapsPolicy\"\n",
			wantClass: "luthien_proxy.policies.all_caps_policy:AllCapsPolicy",
			wantCfg:   map[string]any{},
		},
		{
			name:      "config values are normalized",
			content:   "policy:\n  class: x\n  config:\n    n: 3\n    list: [a, 2.5]\n    nested: {flag: true, when: 2024-01-02}\n",
			wantClass: "x",
			wantCfg: map[string]any{
				"n":      float64(3),
				"list":   []any{"a", 2.5},
				"nested": map[string]any{"flag": true, "when": "2024-01-02"},
			},
		},
		{name: "empty file", content: "", wantErrIn: []string{"missing policy.class", "empty"}},
		{name: "comments only", content: "# nothing\n", wantErrIn: []string{"missing policy.class"}},
		{name: "no policy key", content: "{}\n", wantErrIn: []string{"missing policy.class", `no top-level key "policy"`}},
		{name: "empty policy", content: "policy:\n", wantErrIn: []string{"line 1", "missing policy.class"}},
		{name: "missing class", content: "policy:\n  config: {}\n", wantErrIn: []string{"line 2", "missing policy.class"}},
		{name: "empty class", content: "policy:\n  class: \"\"\n", wantErrIn: []string{"line 2", "policy.class: want a non-empty string"}},
		{name: "class not a string", content: "policy:\n  class: [a]\n", wantErrIn: []string{"policy.class: want a non-empty string"}},
		{name: "class a number", content: "policy:\n  class: 3\n", wantErrIn: []string{"policy.class: want a non-empty string"}},
		{
			name:      "unknown top-level key",
			content:   "policy:\n  class: noop\npolicies: []\n",
			wantErrIn: []string{"line 3", `unknown key "policies"`, `"policy"`},
		},
		{
			name:      "unknown policy key",
			content:   "policy:\n  class: noop\n  options: {}\n",
			wantErrIn: []string{"line 3", `policy: unknown key "options"`, `"class", "config"`},
		},
		{name: "duplicate key", content: "policy:\n  class: noop\n  class: all_caps\n", wantErrIn: []string{"line 3", `key "class" appears twice`}},
		{name: "top level not a mapping", content: "- policy\n", wantErrIn: []string{"line 1", "the top level: want a mapping"}},
		{name: "policy not a mapping", content: "policy: noop\n", wantErrIn: []string{"line 1", "policy: want a mapping"}},
		{name: "config not a mapping", content: "policy:\n  class: noop\n  config: [1]\n", wantErrIn: []string{"line 3", "policy.config: want a mapping"}},
		{name: "syntax error", content: "policy:\n  class: noop\n   config: {\n", wantErrIn: []string{"yaml", "line 3"}},
		{name: "two documents", content: "policy:\n  class: noop\n---\npolicy:\n  class: all_caps\n", wantErrIn: []string{"single YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			class, cfg, err := LoadFile(path)
			if tt.wantErrIn != nil {
				if err == nil {
					t.Fatalf("LoadFile = %q, %v; want an error", class, cfg)
				}
				for _, want := range append(tt.wantErrIn, path) {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("LoadFile error %q does not contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadFile: %v", err)
			}
			if class != tt.wantClass {
				t.Errorf("class = %q, want %q", class, tt.wantClass)
			}
			if !reflect.DeepEqual(cfg, tt.wantCfg) {
				t.Errorf("config = %#v, want %#v", cfg, tt.wantCfg)
			}
		})
	}
}

func TestLoadFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, _, err := LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), "load policy config") || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadFile(absent) error = %v", err)
	}
}

// TestExampleConfigs loads and builds every example under config/policies.
func TestExampleConfigs(t *testing.T) {
	paths, err := filepath.Glob("../../../config/policies/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no example policy configs found")
	}
	r := builtin(t)
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			class, cfg, err := LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Build(class, cfg); err != nil {
				t.Fatal(err)
			}
		})
	}
}
