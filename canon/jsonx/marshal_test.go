package jsonx

import (
	"encoding/json"
	"testing"
)

func TestMarshal(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"HTML characters kept", map[string]any{"t": "<a> & b", "n": nil}, `{"n":null,"t":"<a> & b"}`},
		{"string", "x<y", `"x<y"`},
		{"line separators escaped", "a\u2028b", `"a\u2028b"`},
		{"invalid UTF-8 replaced", "a\xffb", `"a\ufffdb"`},
		{"raw message kept", struct {
			R json.RawMessage `json:"r"`
		}{json.RawMessage(`{"b":1,"a":"<"}`)}, `{"r":{"b":1,"a":"<"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := Marshal(func() {}); err == nil {
		t.Error("Marshal(func): want an error")
	}
}

func TestMarshalIndent(t *testing.T) {
	got, err := MarshalIndent(map[string]any{"a": []int{1}, "h": "<&>"}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"a\": [\n    1\n  ],\n  \"h\": \"<&>\"\n}"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := MarshalIndent(make(chan int), "", " "); err == nil {
		t.Error("MarshalIndent(chan): want an error")
	}
}

func TestString(t *testing.T) {
	for in, want := range map[string]string{"": `""`, `a"b\c`: `"a\"b\\c"`, "<&>\n": `"<&>\n"`, "é": `"é"`} {
		if got := string(String(in)); got != want {
			t.Errorf("String(%q) = %s, want %s", in, got, want)
		}
	}
}
