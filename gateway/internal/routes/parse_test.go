package routes

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"luthien.dev/gateway/internal/provider"
)

// Secret values of the test environment: no error and no printed table
// may contain one.
const (
	secretAnthropic = "sk-ant-SECRET-aaaa-1111"
	secretOpenAI    = "sk-oai-SECRET-bbbb-2222"
	secretBad       = "sk-bad-SECRET-cccc-3333"
	secretPassword  = "hunter2-SECRET-dddd"
)

var secrets = []string{secretAnthropic, secretOpenAI, secretBad, secretPassword}

var testEnv = map[string]string{
	"ANTHROPIC_API_KEY": secretAnthropic,
	"OPENAI_KEY":        secretOpenAI,
	"EMPTY":             "",
	"BAD_KEY":           secretBad + "\r\nX-Evil: 1",
}

func getenv(name string) string { return testEnv[name] }

// assertNoSecret fails when s holds a secret of the test environment.
func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s holds a secret value: %s", what, s)
		}
	}
}

// withProvider is a file with the valid providers "ant" and "oai" and
// provider p (a flow mapping), routed by every name.
func withProvider(p string) string {
	return `providers:
  ant: {kind: anthropic, base_url: https://api.anthropic.com, api_key_env: ANTHROPIC_API_KEY}
  oai: {kind: openai, base_url: https://api.openai.com/v1, api_key_env: OPENAI_KEY}
  p: ` + p + `
routes:
  - {match: "claude-*", provider: ant}
`
}

// withRoute is a file with valid providers and route r (a flow mapping)
// after a valid one.
func withRoute(r string) string {
	return `providers:
  ant: {kind: anthropic, base_url: https://api.anthropic.com, api_key_env: ANTHROPIC_API_KEY}
  oai: {kind: openai, base_url: https://api.openai.com/v1, api_key_env: OPENAI_KEY}
routes:
  - {match: "claude-*", provider: ant}
  - ` + r + `
`
}

func manyProviders(n int) string {
	var b strings.Builder
	b.WriteString("providers:\n")
	for i := range n {
		fmt.Fprintf(&b, "  p%d: {kind: openai, base_url: http://h%d/v1}\n", i, i)
	}
	return b.String()
}

