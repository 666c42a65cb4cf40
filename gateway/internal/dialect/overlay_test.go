package dialect

import (
	"encoding/json"
	"testing"

	"luthien.dev/canon/jsonx"
)

func TestOverlay(t *testing.T) {
	tests := []struct {
		name, base, patch, want string
	}{
		{"keeps base order, appends new keys",
			`{"b":1,"a":{"y":1,"x":2},"c":3}`, `{"d":4,"a":{"x":9,"z":0},"b":null}`,
			`{"b":null,"a":{"y":1,"x":9,"z":0},"c":3,"d":4}`},
		{"arrays are replaced, not merged",
			`{"content":[{"type":"text","text":"a"}],"stop_reason":"end_turn"}`, `{"content":[]}`,
			`{"content":[],"stop_reason":"end_turn"}`},
		{"an object replaces a scalar in place",
			`{"a":null,"b":2}`, `{"a":{"x":1}}`, `{"a":{"x":1},"b":2}`},
		{"a scalar replaces an object in place",
			`{"a":{"x":1},"b":2}`, `{"a":"s"}`, `{"a":"s","b":2}`},
		{"null replaces", `{"a":{"x":1}}`, `{"a":null}`, `{"a":null}`},
		{"empty patch", `{"z":1,"a":2}`, `{}`, `{"z":1,"a":2}`},
		{"empty base", `{}`, `{"a":1}`, `{"a":1}`},
		{"surrounding whitespace", " {\"a\":1}\n", "{\"b\":2}\r\n", `{"a":1,"b":2}`},
		{"deep merge", `{"m":{"u":{"in":1,"cache":{"a":0}},"k":true}}`, `{"m":{"u":{"out":2,"cache":{"b":1}}}}`,
			`{"m":{"u":{"in":1,"cache":{"a":0,"b":1},"out":2},"k":true}}`},
		{"values keep their bytes", `{"a": [1, 2], "t":"<é>\u00e9"}`, `{"b":"<>"}`,
			`{"a":[1, 2],"t":"<é>\u00e9","b":"<>"}`},
		{"duplicate keys: last value, first place", `{"a":1,"b":2,"a":3}`, `{}`, `{"a":3,"b":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Overlay([]byte(tt.base), []byte(tt.patch))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestOverlayErrors(t *testing.T) {
	for _, tt := range []struct{ base, patch string }{
		{`[1]`, `{}`},
		{`{}`, `[1]`},
		{`"s"`, `{}`},
		{``, `{}`},
		{`{"a":`, `{}`},
		{`{"a":1`, `{}`},
		{`{"a":1} {"b":2}`, `{}`},
		{`{}`, `{"a":1}x`},
		{`{"a":{"x":1}}`, `{"a":{"x":}}`},
	} {
		if got, err := Overlay([]byte(tt.base), []byte(tt.patch)); err == nil {
			t.Errorf("Overlay(%s, %s) = %s, want an error", tt.base, tt.patch, got)
		}
	}
}

func TestWithout(t *testing.T) {
	tests := []struct{ obj, key, want string }{
		{`{"a":1,"b":2,"c":3}`, "b", `{"a":1,"c":3}`},
		{`{"a":1,"b":2,"c":3}`, "a", `{"b":2,"c":3}`},
		{`{"a":1,"b":2,"c":3}`, "c", `{"a":1,"b":2}`},
		{`{"a":1}`, "a", `{}`},
		{`{"a": 1, "b" : 2}`, "x", `{"a": 1, "b" : 2}`}, // untouched when absent
		{`{"c":{"b":1},"b":2}`, "b", `{"c":{"b":1}}`},   // top level only
	}
	for _, tt := range tests {
		got, err := Without([]byte(tt.obj), tt.key)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("Without(%s, %q) = %s, want %s", tt.obj, tt.key, got, tt.want)
		}
	}
	if _, err := Without([]byte(`[]`), "a"); err == nil {
		t.Error("Without on an array: want an error")
	}
}

func TestTypeForStatus(t *testing.T) {
	for status, want := range map[int]string{
		400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
		404: "not_found_error", 409: "invalid_request_error", 413: "request_too_large",
		429: "rate_limit_error", 500: "api_error", 502: "api_error", 503: "overloaded_error",
		504: "api_error", 529: "overloaded_error", 200: "api_error",
	} {
		if got := TypeForStatus(status); got != want {
			t.Errorf("TypeForStatus(%d) = %s, want %s", status, got, want)
		}
	}
	e := BadRequest("no model")
	if e.Status != 400 || e.Type != "invalid_request_error" || e.Error() != "no model" {
		t.Errorf("BadRequest = %+v", e)
	}
}

func TestAppendStringMatchesString(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ back`, "new\nline\ttab\rcr", "ctl \x01\x1f", "é 👋 <b>&", "\u2028"} {
		want := jsonx.String(s)
		var back string
		if err := json.Unmarshal(AppendString(nil, s), &back); err != nil || back != s {
			t.Errorf("AppendString(%q) = %s does not decode back (%v)", s, AppendString(nil, s), err)
		}
		if s != "\u2028" && string(AppendString(nil, s)) != string(want) {
			t.Errorf("AppendString(%q) = %s, jsonx.String gives %s", s, AppendString(nil, s), want)
		}
	}
}
