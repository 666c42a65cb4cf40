package routes

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"luthien.dev/gateway/internal/provider"
)

const matchFile = `providers:
  claude: {kind: anthropic, base_url: https://api.anthropic.com/, api_key_env: ANTHROPIC_API_KEY}
  local:  {kind: openai, base_url: http://127.0.0.1:11434/v1, headers: {x-team: team-value-zzz, X-Trace: on}}
  other:  {kind: openai, base_url: https://other.example/v1, api_key_env: OPENAI_KEY}
routes:
  - {match: "claude-opus-4", provider: local, model: "llama3:70b"}
  - {match: "claude-*", provider: claude}
  - {match: "gpt-oss*", provider: local, model: "gpt-oss:20b"}
  - {match: "gpt-?", provider: other}
  - {match: "o[0-9]-mini", provider: other}
  - {match: "*/*", provider: local}
  - {match: "fast", provider: local, model: "gpt-oss:20b"}
  - {match: "plain", provider: other}
  - {match: "gpt-4o", provider: other}
  - {match: "plain", provider: local}
  - {match: 'lit\*', provider: other}
`

func mustParse(t testing.TB, file string) *Table {
	t.Helper()
	tab, err := Parse([]byte(file), getenv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return tab
}

func TestRoute(t *testing.T) {
	tab := mustParse(t, matchFile)
	tests := []struct {
		model    string
		ok       bool
		index    int
		provider string
		upstream string
	}{
		{"claude-opus-4", true, 0, "local", "llama3:70b"}, // first match wins over claude-*
		{"claude-sonnet-4-5", true, 1, "claude", "claude-sonnet-4-5"},
		{"claude-", true, 1, "claude", "claude-"},
		{"claude-opus-4-1", true, 1, "claude", "claude-opus-4-1"},
		{"claude", false, 0, "", ""},
		{"Claude-x", false, 0, "", ""},  // case-sensitive
		{"xclaude-x", false, 0, "", ""}, // whole name
		{"gpt-oss", true, 2, "local", "gpt-oss:20b"},
		{"gpt-oss:120b", true, 2, "local", "gpt-oss:20b"},
		{"gpt-4", true, 3, "other", "gpt-4"},
		{"gpt-4o", true, 8, "other", "gpt-4o"}, // '?' is one character
		{"gpt-", false, 0, "", ""},
		{"o3-mini", true, 4, "other", "o3-mini"},
		{"oX-mini", false, 0, "", ""},
		{"org/claude-x", true, 5, "local", "org/claude-x"}, // '*' stops at '/'
		{"a/b/c", false, 0, "", ""},
		{"fast", true, 6, "local", "gpt-oss:20b"},
		{"plain", true, 7, "other", "plain"},
		{"lit*", true, 10, "other", "lit*"},
		{"litx", false, 0, "", ""},
		{"", false, 0, "", ""},
		{strings.Repeat("claude-", 40), false, 0, "", ""}, // longer than MaxModelLen
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			r, ok := tab.Route(tt.model)
			if ok != tt.ok {
				t.Fatalf("Route(%q) ok = %v, want %v (%v)", tt.model, ok, tt.ok, r)
			}
			if !ok {
				if !reflectZero(r) {
					t.Errorf("no match but a non-zero route %v", r)
				}
				return
			}
			if r.Index != tt.index || r.ProviderName != tt.provider || r.Model != tt.upstream {
				t.Errorf("Route(%q) = route %d %s model %q, want route %d %s model %q",
					tt.model, r.Index, r.ProviderName, r.Model, tt.index, tt.provider, tt.upstream)
			}
		})
	}
}

func reflectZero(r Route) bool {
	return r.ProviderName == "" && r.Model == "" && r.Headers == nil && r.Provider == (provider.Provider{}) && r.Index == 0 && r.Pattern == ""
}

