package ui

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"

	"luthien.dev/gateway/internal/htmltest"
)

func TestCallsPage(t *testing.T) {
	h := &fakeHistory{list: &cpv1.ListCallsResponse{NextPageToken: "tok-2", Calls: []*cpv1.CallSummary{
		{CallId: "c-new", Model: "gpt-x", Format: cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT, Status: 200, Stream: true, Intervened: true,
			DurationMs: 120, TtftMs: 30, Usage: &cpv1.Usage{InputTokens: 3, OutputTokens: 4}, PolicyRevision: "rev-1"},
		{CallId: "c-<b>old</b>", Model: "claude-x", Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES, Status: 429, Error: "rate limited"},
	}}}
	u := testUI(t, h)
	code, body, doc := get(t, "GET /calls", u.calls,
		"/calls?session_id=s1&model=gpt-x&status=200&intervened_only=1&since=2025-01-02&until=2025-01-03&page_token=tok-1")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	want := &cpv1.ListCallsRequest{SessionId: "s1", Model: "gpt-x", Status: 200, IntervenedOnly: true, PageSize: callsPageSize, PageToken: "tok-1"}
	since, until := h.listed.GetSince().AsTime(), h.listed.GetUntil().AsTime()
	h.listed.Since, h.listed.Until = nil, nil
	if !reflect.DeepEqual(h.listed, want) {
		t.Errorf("ListCalls(%v), want %v", h.listed, want)
	}
	if !since.Equal(time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)) || !until.Equal(time.Date(2025, 1, 4, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("since %v until %v: the until day is not included", since, until)
	}

	rows := htmltest.All(pgOne(t, doc, "table", "calls"), func(n *html.Node) bool { return htmltest.HasClass(n, "call-row") })
	if len(rows) != 2 || htmltest.Attr(rows[0], "data-call-id") != "c-new" || !htmltest.HasClass(rows[0], "intervened") || htmltest.HasClass(rows[1], "intervened") {
		t.Fatalf("rows: %d", len(rows))
	}
	link := pgFirstClass(rows[1], "call-link")
	if htmltest.Attr(link, "href") != "/calls/c-%3cb%3eold%3c/b%3e" && htmltest.Attr(link, "href") != "/calls/c-%3Cb%3Eold%3C/b%3E" {
		t.Errorf("link %q", htmltest.Attr(link, "href"))
	}
	if strings.Contains(body, "<b>old") {
		t.Error("a call id reached the page as markup")
	}
	for _, s := range []string{"openai", "stream", "120 ms", "30.00 ms", "3 / 4", "rev-1"} {
		if !strings.Contains(htmltest.Text(rows[0]), s) {
			t.Errorf("first row lacks %q: %s", s, htmltest.Text(rows[0]))
		}
	}
	if !strings.Contains(htmltest.Text(rows[1]), "rate limited") || !strings.Contains(htmltest.Text(rows[1]), "anthropic") {
		t.Errorf("second row: %s", htmltest.Text(rows[1]))
	}
	next, err := url.Parse(htmltest.Attr(pgOne(t, doc, "a", "next-page"), "href"))
	if err != nil {
		t.Fatal(err)
	}
	q := next.Query()
	if next.Path != "/calls" || q.Get("page_token") != "tok-2" || q.Get("session_id") != "s1" || q.Get("model") != "gpt-x" ||
		q.Get("status") != "200" || q.Get("intervened_only") != "1" || q.Get("since") != "2025-01-02" || q.Get("until") != "2025-01-03" {
		t.Errorf("next page link %s does not keep the filter", next)
	}
	form := pgOne(t, doc, "form", "call-filters")
	if htmltest.Attr(form, "method") != "get" {
		t.Error("the filter form does not GET")
	}
}

func TestCallsPageBadFilter(t *testing.T) {
	for _, q := range []string{"status=abc", "status=42", "since=yesterday", "until=2025-13-01"} {
		h := &fakeHistory{list: &cpv1.ListCallsResponse{}}
		code, body, _ := get(t, "GET /calls", testUI(t, h).calls, "/calls?"+q)
		if code != http.StatusBadRequest || !strings.Contains(body, `id="calls-error"`) || h.listed != nil {
			t.Errorf("%s: status %d, listed %v", q, code, h.listed)
		}
	}
}

// A search lists the matching calls with their snippets, matches marked
// as text.
func TestCallsPageSearch(t *testing.T) {
	h := &fakeHistory{hits: &cpv1.SearchCallsResponse{Hits: []*cpv1.SearchHit{
		{Call: &cpv1.CallSummary{CallId: "c-1", Status: 200}, Snippet: "say **<script>** now"}}}}
	code, body, doc := get(t, "GET /calls", testUI(t, h).calls, "/calls?q=script&model=ignored")
	if code != http.StatusOK || h.query != "script" || h.listed != nil {
		t.Fatalf("status %d, query %q, listed %v", code, h.query, h.listed)
	}
	rows := htmltest.All(pgOne(t, doc, "table", "calls"), func(n *html.Node) bool { return htmltest.HasClass(n, "call-row") })
	marks := htmltest.Texts(doc, "mark")
	if len(rows) != 1 || htmltest.Attr(rows[0], "data-call-id") != "c-1" || len(marks) != 1 || marks[0] != "<script>" || strings.Contains(body, "<script>") {
		t.Errorf("rows %d, marks %q", len(rows), marks)
	}
}

func TestSnippetSegments(t *testing.T) {
	got := snippetSegments("…the **cat** sat on **<b>**")
	want := []segment{keptSeg("…the "), chgSeg("cat"), keptSeg(" sat on "), chgSeg("<b>")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("snippetSegments = %+v", got)
	}
}
