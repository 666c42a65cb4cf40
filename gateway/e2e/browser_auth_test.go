package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// browserAdminKey is the admin key of the gateways the browser tests log
// in to.
const browserAdminKey = "browser-test-admin-key"

// With an admin key, a person who is not logged in lands on the login
// page; a wrong key is refused on the page, the right one leads where
// they were going; logging out ends the session; and a browser without
// the session cookie cannot read the API.
func TestBrowserLoginLogout(t *testing.T) {
	e := start(t, "inprocess", options{gatewayEnv: map[string]string{"LUTHIEN_ADMIN_API_KEY": browserAdminKey}})
	tb := newTab(t)

	tb.navigate(e.URL + "/calls")
	if loc := tb.location(); !strings.HasPrefix(loc, e.URL+"/login") {
		t.Fatalf("anonymous /calls landed on %s, want the login page", loc)
	}
	if n := tb.count("#keyless-banner") + tb.count("#logout") + tb.count("#login-error"); n != 0 {
		t.Errorf("login page shows the keyless banner, a logout button or an error (%d elements)", n)
	}
	tb.check("login")

	if status := tb.login(e.URL, "not the key"); status != http.StatusUnauthorized {
		t.Errorf("wrong key: status %d, want 401", status)
	}
	tb.waitText("#login-error", "wrong admin key")
	if loc := tb.location(); !strings.HasPrefix(loc, e.URL+"/login") {
		t.Errorf("wrong key landed on %s", loc)
	}
	tb.shot("wrong-key")
	// The refused login answers 401, which the browser reports.
	tb.expectConsoleErrors("wrong key", `status of 401`)

	if status := tb.login(e.URL, browserAdminKey); status != http.StatusOK {
		t.Errorf("right key: status %d", status)
	}
	if loc := tb.location(); loc != e.URL+"/calls" {
		t.Fatalf("after logging in: %s, want %s/calls", loc, e.URL)
	}
	if tb.count("#logout") != 1 {
		t.Error("no logout button once logged in")
	}
	tb.check("logged-in-calls")

	tb.submit("logging out", chromedp.Click(chromedp.CSS("#logout")))
	if loc := tb.location(); !strings.HasPrefix(loc, e.URL+"/login") {
		t.Errorf("after logging out: %s, want the login page", loc)
	}
	tb.check("logged-out")
	tb.navigate(e.URL + "/calls")
	if loc := tb.location(); !strings.HasPrefix(loc, e.URL+"/login") {
		t.Errorf("/calls after logging out landed on %s, want the login page", loc)
	}
	var status int
	tb.eval(`fetch("/api/v1/calls").then(r => r.status)`, &status)
	if status != http.StatusUnauthorized {
		t.Errorf("API after logging out: %d, want 401", status)
	}
	tb.expectConsoleErrors("API after logging out", `status of 401`)
	tb.check("calls-after-logout")

	// A browser context of its own: no cookie at all.
	anon := newTab(t)
	anon.navigate(e.URL + "/login")
	anon.eval(`fetch("/api/v1/calls").then(r => r.status)`, &status)
	if status != http.StatusUnauthorized {
		t.Errorf("anonymous API fetch: %d, want 401", status)
	}
	anon.expectConsoleErrors("anonymous API fetch", `status of 401`)
	anon.shot("anonymous")
}

// Without an admin key the pages answer loopback clients, and say so.
func TestBrowserKeyless(t *testing.T) {
	e := start(t, "inprocess", options{})
	tb := newTab(t)
	tb.navigate(e.URL + "/")
	if got := tb.text("#keyless-banner"); !strings.Contains(got, "unauthenticated") {
		t.Errorf("keyless banner: %q", got)
	}
	if got := tb.text("#status-ready"); got != "ready" {
		t.Errorf("#status-ready: %q, want ready", got)
	}
	if tb.count("#logout") != 0 {
		t.Error("a logout button without a key")
	}
	tb.check("status")
}