func TestRouteFields(t *testing.T) {
	tab := mustParse(t, matchFile)

	r, _ := tab.Route("claude-sonnet-4-5")
	want := provider.New(provider.Anthropic, "https://api.anthropic.com", secretAnthropic)
	if r.Provider != want || r.Pattern != "claude-*" || r.Headers != nil {
		t.Errorf("claude route = %+v, want provider %+v", r, want)
	}
	if got := r.Provider.URL("/v1/messages", ""); got != "https://api.anthropic.com/v1/messages" {
		t.Errorf("URL = %q", got)
	}

	r, _ = tab.Route("gpt-oss")
	if r.Provider != provider.New(provider.OpenAI, "http://127.0.0.1:11434/v1", "") {
		t.Errorf("local provider = %v", r.Provider)
	}
	wantHeaders := http.Header{"X-Team": {"team-value-zzz"}, "X-Trace": {"on"}}
	if fmt.Sprint(r.Headers) != fmt.Sprint(wantHeaders) {
		t.Errorf("headers = %v, want %v", r.Headers, wantHeaders)
	}
	// Each look-up gets its own headers.
	r.Headers.Set("X-Team", "changed")
	r.Headers.Set("X-New", "1")
	r2, _ := tab.Route("gpt-oss")
	if fmt.Sprint(r2.Headers) != fmt.Sprint(wantHeaders) {
		t.Errorf("headers after a caller's change = %v, want %v", r2.Headers, wantHeaders)
	}
}

func TestRouteConcurrent(t *testing.T) {
	tab := mustParse(t, matchFile)
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 200 {
				r, _ := tab.Route("gpt-oss")
				r.Headers.Set("X-Team", "mine")
				_ = tab.Models()
			}
		}()
	}
	for range 8 {
		<-done
	}
}

func TestModels(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"mixed", matchFile, []string{"llama3:70b", "gpt-oss:20b", "plain", "gpt-4o"}},
		{"empty", "", nil},
		{"globs only", "providers: {p: {kind: openai, base_url: http://h/v1}}\nroutes: [{match: '*', provider: p}, {match: 'a?', provider: p}, {match: '[ab]', provider: p}]\n", nil},
		{"model beats literal", "providers: {p: {kind: openai, base_url: http://h/v1}}\nroutes: [{match: alias, provider: p, model: real}, {match: real, provider: p}, {match: alias, provider: p}]\n", []string{"real", "alias"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustParse(t, tt.file).Models(); !slices.Equal(got, tt.want) {
				t.Errorf("Models() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNilTable(t *testing.T) {
	var tab *Table
	if _, ok := tab.Route("gpt-4o"); ok {
		t.Error("nil table routed")
	}
	if tab.Models() != nil || tab.Len() != 0 {
		t.Error("nil table has models or routes")
	}
	if s := fmt.Sprint(tab); s != "<nil>" {
		t.Errorf("nil table prints %q", s)
	}
}

// TestPrintNoKey prints tables and routes every way fmt can: no key, no
// header value.
func TestPrintNoKey(t *testing.T) {
	tab := mustParse(t, matchFile)
	r, ok := tab.Route("claude-x")
	if !ok || r.Provider.Key != secretAnthropic {
		t.Fatalf("route %v has not the key", r)
	}
	r2, _ := tab.Route("gpt-4")
	r3, _ := tab.Route("gpt-oss")
	type holder struct {
		t *Table
		v Table
	}
	type exported struct {
		T *Table
		V Table
		R Route
	}
	values := []any{tab, *tab, r, &r, r2, r3, holder{tab, *tab}, exported{tab, *tab, r}, []Route{r, r2}, map[string]Route{"a": r}}
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			s := fmt.Sprintf(verb, v)
			assertNoSecret(t, fmt.Sprintf("%s of %T", verb, v), s)
			// Header values are not keys, but are kept out of String.
			if _, raw := v.(holder); !raw && strings.Contains(s, "team-value-zzz") {
				t.Errorf("%s of %T shows a header value: %s", verb, v, s)
			}
		}
	}
	s := tab.String()
	for _, w := range []string{"claude: anthropic https://api.anthropic.com key=$ANTHROPIC_API_KEY", "headers=X-Team,X-Trace", `"gpt-oss*" -> local model "gpt-oss:20b"`} {
		if !strings.Contains(s, w) {
			t.Errorf("String() = %s\nwithout %q", s, w)
		}
	}
	if s := r.String(); !strings.Contains(s, "key configured") || !strings.Contains(s, `"claude-*"`) {
		t.Errorf("Route.String() = %s", s)
	}
	if s := r3.String(); !strings.Contains(s, "key none") || !strings.Contains(s, "headers [X-Team,X-Trace]") {
		t.Errorf("Route.String() = %s", s)
	}
}
