package routes

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"luthien.dev/gateway/internal/provider"
)

// FuzzParse feeds Parse arbitrary files: it must not panic, and neither
// its errors nor a parsed table may show a key the file does not hold.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("testdata", "routes.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(example),
		matchFile,
		"",
		"routes: []\n",
		withProvider(`{kind: openai, base_url: "https://me:pw@h/v1"}`),
		withProvider(`{kind: openai, base_url: http://h/v1, api_key_env: BAD_KEY}`),
		withProvider(`{kind: openai, base_url: http://h/v1, headers: {authorization: x}}`),
		withRoute(`{match: "gpt-[", provider: oai}`),
		withRoute(`{match: "a*", provider: oai, model: b}`),
		"providers:\n  a: &x {kind: openai, base_url: http://h/v1}\n  <<: {b: *x}\nroutes: [{match: '*', provider: b}]\n",
		"providers: {a: {kind: openai}, a: {kind: anthropic}}\n",
		"a: &a [*a]\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := Parse(data, getenv)
		check := func(what, s string) {
			for _, sec := range secrets {
				if strings.Contains(s, sec) && !bytes.Contains(data, []byte(sec)) {
					t.Fatalf("%s shows a key: %s", what, s)
				}
			}
		}
		if err != nil {
			check("error", err.Error())
			return
		}
		check("table", tab.String())
		models := append(tab.Models(), "", "claude-x", "gpt-4o", "a/b")
		for _, m := range models {
			r, ok := tab.Route(m)
			if !ok {
				continue
			}
			check("route", r.String())
			if r.Model == "" {
				t.Fatalf("route %v has no model", r)
			}
			for _, k := range []provider.Kind{provider.OpenAI, provider.Anthropic} {
				if _, err := r.Credential(provider.New(k, "http://home", ""), true); err != nil {
					check("key error", err.Error())
				}
			}
		}
	})
}
