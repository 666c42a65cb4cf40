package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"luthien.dev/bench/fakeupstream"
)

// On the policy page a person picks all_caps and activates it: the page
// says so and calls come back uppercased. An invalid policy is refused
// with its validation error, and the active policy stays.
func TestBrowserPolicySwitch(t *testing.T) {
	e := start(t, "inprocess", options{})
	e.up.SetDefault(fakeupstream.Scenario{Text: "speak softly"})
	tb := newTab(t)
	tb.navigate(e.URL + "/policy")
	tb.waitFor("the class list", `document.querySelector('select#policy-class option[value="all_caps"]')`, browserTimeout)
	if tb.count("#catalogue .policy-type") == 0 {
		t.Error("no policy classes in the catalogue")
	}
	tb.check("policy")

	tb.choose("select#policy-class", "all_caps")
	tb.do("activating", chromedp.Click(chromedp.CSS("button#policy-activate")))
	tb.waitText("#policy-status", "all_caps")
	tb.waitText("#active-class", "all_caps")
	tb.check("policy-activated")
	if got := activeClass(t, e, ""); got != "all_caps" {
		t.Fatalf("active policy after activating on the page: %s", got)
	}
	resp, b := e.do(t, http.MethodPost, "/v1/chat/completions", openaiBody(false, ""), openaiHeaders)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "SPEAK SOFTLY") {
		t.Errorf("call under all_caps: %d %s", resp.StatusCode, b)
	}

	tb.choose("textarea#policy-editor", `{"class":"regex_block","config":{"patterns":["("]}}`)
	tb.do("activating the invalid policy", chromedp.Click(chromedp.CSS("button#policy-activate")))
	tb.waitFor("the validation error", `document.querySelector("#policy-error").innerText.trim() !== ""`, browserTimeout)
	msg := tb.text("#policy-error")
	if !strings.Contains(strings.ToLower(msg), "pattern") && !strings.Contains(msg, "(") {
		t.Errorf("#policy-error %q does not explain the bad pattern", msg)
	}
	if got := tb.text("#active-class"); got != "all_caps" {
		t.Errorf("#active-class after the refused policy: %q", got)
	}
	tb.shot("policy-refused")
	// The refused activation answers 400, which the browser reports.
	tb.expectConsoleErrors("invalid policy", `status of 400`)
	if got := activeClass(t, e, ""); got != "all_caps" {
		t.Errorf("active policy after a refused one: %s, want all_caps", got)
	}
}
