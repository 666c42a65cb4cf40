package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// callsPageSize is how many calls a page of the list shows.
const callsPageSize = 50

// callFilter is the calls list's filter, from its query string.
type callFilter struct {
	SessionID, Model, Status string
	IntervenedOnly           bool
	// Since and Until are dates (2006-01-02, UTC), or RFC 3339 times;
	// Until's day is included.
	Since, Until string
	// Query searches the conversation text instead.
	Query     string
	PageToken string
}

// callsPage is the calls list.
type callsPage struct {
	Filter callFilter
	Calls  []callRow
	// Error says why the filter could not be used.
	Error string
	// Searching: Calls are search hits, with snippets.
	Searching bool
	// NextURL is the next (older) page with the same filter; FirstURL
	// the newest, when this is a later page.
	NextURL, FirstURL string
}

// callRow is one call of the list.
type callRow struct {
	ID, Model, Format, Started, StartedISO string
	Stream, Intervened                     bool
	Status                                 int32
	Duration, TTFT                         string
	Tokens                                 string
	Revision, Error                        string
	Snippet                                []segment
}

// calls serves the list of calls, newest first, filtered by the query
// string, a page at a time; with q, the calls a search finds.
func (u *UI) calls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := callFilter{
		SessionID: strings.TrimSpace(q.Get("session_id")), Model: strings.TrimSpace(q.Get("model")),
		Status: strings.TrimSpace(q.Get("status")), IntervenedOnly: isChecked(q.Get("intervened_only")),
		Since: strings.TrimSpace(q.Get("since")), Until: strings.TrimSpace(q.Get("until")),
		Query: strings.TrimSpace(q.Get("q")), PageToken: q.Get("page_token"),
	}
	p := callsPage{Filter: f}
	ctx, cancel := context.WithTimeout(r.Context(), callsTimeout)
	defer cancel()
	if f.Query != "" {
		p.Searching = true
		resp, err := u.cfg.History.SearchCalls(ctx, &cpv1.SearchCallsRequest{Query: f.Query, PageSize: callsPageSize})
		if err != nil {
			u.fail(w, r, "Search calls", err)
			return
		}
		for _, h := range resp.GetHits() {
			row := callRowOf(h.GetCall())
			row.Snippet = snippetSegments(h.GetSnippet())
			p.Calls = append(p.Calls, row)
		}
		u.render(w, r, "calls.html", http.StatusOK, page{Title: "Calls", Nav: "calls", Data: p})
		return
	}
	req, err := f.request()
	if err != nil {
		p.Error = err.Error()
		u.render(w, r, "calls.html", http.StatusBadRequest, page{Title: "Calls", Nav: "calls", Data: p})
		return
	}
	resp, err := u.cfg.History.ListCalls(ctx, req)
	if err != nil {
		u.fail(w, r, "List calls", err)
		return
	}
	for _, c := range resp.GetCalls() {
		p.Calls = append(p.Calls, callRowOf(c))
	}
	if next := resp.GetNextPageToken(); next != "" {
		p.NextURL = f.url(next)
	}
	if f.PageToken != "" {
		p.FirstURL = f.url("")
	}
	u.render(w, r, "calls.html", http.StatusOK, page{Title: "Calls", Nav: "calls", Data: p})
}

// isChecked reads a checkbox or boolean query value.
func isChecked(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "on", "yes":
		return true
	}
	return false
}

// request is the ListCalls request the filter asks for.
func (f callFilter) request() (*cpv1.ListCallsRequest, error) {
	req := &cpv1.ListCallsRequest{SessionId: f.SessionID, Model: f.Model, IntervenedOnly: f.IntervenedOnly,
		PageSize: callsPageSize, PageToken: f.PageToken}
	if f.Status != "" {
		n, err := strconv.Atoi(f.Status)
		if err != nil || n < 100 || n > 599 {
			return nil, fmt.Errorf("status %q is not an HTTP status", f.Status)
		}
		req.Status = int32(n)
	}
	if f.Since != "" {
		t, err := parseFilterTime(f.Since, false)
		if err != nil {
			return nil, fmt.Errorf("since: %w", err)
		}
		req.Since = timestamppb.New(t)
	}
	if f.Until != "" {
		t, err := parseFilterTime(f.Until, true)
		if err != nil {
			return nil, fmt.Errorf("until: %w", err)
		}
		req.Until = timestamppb.New(t)
	}
	return req, nil
}

// parseFilterTime reads a date (UTC; with endOfDay the start of the next
// day, so that the day is included) or an RFC 3339 time.
func parseFilterTime(s string, endOfDay bool) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		if endOfDay {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date (YYYY-MM-DD) or an RFC 3339 time", s)
}

// url is the list with this filter at the page of token.
func (f callFilter) url(token string) string {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("session_id", f.SessionID)
	set("model", f.Model)
	set("status", f.Status)
	if f.IntervenedOnly {
		v.Set("intervened_only", "1")
	}
	set("since", f.Since)
	set("until", f.Until)
	set("page_token", token)
	if len(v) == 0 {
		return "/calls"
	}
	return "/calls?" + v.Encode()
}

// callRowOf shows a call in the list.
func callRowOf(c *cpv1.CallSummary) callRow {
	row := callRow{
		ID: c.GetCallId(), Model: c.GetModel(), Format: callFormatName(c.GetFormat()),
		Started: callTime(c.GetStartedAt()), Stream: c.GetStream(), Intervened: c.GetIntervened(),
		Status: c.GetStatus(), Duration: callDuration(c.GetDurationMs()), TTFT: callDuration(c.GetTtftMs()),
		Revision: c.GetPolicyRevision(), Error: clipText(c.GetError(), 200),
	}
	if t := c.GetStartedAt(); t != nil {
		row.StartedISO = t.AsTime().UTC().Format(time.RFC3339Nano)
	}
	if us := c.GetUsage(); us != nil {
		row.Tokens = fmt.Sprintf("%d / %d", us.GetInputTokens(), us.GetOutputTokens())
	}
	return row
}

// callTime writes a timestamp for the page, in UTC; "" when unset.
func callTime(t *timestamppb.Timestamp) string {
	if t == nil || (t.GetSeconds() == 0 && t.GetNanos() == 0) {
		return ""
	}
	return t.AsTime().UTC().Format("2006-01-02 15:04:05.000")
}

// snippetSegments splits a search snippet, whose matches are marked
// **like this**, into segments: Changed marks a match.
func snippetSegments(s string) []segment {
	var out []segment
	parts := strings.Split(s, "**")
	for i, p := range parts {
		if p != "" {
			out = append(out, segment{Text: p, Changed: i%2 == 1 && i < len(parts)-1})
		}
	}
	return out
}
