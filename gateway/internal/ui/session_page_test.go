package ui

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/gateway/internal/admin"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// sessionHistory answers the history queries of the sessions pages from
// fixed data.
type sessionHistory struct {
	cpv1.HistoryServiceClient
	sessions []*cpv1.SessionSummary
	next     string
	session  *cpv1.GetSessionResponse
	calls    map[string]*cpv1.GetCallResponse
	hits     []*cpv1.SearchHit
	// asked records the page token and query the pages sent.
	token, query string
}

func (h *sessionHistory) ListSessions(_ context.Context, req *cpv1.ListSessionsRequest, _ ...grpc.CallOption) (*cpv1.ListSessionsResponse, error) {
	h.token = req.GetPageToken()
	return &cpv1.ListSessionsResponse{Sessions: h.sessions, NextPageToken: h.next}, nil
}

func (h *sessionHistory) GetSession(_ context.Context, req *cpv1.GetSessionRequest, _ ...grpc.CallOption) (*cpv1.GetSessionResponse, error) {
	if h.session == nil || req.GetSessionId() != h.session.GetSession().GetSessionId() {
		return nil, status.Error(codes.NotFound, "no such session")
	}
	return h.session, nil
}

func (h *sessionHistory) GetCall(_ context.Context, req *cpv1.GetCallRequest, _ ...grpc.CallOption) (*cpv1.GetCallResponse, error) {
	if c, ok := h.calls[req.GetCallId()]; ok {
		return c, nil
	}
	return nil, status.Error(codes.NotFound, "no such call")
}

func (h *sessionHistory) SearchCalls(_ context.Context, req *cpv1.SearchCallsRequest, _ ...grpc.CallOption) (*cpv1.SearchCallsResponse, error) {
	h.query = req.GetQuery()
	return &cpv1.SearchCallsResponse{Hits: h.hits}, nil
}

// sessRoutes registers a UI on a plain mux.
type sessRoutes struct{ mux *http.ServeMux }

func (r sessRoutes) Admin(p string, h http.Handler)  { r.mux.Handle(p, h) }
func (r sessRoutes) Public(p string, h http.Handler) { r.mux.Handle(p, h) }

func sessionServer(t *testing.T, h *sessionHistory) *http.ServeMux {
	t.Helper()
	u, err := New(Config{Guard: admin.New(admin.Config{}), History: h, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	u.Register(sessRoutes{mux})
	return mux
}

func sessGet(t *testing.T, mux *http.ServeMux, url string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, url, nil))
	return w
}

const sessXSS = `<script>alert("x")</script>`

// testSession is a two-turn Anthropic session whose first answer is a
// tool call a policy changed, with hostile text everywhere.
func testSession(t *testing.T) *sessionHistory {
	start := timestamppb.Now()
	call := func(id string, intervened bool) *cpv1.CallSummary {
		return &cpv1.CallSummary{CallId: id, SessionId: "s/1", Model: "claude-x", Status: 200, StartedAt: start,
			Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES, Intervened: intervened}
	}
	req1 := map[string]any{"model": "claude-x", "max_tokens": 100.0, "messages": []any{
		map[string]any{"role": "user", "content": sessXSS}}}
	answer := func(cmd string) map[string]any {
		return map[string]any{"content": []any{map[string]any{"type": "tool_use", "id": "toolu_1", "name": "Bash",
			"input": map[string]any{"command": cmd}}}, "stop_reason": "tool_use"}
	}
	req2 := map[string]any{"model": "claude-x", "max_tokens": 100.0, "messages": []any{
		map[string]any{"role": "user", "content": sessXSS},
		map[string]any{"role": "assistant", "content": answer("ls")["content"]},
		map[string]any{"role": "user", "content": []any{map[string]any{"type": "tool_result", "tool_use_id": "toolu_1", "content": "file-" + sessXSS}}},
	}}
	return &sessionHistory{
		sessions: []*cpv1.SessionSummary{{SessionId: "s/1", Turns: 2, Interventions: 1, Models: []string{"claude-x"},
			Preview: sessXSS, FirstActivity: start, LastActivity: start}},
		next: "tok+2",
		session: &cpv1.GetSessionResponse{
			Session: &cpv1.SessionSummary{SessionId: "s/1", Turns: 3, Models: []string{"claude-x"}},
			Turns: []*cpv1.SessionTurn{
				{Call: call("c0", false), Request: txStruct(t, map[string]any{"max_tokens": 1.0, "messages": []any{
					map[string]any{"role": "user", "content": "quota"}}})},
				{Call: call("c1", true), Request: txStruct(t, req1), Response: txStruct(t, answer("ls")),
					PolicyEvents: []*cpv1.CallEvent{{EventType: "policy.judge.changed", Payload: txStruct(t, map[string]any{"reason": sessXSS})}}},
				{Call: call("c2", false), Request: txStruct(t, req2), Response: txStruct(t, map[string]any{
					"content": []any{map[string]any{"type": "text", "text": "done " + sessXSS}}})},
			},
		},
		calls: map[string]*cpv1.GetCallResponse{"c1": {Events: []*cpv1.CallEvent{
			{EventType: "request.received", Payload: txStruct(t, req1)},
			{EventType: "request.final", Payload: txStruct(t, req1)},
			{EventType: "response.original", Payload: txStruct(t, answer("rm -rf /"))},
			{EventType: "response.final", Payload: txStruct(t, answer("ls"))},
		}}},
		hits: []*cpv1.SearchHit{
			{Call: &cpv1.CallSummary{CallId: "c1", SessionId: "s/1", Model: "claude-x", StartedAt: start}, Snippet: "a **" + sessXSS + "** b"},
			{Call: &cpv1.CallSummary{CallId: "c2", SessionId: "s/1", Model: "claude-y", StartedAt: start}, Snippet: "**x**"},
			{Call: &cpv1.CallSummary{CallId: "c9", Model: "gpt"}, Snippet: "loose **x**"},
		},
	}
}