func manyRoutes(n int) string {
	var b strings.Builder
	b.WriteString("providers:\n  p: {kind: openai, base_url: http://h/v1}\nroutes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {match: m%d, provider: p}\n", i)
	}
	return b.String()
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // substrings of the error
	}{
		// YAML shape.
		{"unknown top-level key", "provider: {}\n", []string{"provider", "not found"}},
		{"unknown provider key", withProvider(`{kind: openai, base_url: http://h/v1, api_key: ` + secretOpenAI + `x}`), []string{"api_key", "not found"}},
		{"unknown route key", withRoute(`{match: a, provider: ant, modle: b}`), []string{"modle", "not found"}},
		{"routes not a list", "routes: {a: b}\n", []string{"cannot unmarshal"}},
		{"providers not a map", "providers: [a]\n", []string{"cannot unmarshal"}},
		{"not a mapping", "- a\n", []string{"cannot unmarshal"}},
		{"two documents", "routes: []\n---\nroutes: []\n", []string{"more than one YAML document"}},
		{"syntax", "providers: {\n", []string{"line"}},
		// The YAML library's own check names the line only; ours names the
		// provider.
		{"duplicate provider", "providers:\n  p: {kind: openai, base_url: http://h/v1}\n  q: {kind: openai, base_url: http://h/v1}\n  p: {kind: anthropic, base_url: http://h}\n", []string{`provider "p" defined twice`, "lines 2 and 4"}},
		{"duplicate top-level key", "routes: []\nroutes: []\n", []string{"routes", "already defined"}},
		{"duplicate header key", withProvider(`{kind: openai, base_url: http://h/v1, headers: {x-a: b, x-a: c}}`), []string{"x-a", "already defined"}},

		// Limits.
		{"file too large", "#" + strings.Repeat("x", MaxFileSize), []string{"larger than 1048576 bytes"}},
		{"too many providers", manyProviders(MaxProviders + 1), []string{"providers", "257", "at most 256"}},
		{"too many routes", manyRoutes(MaxRoutes + 1), []string{"routes", "1025", "at most 1024"}},

		// Providers.
		{"invalid provider name", "providers:\n  'a b': {kind: openai, base_url: http://h/v1}\n", []string{`invalid provider name "a b"`}},
		{"missing kind", withProvider(`{base_url: http://h/v1}`), []string{`provider "p"`, "kind", "missing"}},
		{"unknown kind", withProvider(`{kind: gemini, base_url: http://h/v1}`), []string{`provider "p"`, "kind", `unknown kind "gemini"`}},
		{"kind in capitals", withProvider(`{kind: OpenAI, base_url: http://h/v1}`), []string{`provider "p"`, "kind", `"OpenAI"`}},
		{"missing base_url", withProvider(`{kind: openai}`), []string{`provider "p"`, "base_url", "missing"}},
		{"base_url scheme", withProvider(`{kind: openai, base_url: "ftp://h/v1"}`), []string{`provider "p"`, "base_url", "http://"}},
		{"base_url relative", withProvider(`{kind: openai, base_url: "/v1"}`), []string{`provider "p"`, "base_url", "http://"}},
		{"base_url no host", withProvider(`{kind: openai, base_url: "http:///v1"}`), []string{`provider "p"`, "base_url", "host"}},
		{"base_url opaque", withProvider(`{kind: openai, base_url: "http:h"}`), []string{`provider "p"`, "base_url", "host"}},
		{"base_url query", withProvider(`{kind: openai, base_url: "http://h/v1?a=b"}`), []string{`provider "p"`, "base_url", "query"}},
		{"base_url empty query", withProvider(`{kind: openai, base_url: "http://h/v1?"}`), []string{`provider "p"`, "base_url", "query"}},
		{"base_url fragment", withProvider(`{kind: openai, base_url: "http://h/v1#f"}`), []string{`provider "p"`, "base_url", "fragment"}},
		{"base_url empty fragment", withProvider(`{kind: openai, base_url: "http://h/v1#"}`), []string{`provider "p"`, "base_url", "fragment"}},
		{"base_url userinfo", withProvider(`{kind: openai, base_url: "https://me:` + secretPassword + `@h/v1"}`), []string{`provider "p"`, "base_url", "user information"}},
		{"base_url user only", withProvider(`{kind: openai, base_url: "https://` + secretPassword + `@h/v1"}`), []string{`provider "p"`, "base_url", "user information"}},
		{"base_url unparsable", withProvider(`{kind: openai, base_url: "http://[::1"}`), []string{`provider "p"`, "base_url", "not a valid URL"}},
		{"base_url unparsable with password", withProvider(`{kind: openai, base_url: "http://me:` + secretPassword + `@[::1"}`), []string{`provider "p"`, "base_url"}},
		{"api_key_env unset", withProvider(`{kind: openai, base_url: http://h/v1, api_key_env: NOPE}`), []string{`provider "p"`, "api_key_env", "$NOPE", "unset or empty"}},
		{"api_key_env empty", withProvider(`{kind: openai, base_url: http://h/v1, api_key_env: EMPTY}`), []string{`provider "p"`, "api_key_env", "$EMPTY", "unset or empty"}},
		{"api_key_env bad name digit", withProvider(`{kind: openai, base_url: http://h/v1, api_key_env: 1KEY}`), []string{`provider "p"`, "api_key_env", `"1KEY"`}},
		{"api_key_env bad name dash", withProvider(`{kind: openai, base_url: http://h/v1, api_key_env: A-B}`), []string{`provider "p"`, "api_key_env", `"A-B"`}},
		{"api_key_env bad name dollar", withProvider(`{kind: openai, base_url: http://h/v1, api_key_env: $OPENAI_KEY}`), []string{`provider "p"`, "api_key_env", "invalid variable name"}},
		{"api_key_env value not a header value", withProvider(`{kind: openai, base_url: http://h/v1, api_key_env: BAD_KEY}`), []string{`provider "p"`, "api_key_env", "$BAD_KEY", "not allowed"}},
		{"header name invalid", withProvider(`{kind: openai, base_url: http://h/v1, headers: {"x team": a}}`), []string{`provider "p"`, "headers", `invalid header name "x team"`}},
		{"header name empty", withProvider(`{kind: openai, base_url: http://h/v1, headers: {"": a}}`), []string{`provider "p"`, "headers", "invalid header name"}},
		{"header value invalid", withProvider(`{kind: openai, base_url: http://h/v1, headers: {x-a: "` + secretPassword + `\r\nx-b: c"}}`), []string{`provider "p"`, "headers", `"x-a"`, "value"}},
		{"header case duplicate", withProvider(`{kind: openai, base_url: http://h/v1, headers: {x-team: a, X-Team: b}}`), []string{`provider "p"`, "headers", `"X-Team" given twice`}},

		// Routes.
		{"route unknown provider", withRoute(`{match: "gpt-*", provider: nope}`), []string{"route 1", "provider", `unknown provider "nope"`}},
		{"route missing provider", withRoute(`{match: "gpt-*"}`), []string{"route 1", "provider", "missing"}},
		{"route missing match", withRoute(`{provider: oai}`), []string{"route 1", "match", "missing"}},
		{"route empty match", withRoute(`{match: "", provider: oai}`), []string{"route 1", "match", "empty"}},
		{"route bad pattern bracket", withRoute(`{match: "gpt-[", provider: oai}`), []string{"route 1", "match", `invalid pattern "gpt-["`, "syntax error in pattern"}},
		{"route bad pattern backslash", withRoute(`{match: 'gpt-\', provider: oai}`), []string{"route 1", "match", "invalid pattern"}},
		{"route bad pattern late", withRoute(`{match: "x*[", provider: oai}`), []string{"route 1", "match", "invalid pattern"}},
		{"route match too long", withRoute(`{match: "` + strings.Repeat("m", MaxModelLen+1) + `", provider: oai}`), []string{"route 1", "match", "257 bytes long, at most 256"}},
		{"route match control", withRoute(`{match: "gpt\t4", provider: oai}`), []string{"route 1", "match", "control characters"}},
		{"route empty model", withRoute(`{match: a, provider: oai, model: ""}`), []string{"route 1", "model", "empty"}},
		{"route model too long", withRoute(`{match: a, provider: oai, model: "` + strings.Repeat("m", MaxModelLen+1) + `"}`), []string{"route 1", "model", "at most 256"}},
		{"route model control", withRoute(`{match: a, provider: oai, model: "a\nb"}`), []string{"route 1", "model", "control characters"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Parse([]byte(tt.file), getenv)
			if err == nil {
				t.Fatalf("Parse succeeded: %v", tab)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "routes: ") {
				t.Errorf("error %q does not start with routes:", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not hold %q", msg, w)
				}
			}
			assertNoSecret(t, "error", msg)
		})
	}
}

