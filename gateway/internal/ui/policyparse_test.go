package ui

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestYAMLToJSON(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"policy with nested config", "class: string_replacement\nconfig:\n  replacements:\n    - [hello, goodbye]\n  match_capitalization: true\n",
			`{"class":"string_replacement","config":{"replacements":[["hello","goodbye"]],"match_capitalization":true}}`},
		{"key order kept", "z: 1\na: 2\nm: 3\n", `{"z":1,"a":2,"m":3}`},
		{"JSON is YAML", `{"class":"all_caps","config":{}}`, `{"class":"all_caps","config":{}}`},
		{"scalars by tag", "s: 'yes'\nb: yes\nn: ~\ni: 0x1F\nf: 1.5e3\nq: \"30s\"\nt: 2024-01-02\nbig: 123456789012345678901234567890\n",
			`{"s":"yes","b":"yes","n":null,"i":31,"f":1500,"q":"30s","t":"2024-01-02","big":1.2345678901234568e+29}`},
		{"booleans", "a: true\nb: False\n", `{"a":true,"b":false}`},
		{"markup stays data", "message: \"<script>alert(1)</script>\"\n", `{"message":"\u003cscript\u003ealert(1)\u003c/script\u003e"}`},
		{"anchors and aliases", "base: &b [rm -rf, mkfs]\nagain: *b\n", `{"base":["rm -rf","mkfs"],"again":["rm -rf","mkfs"]}`},
		{"serial chain", "class: serial\nconfig:\n  policies:\n    - class: all_caps\n    - class: noop\n      config: {}\n",
			`{"class":"serial","config":{"policies":[{"class":"all_caps"},{"class":"noop","config":{}}]}}`},
		{"a bare string", "hello\n", `"hello"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := yamlToJSON([]byte(c.in))
			if err != nil {
				t.Fatalf("yamlToJSON: %v", err)
			}
			if string(got) != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			if !json.Valid(got) {
				t.Errorf("output is not valid JSON: %s", got)
			}
		})
	}
}

// anyLine expects an error with some line, the YAML library's choice.
const anyLine = -1

func TestYAMLToJSONErrors(t *testing.T) {
	cases := []struct {
		name, in string
		line     int
		contains string
	}{
		{"bad indentation", "class: all_caps\nconfig:\n  a: 1\n b: 2\n", 3, "did not find expected key"},
		{"unclosed flow", "class: noop\nconfig: {a: [1, 2\n", anyLine, "did not find expected"},
		{"tab indentation", "class: noop\nconfig:\n\ta: 1\n", 3, "a tab"},
		{"duplicate key", "class: noop\nconfig: {}\nclass: all_caps\n", 3, "already defined on line 1"},
		{"second document", "class: noop\n---\nclass: all_caps\n", 2, "single document"},
		{"merge key", "base: &b {a: 1}\nx:\n  <<: *b\n", 3, "merge keys"},
		{"infinity", "x: .inf\n", 1, "JSON"},
		{"mapping as key", "? [a, b]\n: 1\n", 1, "key"},
		{"empty", "", 0, "empty"},
		{"only a comment", "# nothing\n", 0, "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := yamlToJSON([]byte(c.in))
			var pe *parseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a parseError", err)
			}
			if c.line == anyLine && pe.Line <= 0 || c.line != anyLine && pe.Line != c.line {
				t.Errorf("line %d, want %d (%v)", pe.Line, c.line, pe)
			}
			if !strings.Contains(pe.Error(), c.contains) {
				t.Errorf("error %q does not mention %q", pe.Error(), c.contains)
			}
		})
	}
}

// An alias bomb is cut off instead of expanding without bound.
func TestYAMLToJSONBoundsExpansion(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 12; i++ {
		b.WriteString("a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + strconv.Itoa(i-1))
		}
		b.WriteString("]\n")
	}
	_, err := yamlToJSON([]byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "expands to more than") {
		t.Fatalf("got %v, want the expansion refused", err)
	}
}

func TestParsePolicyRoute(t *testing.T) {
	u := &UI{}
	cases := []struct {
		name   string
		body   string
		status int
		check  func(t *testing.T, body []byte)
	}{
		{"valid YAML", "class: all_caps\nconfig: {}\n", http.StatusOK, func(t *testing.T, body []byte) {
			var got struct {
				Class  string         `json:"class"`
				Config map[string]any `json:"config"`
			}
			if err := json.Unmarshal(body, &got); err != nil || got.Class != "all_caps" || got.Config == nil {
				t.Errorf("body %s (%v): want the policy as JSON", body, err)
			}
		}},
		{"invalid YAML", "class: all_caps\nconfig:\n  a: [1,\n", http.StatusBadRequest, func(t *testing.T, body []byte) {
			var got struct {
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
					Line    int    `json:"line"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if got.Error.Code != http.StatusBadRequest || got.Error.Line != 3 || got.Error.Message != "line 3: did not find expected node content" {
				t.Errorf("error %+v: want code 400 at line 3 with the problem", got.Error)
			}
		}},
		{"too large", "x: " + strings.Repeat("a", maxPolicyText), http.StatusRequestEntityTooLarge, func(t *testing.T, body []byte) {
			if !strings.Contains(string(body), "larger than") {
				t.Errorf("body %s: want the size named", body)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			u.parsePolicy(w, httptest.NewRequest(http.MethodPost, "/policy/parse", strings.NewReader(c.body)))
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			c.check(t, w.Body.Bytes())
		})
	}
}
