package ui

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Page sizes of the sessions page.
const (
	sessionsPageSize = 50
	// sessionSearchHits is how many matching calls a search reads; they are
	// grouped by session.
	sessionSearchHits = 200
)

// sessionsPage is the data of sessions.html: a page of sessions, or the
// sessions a search found.
type sessionsPage struct {
	Query string
	// Searched: the page shows search results (Found, Loose) instead of
	// Sessions.
	Searched bool
	Sessions []sessionRow
	// NextHref is the next page's link ("" on the last page); Paged says
	// this is not the first page.
	NextHref string
	Paged    bool
	Found    []searchSession
	// Loose are matching calls that belong to no session.
	Loose []searchCall
}

// sessionRow is one session of the list.
type sessionRow struct {
	ID, Href, Preview    string
	Turns, Interventions int32
	Models               []string
	First, Last          *timestamppb.Timestamp
}

// searchSession is a session with calls matching a search.
type searchSession struct {
	ID, Href string
	// Calls is how many of its calls matched; Snippets shows the first
	// few matches.
	Calls    int
	Models   []string
	Last     *timestamppb.Timestamp
	Snippets []searchSnippet
}

// searchCall is a matching call outside any session.
type searchCall struct {
	ID, Href, Model string
	Started         *timestamppb.Timestamp
	Snippet         searchSnippet
}

// searchSnippet is a search match's text, cut into pieces: the matched words
// (Mark) and the text around them, all shown as text.
type searchSnippet []searchPiece

// searchPiece is a piece of a snippet.
type searchPiece struct {
	Text string
	Mark bool
}

// searchSnippetsShown is how many matches a found session shows.
const searchSnippetsShown = 3

// sessions lists sessions, most recently active first, or searches them
// with ?q=.
func (u *UI) sessions(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), sessionTimeout)
	defer cancel()
	q := r.URL.Query()
	p := sessionsPage{Query: strings.TrimSpace(q.Get("q"))}
	if p.Query != "" {
		resp, err := u.cfg.History.SearchCalls(ctx, &cpv1.SearchCallsRequest{Query: p.Query, PageSize: sessionSearchHits})
		if err != nil {
			u.fail(w, r, "Search", err)
			return
		}
		p.Searched = true
		p.Found, p.Loose = groupSearchHits(resp.GetHits())
		u.render(w, r, "sessions.html", http.StatusOK, page{Title: "Sessions", Nav: "sessions", Data: p})
		return
	}
	token := q.Get("page_token")
	resp, err := u.cfg.History.ListSessions(ctx, &cpv1.ListSessionsRequest{PageSize: sessionsPageSize, PageToken: token})
	if err != nil {
		u.fail(w, r, "Sessions", err)
		return
	}
	p.Paged = token != ""
	for _, s := range resp.GetSessions() {
		p.Sessions = append(p.Sessions, sessionRow{
			ID: s.GetSessionId(), Href: sessionHref(s.GetSessionId()), Preview: txTruncate(s.GetPreview(), 160),
			Turns: s.GetTurns(), Interventions: s.GetInterventions(), Models: s.GetModels(),
			First: s.GetFirstActivity(), Last: s.GetLastActivity(),
		})
	}
	if next := resp.GetNextPageToken(); next != "" {
		p.NextHref = "/sessions?page_token=" + url.QueryEscape(next)
	}
	u.render(w, r, "sessions.html", http.StatusOK, page{Title: "Sessions", Nav: "sessions", Data: p})
}

// groupSearchHits groups search hits by session, in the order of each
// session's best hit; hits without a session are listed apart.
func groupSearchHits(hits []*cpv1.SearchHit) ([]searchSession, []searchCall) {
	var found []searchSession
	var loose []searchCall
	at := map[string]int{}
	for _, h := range hits {
		c := h.GetCall()
		id := c.GetSessionId()
		if id == "" {
			loose = append(loose, searchCall{ID: c.GetCallId(), Href: "/calls/" + url.PathEscape(c.GetCallId()),
				Model: c.GetModel(), Started: c.GetStartedAt(), Snippet: parseSearchSnippet(h.GetSnippet())})
			continue
		}
		i, ok := at[id]
		if !ok {
			i = len(found)
			at[id] = i
			found = append(found, searchSession{ID: id, Href: sessionHref(id)})
		}
		f := &found[i]
		f.Calls++
		if m := c.GetModel(); m != "" && !slices.Contains(f.Models, m) {
			f.Models = append(f.Models, m)
		}
		if f.Last == nil || c.GetStartedAt().AsTime().After(f.Last.AsTime()) {
			f.Last = c.GetStartedAt()
		}
		if len(f.Snippets) < searchSnippetsShown && h.GetSnippet() != "" {
			f.Snippets = append(f.Snippets, parseSearchSnippet(h.GetSnippet()))
		}
	}
	return found, loose
}

// parseSearchSnippet cuts a search snippet at the ** marks the store puts around
// matched words.
func parseSearchSnippet(s string) searchSnippet {
	var out searchSnippet
	for i, piece := range strings.Split(s, "**") {
		if piece != "" {
			out = append(out, searchPiece{Text: piece, Mark: i%2 == 1})
		}
	}
	return out
}

// sessionHref is the link to a session's page.
func sessionHref(id string) string { return "/sessions/" + url.PathEscape(id) }
