package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"luthien.dev/bench/fakeupstream"
)

// eventsOf is the CSS selector of a call's events on the activity page.
func eventsOf(callID string) string {
	return `#events .event[data-call="` + callID + `"]`
}

// waitEventTypes waits until the activity page shows the call's events
// of every wanted type, and returns the types it shows (in page order).
func (tb *tab) waitEventTypes(callID string, want ...string) []string {
	tb.t.Helper()
	sel, _ := json.Marshal(eventsOf(callID) + " .event-type")
	w, _ := json.Marshal(want)
	tb.waitFor(fmt.Sprintf("events %v of call %s", want, callID),
		fmt.Sprintf(`(types => %s.every(w => types.includes(w)))(Array.from(document.querySelectorAll(%s), e => e.innerText.trim()))`, w, sel),
		browserTimeout)
	return tb.texts(eventsOf(callID) + " .event-type")
}

// sendCall sends one call through the gateway and returns its call id.
func sendCall(t *testing.T, e *env, format string, stream bool, extra string) string {
	t.Helper()
	var resp *http.Response
	var body []byte
	if format == "anthropic" {
		resp, body = e.do(t, http.MethodPost, "/v1/messages", anthropicBody(stream, extra), anthropicHeaders)
	} else {
		resp, body = e.do(t, http.MethodPost, "/v1/chat/completions", openaiBody(stream, extra), openaiHeaders)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s call: %d %s", format, resp.StatusCode, body)
	}
	id := resp.Header.Get("X-Call-ID")
	if id == "" {
		t.Fatalf("%s call: no X-Call-ID", format)
	}
	return id
}

// The activity page shows calls as they happen, without a reload, in both
// formats; pausing holds events back until resumed; a type filter limits
// what shows.
func TestBrowserActivityLive(t *testing.T) {
	e := start(t, "inprocess", options{})
	e.up.SetDefault(fakeupstream.Scenario{Text: "live answer", Chunks: 3})
	tb := newTab(t)
	tb.navigate(e.URL + "/activity")
	tb.waitText("#conn", "live")
	// A mark in the document: still there later means no reload happened.
	tb.eval(`window.__sameDocument = "yes"`, nil)
	tb.check("activity-live")

	anth := sendCall(t, e, "anthropic", false, "")
	oai := sendCall(t, e, "openai", true, "")
	lifecycle := []string{"request.received", "request.final", "response.original", "response.final"}
	for _, id := range []string{anth, oai} {
		got := tb.waitEventTypes(id, lifecycle...)
		t.Logf("call %s: %v", id, got)
	}
	var mark string
	tb.eval(`window.__sameDocument || "reloaded"`, &mark)
	if mark != "yes" {
		t.Error("the page reloaded to show the events")
	}
	if n := tb.count("#events .event"); n < 8 {
		t.Errorf("%d events shown, want at least 8", n)
	}
	tb.check("activity-events")

	// Paused: the call's events are held (the counter says so), none shows.
	tb.do("pausing", chromedp.Click(chromedp.CSS("#pause")))
	tb.waitText("#pause", "Resume")
	held := sendCall(t, e, "anthropic", true, "")
	n := waitRecorded(t, e, "", held)
	tb.waitFor(fmt.Sprintf("%d held events", n),
		fmt.Sprintf(`/\b%d held\b/.test(document.getElementById("counts").innerText)`, n), browserTimeout)
	if n := tb.count(eventsOf(held)); n != 0 {
		t.Errorf("paused, yet %d events of call %s show", n, held)
	}
	tb.check("activity-paused")
	tb.do("resuming", chromedp.Click(chromedp.CSS("#pause")))
	tb.waitText("#pause", "Pause")
	tb.waitEventTypes(held, lifecycle...)
	tb.check("activity-resumed")

	// Filtered to response events: a new call shows only those.
	tb.do("filtering",
		chromedp.Click(chromedp.CSS("#clear")),
		chromedp.SetValue(chromedp.CSS(`form#filters input[name="type"]`), "response."),
		chromedp.Click(chromedp.CSS(`form#filters button[type="submit"]`)))
	tb.waitText("#conn", "live")
	if loc := tb.location(); !strings.Contains(loc, "type=response.") {
		t.Errorf("filter not in the address: %s", loc)
	}
	filtered := sendCall(t, e, "openai", false, "")
	// The feed keeps a call's order, so once its last event shows, any
	// request event let through would show too.
	got := tb.waitEventTypes(filtered, "response.original", "response.final")
	if slices.ContainsFunc(got, func(s string) bool { return !strings.HasPrefix(s, "response.") }) {
		t.Errorf("filtered to response.*, the page shows %v", got)
	}
	for _, typ := range tb.texts("#events .event .event-type") {
		if !strings.HasPrefix(typ, "response.") {
			t.Errorf("filtered to response.*, the page shows a %s event", typ)
		}
	}
	tb.eval(`window.__sameDocument || "reloaded"`, &mark)
	if mark != "yes" {
		t.Error("the page reloaded to filter")
	}
	tb.check("activity-filtered")
}
