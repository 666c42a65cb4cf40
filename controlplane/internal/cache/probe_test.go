package cache

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestTopLevelField(t *testing.T) {
	tests := []struct {
		doc, want string
		ok        bool
	}{
		{`{"temperature":0}`, `0`, true},
		{` { "model" : "m", "temperature" : 0.0 , "x":1}`, `0.0`, true},
		{`{"messages":[{"role":"user","content":"say \"temperature\":1 {[\\"}],"temperature":1}`, `1`, true},
		{`{"metadata":{"temperature":0},"model":"m"}`, ``, false}, // nested: not the request's
		{`{"system":"a \\\\","temperature":2e-1}`, `2e-1`, true},
		{`{"temperature":"0"}`, `"0"`, true},
		{`{"temperature":null}`, `null`, true},
		{`{"model":"m"}`, ``, false},
		{`{"model":"m"`, ``, false},
		{`{"model":"m" "temperature":0}`, ``, false},
		{`[{"temperature":0}]`, ``, false},
		{``, ``, false},
		{`{"a":[1,2,{"b":"]"}],"temperature":{"x":[]}}`, `{"x":[]}`, true},
	}
	for _, tt := range tests {
		got, ok := topLevelField([]byte(tt.doc), "temperature")
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("topLevelField(%s) = %s, %v; want %s, %v", tt.doc, got, ok, tt.want, tt.ok)
		}
	}
}

// The probe agrees with encoding/json on every well-formed object whose
// member appears once.
func FuzzTopLevelField(f *testing.F) {
	for _, seed := range []string{
		`{"temperature":0}`, `{"a":"\"","temperature":[1,{"b":"}"}]}`, `{"a":{"temperature":1},"temperature":0.5}`,
		`{"temperature" :true }`, `{"x":"\\\\\"","temperature":-1e3}`, `{}`, `{"t":1}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		got, ok := topLevelField([]byte(doc), "temperature")
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(doc), &m) != nil || m == nil || strings.Count(doc, `"temperature"`) != 1 ||
			!strings.HasPrefix(strings.TrimLeft(doc, " \t\r\n"), "{") {
			return
		}
		want, has := m["temperature"]
		if ok != has || (has && !bytes.Equal(got, want)) {
			t.Errorf("topLevelField(%s) = %s, %v; encoding/json %s, %v", doc, got, ok, want, has)
		}
	})
}
