package policy

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// earlierClasses reads the class paths the earlier system shipped.
func earlierClasses(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("testdata/earlier_classes.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 60 {
		t.Fatalf("only %d earlier class paths read", len(out))
	}
	return out
}

// minimalConfig is the smallest valid configuration of a class.
func minimalConfig(class string) map[string]any {
	switch class {
	case "string_replacement":
		return map[string]any{"replacements": []any{[]any{"a", "b"}}}
	case "regex_block":
		return map[string]any{"patterns": []any{"x"}}
	case "llm_judge":
		return map[string]any{"instructions": "x"}
	case "serial":
		return map[string]any{"policies": []any{map[string]any{"class": "noop"}}}
	}
	return nil
}

// Every class path the earlier system shipped either builds here, with
// the smallest configuration of its class (a preset or an earlier class
// with defaults with none at all), or is refused saying why it has no
// counterpart; and no name is accepted that the earlier system never
// shipped.
func TestEarlierClassPaths(t *testing.T) {
	r := builtin(t)
	shipped := map[string]bool{}
	for _, name := range earlierClasses(t) {
		shipped[name] = true
		t.Run(name, func(t *testing.T) {
			if why, ok := unported[name]; ok {
				_, err := r.Build(name, nil)
				if err == nil || !strings.Contains(err.Error(), "has no counterpart here: "+why) {
					t.Fatalf("Build = %v, want the refusal with its reason", err)
				}
				return
			}
			class, _, err := r.Resolve(name, nil)
			if err != nil {
				t.Fatalf("earlier class path refused: %v", err)
			}
			cfg := minimalConfig(class)
			if l := r.names[name].legacy; l != nil && l.Defaults["instructions"] != nil || name == dogfoodSafety.Name {
				cfg = nil // a preset's defaults make it whole
			}
			p, err := r.Build(name, cfg)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if p.Name() != class {
				t.Errorf("built %s, want %s", p.Name(), class)
			}
		})
	}
	for _, typ := range r.Types() {
		for _, name := range typ.AllAliases() {
			if !shipped[name] {
				t.Errorf("%s accepts %q, a class path the earlier system never shipped", typ.Class, name)
			}
		}
	}
	for name := range unported {
		if !shipped[name] {
			t.Errorf("unported lists %q, a class path the earlier system never shipped", name)
		}
	}
}

// An earlier class path's configuration is adapted: keys renamed,
// defaults filled, a key given under both names refused; what Resolve
// returns builds the same policy under the class's own name.
func TestLegacyConfig(t *testing.T) {
	r := builtin(t)
	const dogfood = earlier + "dogfood_safety_policy:DogfoodSafetyPolicy"
	class, cfg, err := r.Resolve(dogfood, map[string]any{"blocked_patterns": []any{"boom"}, "tool_names": []any{"Bash"}})
	if err != nil {
		t.Fatal(err)
	}
	if class != "regex_block" || cfg["patterns"].([]any)[0] != "boom" || cfg["blocked_patterns"] != nil {
		t.Errorf("resolved %s %v", class, cfg)
	}
	if !strings.Contains(cfg["message"].(string), "DogfoodSafetyPolicy") {
		t.Errorf("default message not filled: %v", cfg["message"])
	}
	if _, err := r.Build(class, cfg); err != nil {
		t.Errorf("resolved configuration does not build: %v", err)
	}
	_, err = r.Build(dogfood, map[string]any{"blocked_patterns": []any{"a"}, "patterns": []any{"b"}})
	if err == nil || !strings.Contains(err.Error(), `"blocked_patterns": given together with "patterns"`) {
		t.Errorf("both names: %v", err)
	}

	// The earlier simple LLM policy passes on a judge failure by default;
	// llm_judge blocks; a preset keeps its own choice.
	for _, tt := range []struct{ name, want string }{
		{earlier + "simple_llm_policy:SimpleLLMPolicy", onErrorPass},
		{"llm_judge", ""},
		{earlier + "presets.block_dangerous_commands:BlockDangerousCommandsPolicy", onErrorBlock},
		{earlier + "presets.no_yapping:NoYappingPolicy", onErrorPass},
	} {
		_, cfg, err := r.Resolve(tt.name, map[string]any{"instructions": "x"})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := cfg["on_error"].(string); got != tt.want {
			t.Errorf("%s: on_error %q, want %q", tt.name, got, tt.want)
		}
	}
	// A default is copied, never shared between configurations.
	_, a, _ := r.Resolve(dogfood, nil)
	a["patterns"].([]any)[0] = "changed"
	_, b, _ := r.Resolve(dogfood, nil)
	if b["patterns"].([]any)[0] == "changed" {
		t.Error("a default is shared between configurations")
	}
}
