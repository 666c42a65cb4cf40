package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"luthien.dev/bench/fakeupstream"
)

// On the routes page a person sees the table the gateway started with,
// replaces it with one that sends routed-* to an Anthropic provider, and
// sees the new table; the next Chat Completions call for routed-x is
// served by that provider (translated, with the route's model and key).
// A table naming an unknown provider is refused with its error on the
// page, and the table in effect stays.
func TestBrowserRoutes(t *testing.T) {
	secret := uniqueName("sk-ant-browser-routes-")
	t.Setenv("LUTHIEN_E2E_ROUTES_KEY", secret)
	home, second := fakeupstream.New(), fakeupstream.New()
	t.Cleanup(home.Close)
	t.Cleanup(second.Close)
	second.SetDefault(fakeupstream.Scenario{Text: "from the second provider"})
	path := routesAdminFile(t, routesAdminText(routesAdminStart, home, nil))
	e := start(t, "inprocess", options{up: home, gatewayEnv: map[string]string{"LUTHIEN_ROUTES": path, "LUTHIEN_ROUTES_KEY_ENVS": "LUTHIEN_E2E_ROUTES_KEY"}})
	tb := newTab(t)

	if code := tb.navigate(e.URL + "/routes"); code != http.StatusOK {
		t.Fatalf("GET /routes: %d", code)
	}
	if got := tb.texts("#routes-table .route-match"); strings.Join(got, ",") != "gpt-*" {
		t.Errorf("routes at start: %q", got)
	}
	if got := tb.texts("#providers-table .provider-row"); len(got) != 1 || !strings.Contains(got[0], "home") {
		t.Errorf("providers at start: %q", got)
	}
	if got := tb.text("#routes-path"); !strings.Contains(got, path) {
		t.Errorf("#routes-path %q", got)
	}
	if got := tb.text("#routes-note"); !strings.Contains(got, "until the gateway restarts") {
		t.Errorf("#routes-note %q", got)
	}
	if got := tb.text("#routes-defaults"); !strings.Contains(got, "/v1/chat/completions") || !strings.Contains(got, "/v1/messages") {
		t.Errorf("#routes-defaults %q", got)
	}
	if got := tb.text("nav a[aria-current=page]"); got != "Routes" {
		t.Errorf("current navigation entry %q", got)
	}
	tb.check("routes")

	newTable := strings.NewReplacer("HOME_URL", home.OpenAIBaseURL(), "SECOND_URL", second.AnthropicBaseURL()).Replace(`providers:
  home: {kind: openai, base_url: "HOME_URL"}
  claude: {kind: anthropic, base_url: "SECOND_URL", api_key_env: LUTHIEN_E2E_ROUTES_KEY, headers: {x-route-team: blue}}
routes:
  - {match: "routed-*", provider: claude, model: claude-routed}
  - {match: "gpt-*", provider: home}
`)
	tb.choose("textarea#routes-source", newTable)
	// Applying loads the page again, showing the table in effect.
	if code := tb.submit("applying", chromedp.Click(chromedp.CSS("button#routes-apply"))); code != http.StatusOK {
		t.Fatalf("the page after applying: %d", code)
	}
	tb.waitText("#routes-changed", "set at run time by loopback")
	if got := tb.texts("#routes-table .route-match"); strings.Join(got, ",") != "routed-*,gpt-*" {
		t.Errorf("routes after applying: %q", got)
	}
	if got := tb.texts("#routes-table .route-model"); strings.Join(got, ",") != "claude-routed" {
		t.Errorf("route models after applying: %q", got)
	}
	row := tb.text(`#providers-table .provider-row[data-name="claude"]`)
	for _, want := range []string{"anthropic", "LUTHIEN_E2E_ROUTES_KEY", "set", "X-Route-Team"} {
		if !strings.Contains(row, want) {
			t.Errorf("provider row %q lacks %q", row, want)
		}
	}
	var source string
	tb.eval(`document.querySelector("#routes-source").value`, &source)
	if source != newTable {
		t.Errorf("the editor after applying holds %q, want the table in effect", source)
	}
	if strings.Contains(tb.text("main"), secret) {
		t.Error("the page shows the key")
	}
	tb.check("routes-applied")

	// A call goes where the new route says.
	code, b := routedCall(t, e, "routed-x")
	if code != http.StatusOK {
		t.Fatalf("routed call: %d %s", code, b)
	}
	var chat struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(b, &chat); err != nil || len(chat.Choices) != 1 || chat.Choices[0].Message.Content != "from the second provider" {
		t.Errorf("routed answer in the client's format: %v %s", err, b)
	}
	m, r := lastModel(t, second)
	if r.Path != "/v1/messages" || m != "claude-routed" || r.Header.Get("X-Api-Key") != secret || r.Header.Get("X-Route-Team") != "blue" {
		t.Errorf("second provider got %s model %q, x-api-key %q, x-route-team %q", r.Path, m, r.Header.Get("X-Api-Key"), r.Header.Get("X-Route-Team"))
	}
	if n := home.Count("/v1/chat/completions"); n != 0 {
		t.Errorf("the default provider got %d calls", n)
	}

	// A table naming an unknown provider is refused on the page.
	tb.choose("textarea#routes-source", "routes:\n  - {match: 'x-*', provider: nowhere}\n")
	tb.do("applying an invalid table", chromedp.Click(chromedp.CSS("button#routes-apply")))
	tb.waitText("#routes-error", `unknown provider "nowhere"`)
	if got := tb.text("#routes-status"); !strings.Contains(got, "unchanged") {
		t.Errorf("#routes-status %q", got)
	}
	if got := tb.texts("#routes-table .route-match"); strings.Join(got, ",") != "routed-*,gpt-*" {
		t.Errorf("routes after the refused table: %q", got)
	}
	tb.shot("routes-refused")
	tb.expectConsoleErrors("invalid table", `status of 400`)
	_, gb := adminDo(t, e, "", http.MethodGet, "/api/routes", "")
	if s := decodeRoutes(t, gb); s.Source != newTable {
		t.Errorf("the table in effect after a refused one: %+v", s)
	}
	// Reset puts the table in effect back in the editor.
	tb.do("resetting", chromedp.Click(chromedp.CSS("button#routes-reset")))
	tb.eval(`document.querySelector("#routes-source").value`, &source)
	if source != newTable {
		t.Errorf("the editor after reset holds %q", source)
	}
	if got := tb.texts("#routes-error"); len(got) != 1 || got[0] != "" {
		t.Errorf("#routes-error after reset: %q", got)
	}
	tb.noConsoleErrors("reset")
}