// noRawScript fails when hostile text reached the page as markup.
func noRawScript(t *testing.T, page string) {
	t.Helper()
	if strings.Contains(page, sessXSS) || strings.Contains(strings.ToLower(page), "<script>alert") {
		t.Errorf("unescaped script in the page:\n%s", page)
	}
}

func TestSessionsList(t *testing.T) {
	h := testSession(t)
	mux := sessionServer(t, h)
	w := sessGet(t, mux, "/sessions?page_token=tok1")
	page := w.Body.String()
	if w.Code != http.StatusOK || h.token != "tok1" {
		t.Fatalf("status %d, token %q", w.Code, h.token)
	}
	for _, want := range []string{`<table id="sessions"`, `class="session-row intervened" data-session-id="s/1"`,
		`class="session-link mono" href="/sessions/s%2F1"`, `<td class="turns">2</td>`, `<td class="interventions">1</td>`,
		`claude-x`, `href="/sessions?page_token=tok%2B2" id="next-page"`, `id="first-page"`, `&lt;script&gt;alert(`} {
		if !strings.Contains(page, want) {
			t.Errorf("list lacks %q:\n%s", want, page)
		}
	}
	noRawScript(t, page)
}

func TestSessionsSearch(t *testing.T) {
	h := testSession(t)
	mux := sessionServer(t, h)
	page := sessGet(t, mux, "/sessions?q=%22rm+-rf%22").Body.String()
	if h.query != `"rm -rf"` {
		t.Errorf("query sent: %q", h.query)
	}
	if n := strings.Count(page, `class="session-row"`); n != 1 {
		t.Errorf("%d session rows, want the two hits grouped in one:\n%s", n, page)
	}
	for _, want := range []string{`value="&#34;rm -rf&#34;"`, `<td>2</td>`, `claude-y`,
		`a <mark>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</mark> b`, `href="/calls/c9"`, `loose <mark>x</mark>`} {
		if !strings.Contains(page, want) {
			t.Errorf("search lacks %q:\n%s", want, page)
		}
	}
	noRawScript(t, page)
}

