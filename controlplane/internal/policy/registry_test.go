package policy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func builtin(t *testing.T) *Registry {
	t.Helper()
	r, err := Builtin()
	if err != nil {
		t.Fatalf("Builtin: %v", err)
	}
	return r
}

func TestBuild(t *testing.T) {
	r := builtin(t)
	tests := []struct {
		name      string
		class     string
		cfg       map[string]any
		wantName  string
		wantErrIn []string // substrings of the error; nil means success
	}{
		{name: "noop short name", class: "noop", wantName: "noop"},
		{name: "noop alias", class: "luthien_proxy.policies.noop_policy:NoOpPolicy", wantName: "noop"},
		{name: "noop empty config", class: "noop", cfg: map[string]any{}, wantName: "noop"},
		{name: "all_caps short name", class: "all_caps", wantName: "all_caps"},
		{name: "all_caps alias", class: "luthien_proxy.policies.all_caps_policy:AllCapsPolicy", wantName: "all_caps"},
		{name: "surrounding space", class: " all_caps\n", wantName: "all_caps"},
		{
			name:      "unknown class lists known classes",
			class:     "ALL_CAPS",
			wantErrIn: []string{`unknown policy class "ALL_CAPS"`, "known: all_caps, debug_logging, external, llm_judge, noop, regex_block"},
		},
		{
			name:      "empty class",
			class:     "",
			wantErrIn: []string{`unknown policy class ""`, "all_caps, debug_logging, external, llm_judge, noop, regex_block"},
		},
		{
			name:      "noop rejects config keys",
			class:     "noop",
			cfg:       map[string]any{"verbose": true},
			wantErrIn: []string{"policy noop", `config key "verbose"`, "takes no configuration"},
		},
		{
			name:      "all_caps rejects config keys, first key named",
			class:     "luthien_proxy.policies.all_caps_policy:AllCapsPolicy",
			cfg:       map[string]any{"b": 1, "a": 2},
			wantErrIn: []string{"policy all_caps", `config key "a"`},
		},
		{
			name:      "unsupported value type",
			class:     "noop",
			cfg:       map[string]any{"x": map[string]any{"y": []any{struct{}{}}}},
			wantErrIn: []string{"policy noop", `config key "x.y[0]"`, "unsupported value of type struct {}"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := r.Build(tt.class, tt.cfg)
			if tt.wantErrIn != nil {
				if err == nil {
					t.Fatalf("Build(%q) = %v, want an error", tt.class, p.Name())
				}
				for _, want := range tt.wantErrIn {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Build(%q) error %q does not contain %q", tt.class, err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Build(%q): %v", tt.class, err)
			}
			if p.Name() != tt.wantName {
				t.Errorf("Build(%q).Name() = %q, want %q", tt.class, p.Name(), tt.wantName)
			}
		})
	}
}

func TestTypes(t *testing.T) {
	r := builtin(t)
	types := r.Types()
	var classes []string
	for _, typ := range types {
		classes = append(classes, typ.Class)
		if typ.Description == "" {
			t.Errorf("%s: empty description", typ.Class)
		}
		if !json.Valid([]byte(typ.ConfigSchema)) {
			t.Errorf("%s: config schema is not JSON: %s", typ.Class, typ.ConfigSchema)
		}
		if len(typ.AllAliases()) == 0 && typ.Class != "external" { // the one class the earlier system had no name for
			t.Errorf("%s: no aliases", typ.Class)
		}
	}
	if want := []string{"all_caps", "debug_logging", "external", "llm_judge", "noop", "regex_block", "serial", "sql_protection", "string_replacement", "tool_call_judge"}; !reflect.DeepEqual(classes, want) {
		t.Errorf("Types() classes = %v, want %v", classes, want)
	}

	types[0].Aliases[0] = "changed"
	if got := r.Types()[0].Aliases[0]; got == "changed" {
		t.Error("changing the result of Types() changed the registry")
	}
}

func TestNewRegistryErrors(t *testing.T) {
	factory := func(map[string]any) (Policy, error) { return noop{}, nil }
	tests := []struct {
		name    string
		types   []Type
		wantErr string
	}{
		{name: "empty class", types: []Type{{New: factory}}, wantErr: "empty class name"},
		{name: "no factory", types: []Type{{Class: "a"}}, wantErr: `policy type "a" has no factory`},
		{name: "empty alias", types: []Type{{Class: "a", Aliases: []string{""}, New: factory}}, wantErr: "empty alias"},
		{
			name:    "duplicate class",
			types:   []Type{{Class: "a", New: factory}, {Class: "a", New: factory}},
			wantErr: `name "a" of policy type "a" is already taken by "a"`,
		},
		{
			name:    "alias clashes with class",
			types:   []Type{{Class: "a", New: factory}, {Class: "b", Aliases: []string{"a"}, New: factory}},
			wantErr: `name "a" of policy type "b" is already taken by "a"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRegistry(tt.types...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewRegistry error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNormalizeConfig(t *testing.T) {
	in := map[string]any{
		"int":     3,
		"int64":   int64(-4),
		"uint8":   uint8(5),
		"float32": float32(0.5),
		"strings": []string{"a", "b"},
		"nested":  map[any]any{"k": []any{1, "x", nil, true}},
	}
	got, err := normalizeConfig(in)
	if err != nil {
		t.Fatalf("normalizeConfig: %v", err)
	}
	want := map[string]any{
		"int":     float64(3),
		"int64":   float64(-4),
		"uint8":   float64(5),
		"float32": float64(0.5),
		"strings": []any{"a", "b"},
		"nested":  map[string]any{"k": []any{float64(1), "x", nil, true}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("normalizeConfig = %#v, want %#v", got, want)
	}

	_, err = normalizeConfig(map[string]any{"m": map[any]any{1: "x"}})
	if err == nil || !strings.Contains(err.Error(), `config key "m": want string keys`) {
		t.Errorf("non-string key: error = %v", err)
	}
}
