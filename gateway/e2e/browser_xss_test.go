package e2e

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"

	"luthien.dev/bench/fakeupstream"
)

// xssText is markup that would run script if a page inserted it as HTML.
const xssText = `<script>window.__xss=1</script> <img src=x onerror="window.__xss=1">`

// sessionMeta is the Anthropic metadata that puts a call in session id.
func sessionMeta(id string) string {
	return `,"metadata":{"user_id":"user_abc_account__session_` + id + `"}`
}

// assertInert checks that the page shows the markup as text and that none
// of it became elements or ran.
func (tb *tab) assertInert(where string) {
	tb.t.Helper()
	var got struct {
		Shown  bool   `json:"shown"`
		XSS    string `json:"xss"`
		Images int    `json:"images"`
	}
	tb.eval(`({
		shown: document.body.innerText.includes("<script>window.__xss=1</script>"),
		xss: typeof window.__xss,
		images: document.querySelectorAll('img[src="x"]').length,
	})`, &got)
	if !got.Shown {
		tb.t.Errorf("%s: the markup is not shown as text", where)
	}
	if got.XSS != "undefined" {
		tb.t.Errorf("%s: window.__xss is %s: the markup ran", where, got.XSS)
	}
	if got.Images != 0 {
		tb.t.Errorf("%s: %d img[src=x] elements: the markup became HTML", where, got.Images)
	}
}

// A prompt and an answer made of markup stay text on every page that
// shows them: the live activity feed, the call and the session.
func TestBrowserXSS(t *testing.T) {
	e := start(t, "inprocess", options{})
	e.up.SetDefault(fakeupstream.Scenario{Text: "Echo: " + xssText})
	session := uniqueName("xss-")
	tb := newTab(t)
	tb.navigate(e.URL + "/activity")
	tb.waitText("#conn", "live")

	content, _ := json.Marshal(xssText)
	body := `{"model":"claude-fake","max_tokens":256,"stream":false,"messages":[{"role":"user","content":` + string(content) + `}]` + sessionMeta(session) + `}`
	resp, b := e.do(t, http.MethodPost, "/v1/messages", body, anthropicHeaders)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("call: %d %s", resp.StatusCode, b)
	}
	id := resp.Header.Get("X-Call-ID")
	tb.waitEventTypes(id, "request.received", "response.final")
	for _, typ := range []string{"request.received", "response.final"} {
		// The type's pill, not the summary's middle, which may be a link.
		tb.do("expanding "+typ, chromedp.Click(chromedp.CSS(eventsOf(id)+`[data-type="`+typ+`"] summary .event-type`)))
	}
	tb.assertInert("activity")
	tb.check("activity")

	waitRecorded(t, e, "", id)
	tb.navigate(e.URL + "/calls/" + id)
	tb.assertInert("call")
	tb.check("call")

	tb.navigate(e.URL + "/sessions/" + session)
	tb.assertInert("session")
	tb.check("session")
}