func TestParseForbiddenHeaders(t *testing.T) {
	for _, h := range []string{
		"connection", "Keep-Alive", "proxy-authenticate", "Proxy-Authorization", "proxy-connection",
		"te", "TE", "trailer", "transfer-encoding", "upgrade",
		"host", "HOST", "content-length", "content-type", "content-encoding", "accept-encoding",
		"authorization", "Authorization", "x-api-key", "X-API-KEY",
	} {
		t.Run(h, func(t *testing.T) {
			file := withProvider(`{kind: openai, base_url: http://h/v1, headers: {"` + h + `": "Bearer ` + secretOpenAI + `"}}`)
			_, err := Parse([]byte(file), getenv)
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			msg := err.Error()
			for _, w := range []string{`provider "p"`, "headers", fmt.Sprintf("%q may not be set", h)} {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not hold %q", msg, w)
				}
			}
			assertNoSecret(t, "error", msg)
		})
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		providers int
		routes    int
	}{
		{"empty file", "", 0, 0},
		{"comments only", "# nothing\n", 0, 0},
		{"null document", "~\n", 0, 0},
		{"empty routes", "providers:\n  p: {kind: openai, base_url: http://h/v1}\nroutes: []\n", 1, 0},
		{"no providers key", "routes: []\n", 0, 0},
		{"limits", manyProviders(MaxProviders), MaxProviders, 0},
		{"route limit", manyRoutes(MaxRoutes), 1, MaxRoutes},
		{"longest names", withRoute(`{match: "` + strings.Repeat("m", MaxModelLen) + `", provider: oai, model: "` + strings.Repeat("u", MaxModelLen) + `"}`), 2, 2},
		{"aliases and merge", `providers:
  a: &base {kind: openai, base_url: http://h/v1}
  <<: {z: *base, b: *base}
routes:
  - {match: x, provider: z}
`, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Parse([]byte(tt.file), getenv)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(tab.providers) != tt.providers || tab.Len() != tt.routes {
				t.Errorf("got %d providers and %d routes, want %d and %d", len(tab.providers), tab.Len(), tt.providers, tt.routes)
			}
		})
	}
}

