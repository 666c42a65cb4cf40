package e2e

import (
	"net/http"
	"testing"
)

// pagesToVisit are the UI's pages, given a recorded call and its session.
func pagesToVisit(callID, session string) []struct{ name, path string } {
	return []struct{ name, path string }{
		{"status", "/"},
		{"activity", "/activity"},
		{"calls", "/calls"},
		{"call", "/calls/" + callID},
		{"sessions", "/sessions"},
		{"session", "/sessions/" + session},
		{"policy", "/policy"},
	}
}

// Every page loads without a console error, an uncaught exception or a
// Content-Security-Policy violation, keyless and logged in with a key.
func TestBrowserPagesNoConsoleErrors(t *testing.T) {
	t.Run("keyless", func(t *testing.T) {
		e := start(t, "inprocess", options{})
		session := uniqueName("pages-")
		id := sendCall(t, e, "anthropic", true, sessionMeta(session))
		waitRecorded(t, e, "", id)
		tb := newTab(t)
		for _, p := range pagesToVisit(id, session) {
			if status := tb.navigate(e.URL + p.path); status != http.StatusOK {
				t.Errorf("%s: status %d", p.path, status)
			}
			tb.check(p.name)
		}
		// The check sees what it must: a script the page's policy refuses
		// is reported.
		tb.eval(`(() => {
			const s = document.createElement("script");
			s.textContent = "window.__inline = 1";
			document.head.append(s);
			return true;
		})()`, nil)
		tb.expectConsoleErrors("inline script", `Content Security Policy`)
	})
	t.Run("key", func(t *testing.T) {
		e := start(t, "inprocess", options{gatewayEnv: map[string]string{"LUTHIEN_ADMIN_API_KEY": browserAdminKey}})
		// With all_caps active the call's page shows a diff, too.
		setPolicyKey(t, e, browserAdminKey, "all_caps", nil)
		session := uniqueName("pages-")
		id := sendCall(t, e, "openai", false, "")
		waitRecorded(t, e, browserAdminKey, id)
		sid := sendCall(t, e, "anthropic", false, sessionMeta(session))
		waitRecorded(t, e, browserAdminKey, sid)
		tb := newTab(t)
		if status := tb.navigate(e.URL + "/login"); status != http.StatusOK {
			t.Errorf("/login: status %d", status)
		}
		tb.check("login")
		if status := tb.login(e.URL, browserAdminKey); status != http.StatusOK {
			t.Fatalf("logging in: status %d", status)
		}
		for _, p := range pagesToVisit(id, session) {
			if status := tb.navigate(e.URL + p.path); status != http.StatusOK {
				t.Errorf("%s: status %d", p.path, status)
			}
			tb.check(p.name)
		}
	})
}
