package policy

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"testing"
)

// schema is the part of a config JSON Schema the tests check.
type schema struct {
	Type                 string                     `json:"type"`
	Properties           map[string]json.RawMessage `json:"properties"`
	Required             []string                   `json:"required"`
	AdditionalProperties *bool                      `json:"additionalProperties"`
}

// Every example configuration fits its class's schema: only known keys,
// every required key; and every schema is a closed object.
func TestSchemasMatchExamples(t *testing.T) {
	r := builtin(t)
	schemas := map[string]schema{}
	for _, typ := range r.Types() {
		var s schema
		if err := json.Unmarshal([]byte(typ.ConfigSchema), &s); err != nil {
			t.Fatalf("%s: %v", typ.Class, err)
		}
		if s.Type != "object" || s.AdditionalProperties == nil || *s.AdditionalProperties {
			t.Errorf("%s: schema is not a closed object: %s", typ.Class, typ.ConfigSchema)
		}
		for _, req := range s.Required {
			if _, ok := s.Properties[req]; !ok {
				t.Errorf("%s: required %q is not a property", typ.Class, req)
			}
		}
		schemas[typ.Class] = s
	}
	check := func(where, class string, cfg map[string]any) {
		typ, ok := r.lookup(class)
		if !ok {
			t.Errorf("%s: unknown class %s", where, class)
			return
		}
		s := schemas[typ.Class]
		for _, k := range slices.Sorted(maps.Keys(cfg)) {
			if _, ok := s.Properties[k]; !ok {
				t.Errorf("%s: key %q of %s is not in its schema", where, k, typ.Class)
			}
		}
		for _, req := range s.Required {
			if _, ok := cfg[req]; !ok {
				t.Errorf("%s: required key %q of %s missing", where, req, typ.Class)
			}
		}
	}
	paths, err := filepath.Glob("../../../config/policies/*.yaml")
	if err != nil || len(paths) < 10 {
		t.Fatalf("examples: %v %v", paths, err)
	}
	for _, path := range paths {
		class, cfg, err := LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		check(filepath.Base(path), class, cfg)
		members, _ := cfg["policies"].([]any)
		for _, m := range members {
			mm := m.(map[string]any)
			sub, _ := mm["config"].(map[string]any)
			check(filepath.Base(path)+" member", mm["class"].(string), sub)
		}
	}
}
