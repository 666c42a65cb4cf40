package ui

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"luthien.dev/gateway/internal/admin"
	"luthien.dev/gateway/internal/routes"
	"luthien.dev/gateway/internal/routesapi"
)

// routeState answers the routes page with what a test sets.
type routeState routesapi.State

func (s routeState) State() routesapi.State { return routesapi.State(s) }

// getRoutesPage renders /routes over the given table (nil: none).
func getRoutesPage(t *testing.T, table RouteTable) (int, string) {
	t.Helper()
	u, err := New(Config{Guard: admin.New(admin.Config{}), Routes: table, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/routes", nil)
	r.Header.Set(admin.ActorHeader, "loopback")
	u.routesPage(w, r)
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func TestRoutesPage(t *testing.T) {
	source := "providers:\n  local: {kind: openai, base_url: 'http://127.0.0.1:11434/v1'}\n# </textarea><script>alert(1)</script>\n"
	state := routeState{
		Source: source,
		Path:   "/etc/luthien/routes.yaml",
		Providers: []routes.ProviderInfo{
			{Name: "claude", Kind: "anthropic", BaseURL: "https://api.anthropic.com", APIKeyEnv: "ANTHROPIC_API_KEY", KeySet: true, Headers: []string{}},
			{Name: "local", Kind: "openai", BaseURL: "http://127.0.0.1:11434/v1", Headers: []string{"X-Team", "X-Trace"}},
		},
		Routes: []routes.RouteInfo{
			{Index: 0, Match: "claude-*", Provider: "claude"},
			{Index: 1, Match: "gpt-oss*", Provider: "local", Model: "gpt-oss:20b"},
		},
		Defaults: []routesapi.Default{
			{Endpoint: "/v1/chat/completions", Kind: "openai", BaseURL: "https://api.openai.com/v1"},
			{Endpoint: "/v1/messages", Kind: "anthropic", BaseURL: "https://api.anthropic.com"},
		},
		ChangedBy: "session",
		ChangedAt: "2025-03-04T05:06:07Z",
		Note:      routesapi.Note,
	}
	code, body := getRoutesPage(t, state)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, want := range []string{
		`<a href="/routes" aria-current="page">Routes</a>`,
		`<script src="/ui/static/routes.js" defer></script>`,
		`<code>/etc/luthien/routes.yaml</code>`,
		`set at run time by <span class="actor">session</span> at 2025-03-04T05:06:07Z`,
		"until the gateway restarts",
		`<tr class="provider-row" data-name="claude">`,
		`<code>ANTHROPIC_API_KEY</code>`,
		`<span class="ok">set</span>`,
		`<code>X-Team</code>, <code>X-Trace</code>`,
		`<code class="route-match">claude-*</code>`,
		`<code class="route-model">gpt-oss:20b</code>`,
		`the client's`,
		`<code>/v1/chat/completions</code> goes to its own openai provider at <code>https://api.openai.com/v1</code>`,
		`id="routes-source"`,
		`id="routes-apply"`,
		`id="routes-error"`,
		"recorded as made by <code>loopback</code>",
		// The source is text in the textarea, markup escaped.
		`# &lt;/textarea&gt;&lt;script&gt;alert(1)&lt;/script&gt;`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>alert(1)") {
		t.Error("the source reached the page as markup")
	}
	if strings.Count(body, `class="route-row"`) != 2 {
		t.Errorf("%d route rows, want 2", strings.Count(body, `class="route-row"`))
	}
	// Route order is the table's: claude-* before gpt-oss*.
	if strings.Index(body, "claude-*") > strings.Index(body, "gpt-oss*") {
		t.Error("routes out of order")
	}
}

func TestRoutesPageEmpty(t *testing.T) {
	code, body := getRoutesPage(t, routeState{Providers: []routes.ProviderInfo{}, Routes: []routes.RouteInfo{}, Note: routesapi.Note})
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, want := range []string{"<code>LUTHIEN_ROUTES</code> is unset", "No providers.",
		"No routes: every request goes to its endpoint's own provider.", `id="routes-source"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	code, body = getRoutesPage(t, nil)
	if code != http.StatusOK || !strings.Contains(body, `id="routes-unavailable"`) || strings.Contains(body, `id="routes-source"`) {
		t.Errorf("without a table: %d %s", code, body)
	}
}