func TestSessionPage(t *testing.T) {
	mux := sessionServer(t, testSession(t))
	w := sessGet(t, mux, "/sessions/s%2F1")
	page := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, page)
	}
	noRawScript(t, page)
	turns := regexp.MustCompile(`(?s)<section class="turn[^"]*" id="turn-(\d)" data-call-id="(c\d)"`).FindAllStringSubmatch(page, -1)
	if len(turns) != 2 || turns[0][2] != "c1" || turns[1][2] != "c2" {
		t.Fatalf("turns %v:\n%s", turns, page)
	}
	first := page[strings.Index(page, `id="turn-1"`):strings.Index(page, `id="turn-2"`)]
	second := page[strings.Index(page, `id="turn-2"`):]
	for _, want := range []string{`<span class="tool-name">Bash</span>`, `&#34;command&#34;: &#34;ls&#34;`,
		`<div class="tool-result" data-tool-id="toolu_1">`, `file-&lt;script&gt;`, `button type="button" class="secondary turn-toggle"`,
		`<div class="view-original" hidden>`, `rm -rf /`, `class="annotation" data-type="policy.judge.changed"`,
		`<dd data-field="reason">&lt;script&gt;`, `<div class="msg user">`, `<div class="text">&lt;script&gt;`} {
		if !strings.Contains(first, want) {
			t.Errorf("turn 1 lacks %q:\n%s", want, first)
		}
	}
	for _, want := range []string{`<div class="tool-result-ref muted" data-tool-id="toolu_1">`, `done &lt;script&gt;`} {
		if !strings.Contains(second, want) {
			t.Errorf("turn 2 lacks %q:\n%s", want, second)
		}
	}
	// Only its collapsed full request carries the result again.
	if shown, _, _ := strings.Cut(second, `<details class="full-request"`); strings.Contains(shown, "file-&lt;script") ||
		strings.Contains(shown, "turn-toggle") || !strings.Contains(second, "file-&lt;script") {
		t.Errorf("turn 2 repeats the result or has a toggle:\n%s", second)
	}
	for _, want := range []string{`<details class="preflight" data-call-id="c0">`, `id="export-jsonl" href="/sessions/s%2F1/export?format=jsonl"`,
		`id="export-md"`, `id="live" data-session-id="s/1" data-turns-url="/sessions/s%2F1/turns"`, `src="/ui/static/session.js"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	if w := sessGet(t, mux, "/sessions/nope"); w.Code != http.StatusNotFound {
		t.Errorf("unknown session: %d", w.Code)
	}
}

func TestSessionTurnsPartial(t *testing.T) {
	mux := sessionServer(t, testSession(t))
	w := sessGet(t, mux, "/sessions/s%2F1/turns")
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.HasPrefix(body, `<div id="transcript">`) || strings.Contains(body, "<html") {
		t.Fatalf("partial %d %q", w.Code, body)
	}
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || w.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("headers %v", w.Header())
	}
	if strings.Count(body, `<section class="turn`) != 2 {
		t.Errorf("partial turns:\n%s", body)
	}
	noRawScript(t, body)
	if w := sessGet(t, mux, "/sessions/nope/turns"); w.Code != http.StatusNotFound {
		t.Errorf("unknown session: %d", w.Code)
	}
}

func TestSessionExportRoute(t *testing.T) {
	mux := sessionServer(t, testSession(t))
	w := sessGet(t, mux, "/sessions/s%2F1/export?format=jsonl")
	if w.Code != http.StatusOK || w.Header().Get("Content-Disposition") != `attachment; filename="session-s_1.jsonl"` {
		t.Errorf("jsonl: %d %v", w.Code, w.Header())
	}
	if n := strings.Count(strings.TrimSpace(w.Body.String()), "\n") + 1; n != 3 {
		t.Errorf("jsonl has %d lines, want 3 (one per call)", n)
	}
	if !strings.Contains(w.Body.String(), `"response_original"`) {
		t.Errorf("jsonl lacks the original response of the intervened call")
	}
	w = sessGet(t, mux, "/sessions/s%2F1/export?format=md")
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/markdown") ||
		!strings.Contains(w.Header().Get("Content-Disposition"), `filename="session-s_1.md"`) ||
		!strings.Contains(w.Body.String(), "**Tool call** `Bash`") {
		t.Errorf("md: %d %v\n%s", w.Code, w.Header(), w.Body.String())
	}
	for url, code := range map[string]int{
		"/sessions/s%2F1/export?format=pdf": http.StatusBadRequest,
		"/sessions/s%2F1/export":            http.StatusBadRequest,
		"/sessions/nope/export?format=md":   http.StatusNotFound,
	} {
		if w := sessGet(t, mux, url); w.Code != code {
			t.Errorf("%s: %d, want %d", url, w.Code, code)
		}
	}
}