func TestParseProviderOrder(t *testing.T) {
	tab, err := Parse([]byte(`providers:
  zed: {kind: openai, base_url: http://z/v1}
  alpha: &a {kind: openai, base_url: http://a/v1}
  mid: {kind: anthropic, base_url: http://m}
  <<: {merged2: *a, merged1: *a}
`), getenv)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range tab.providers {
		got = append(got, e.name)
	}
	if want := "zed alpha mid merged1 merged2"; strings.Join(got, " ") != want {
		t.Errorf("order %q, want %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	tab, err := Load(filepath.Join("testdata", "routes.yaml"), getenv)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := tab.Route("claude-sonnet-4-5")
	if !ok || r.ProviderName != "claude" || r.Provider.Key != secretAnthropic || r.Provider.Kind != provider.Anthropic {
		t.Errorf("Route(claude-sonnet-4-5) = %v, %v", r, ok)
	}
	r, ok = tab.Route("gpt-oss")
	if !ok || r.ProviderName != "local" || r.Model != "gpt-oss:20b" || r.Headers.Get("X-Team") != "a" {
		t.Errorf("Route(gpt-oss) = %v, %v", r, ok)
	}

	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.yaml"), getenv); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("Load of a missing file: %v", err)
	}

	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("#"+strings.Repeat("x", MaxFileSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big, getenv); err == nil || !strings.Contains(err.Error(), "big.yaml") || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load of a large file: %v", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(withRoute(`{match: a, provider: nope}`)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad, getenv)
	if err == nil || !strings.HasPrefix(err.Error(), "routes: "+bad+": route 1: provider") {
		t.Errorf("Load of an invalid file: %v", err)
	}
	if err != nil {
		assertNoSecret(t, "error", err.Error())
	}
}

func TestParseNilGetenv(t *testing.T) {
	t.Setenv("LUTHIEN_ROUTES_TEST_KEY", secretOpenAI)
	tab, err := Parse([]byte(`providers:
  p: {kind: openai, base_url: http://h/v1, api_key_env: LUTHIEN_ROUTES_TEST_KEY}
routes:
  - {match: m, provider: p}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := tab.Route("m"); !ok || r.Provider.Key != secretOpenAI {
		t.Errorf("key not read from the environment")
	}
}
