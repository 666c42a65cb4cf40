package ui

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"luthien.dev/gateway/internal/htmltest"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// A routed call's page shows the exchange as the provider saw it beside
// the client's: its provider, what the translation dropped, the request
// as sent and the answer (a stream, as text) as received, escaped. An
// unrouted call has no such section.
func TestCallPageShowsUpstream(t *testing.T) {
	h := blockedCall(t)
	if _, body, doc := get(t, "GET /calls/{id}", testUI(t, h).call, "/calls/call-1"); len(htmltest.All(doc, func(n *html.Node) bool {
		return htmltest.Attr(n, "id") == "call-upstream"
	})) != 0 {
		t.Fatalf("an unrouted call shows an upstream section: %s", body)
	}
	at := h.call.GetEvents()[0].GetTime()
	h.call.Events = append(h.call.Events,
		&cpv1.CallEvent{CallId: "call-1", EventType: "route", Time: at, Payload: mustStruct(t, map[string]any{
			"provider": "claude", "dropped": []any{"presence_penalty: no Anthropic equivalent"}})},
		&cpv1.CallEvent{CallId: "call-1", EventType: "request.upstream", Time: at, Payload: mustStruct(t, map[string]any{
			"model": "claude-upstream", "system": "be brief " + xss})},
		&cpv1.CallEvent{CallId: "call-1", EventType: "response.upstream", Time: at, Payload: mustStruct(t, map[string]any{
			"raw": "event: message_start\ndata: {\"type\":\"message_start\"}\n\n" + xss})},
	)
	code, body, doc := get(t, "GET /calls/{id}", testUI(t, h).call, "/calls/call-1")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	sec := pgOne(t, doc, "section", "call-upstream")
	if !strings.Contains(htmltest.Text(sec), "provider claude") {
		t.Errorf("no provider: %s", htmltest.Text(sec))
	}
	if d := htmltest.Texts(sec, "li"); len(d) != 1 || !strings.Contains(d[0], "presence_penalty") {
		t.Errorf("dropped fields %q", d)
	}
	if r := htmltest.Text(pgOne(t, sec, "pre", "upstream-request")); !strings.Contains(r, `"model": "claude-upstream"`) || !strings.Contains(r, "<script>") {
		t.Errorf("upstream request %q", r)
	}
	if r := htmltest.Text(pgOne(t, sec, "pre", "upstream-response")); !strings.HasPrefix(r, "event: message_start\ndata: ") {
		t.Errorf("upstream response %q, want the stream's text as it came", r)
	}
	for _, raw := range []string{"<script>alert", "<img src=x"} {
		if strings.Contains(body, raw) {
			t.Errorf("page holds the raw markup %q", raw)
		}
	}
}
