package ui

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// sessionTimeout bounds the queries behind one session page or export.
const sessionTimeout = 20 * time.Second

// sessionVersionQueries is how many calls' other versions (original or final)
// are fetched at once.
const sessionVersionQueries = 4

// sessionPage is the data of session.html.
type sessionPage struct {
	ID      string
	Summary *cpv1.SessionSummary
	// Links: exports, the turns partial the page refreshes from, and the
	// session's calls and activity.
	ExportJSONL, ExportMD, TurnsURL, CallsURL, ActivityURL string
	Transcript                                             *transcript
}

// sessionPartials parses, once, what renders the transcript alone for the
// live page's refreshes: the "transcript" template of session.html.
var sessionPartials = sync.OnceValues(func() (*template.Template, error) {
	t, err := template.New("session-partials").Funcs(funcs).ParseFS(templateFS, "templates/session.html")
	if err != nil {
		return nil, fmt.Errorf("ui: template session.html: %w", err)
	}
	return t, nil
})

// session shows a session as a transcript.
func (u *UI) session(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sum, turns, err := u.loadSession(r.Context(), id)
	if err != nil {
		u.fail(w, r, "Session "+id, err)
		return
	}
	href := sessionHref(id)
	p := sessionPage{
		ID: id, Summary: sum, Transcript: buildTranscript(turns),
		ExportJSONL: href + "/export?format=jsonl", ExportMD: href + "/export?format=md",
		TurnsURL: href + "/turns", CallsURL: "/calls?session_id=" + url.QueryEscape(id),
		ActivityURL: "/activity?session_id=" + url.QueryEscape(id),
	}
	u.render(w, r, "session.html", http.StatusOK, page{Title: "Session " + id, Nav: "sessions", Data: p})
}

// sessionTurns answers the transcript alone (the #transcript element), for
// the session page to replace its own when the session moves on.
func (u *UI) sessionTurns(w http.ResponseWriter, r *http.Request) {
	_, turns, err := u.loadSession(r.Context(), r.PathValue("id"))
	if err != nil {
		code, msg := sessionStatusOf(err)
		http.Error(w, msg, code)
		return
	}
	var buf bytes.Buffer
	t, err := sessionPartials()
	if err == nil {
		err = t.ExecuteTemplate(&buf, "transcript", buildTranscript(turns))
	}
	if err != nil {
		u.cfg.Log.ErrorContext(r.Context(), "rendering a transcript", "err", err)
		http.Error(w, "transcript rendering failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// loadSession reads a session's turns with, for the calls a policy
// intervened in, the versions GetSession does not carry (the request as
// sent upstream, the response as upstream gave it).
func (u *UI) loadSession(ctx context.Context, id string) (*cpv1.SessionSummary, []txTurnData, error) {
	ctx, cancel := context.WithTimeout(ctx, sessionTimeout)
	defer cancel()
	resp, err := u.cfg.History.GetSession(ctx, &cpv1.GetSessionRequest{SessionId: id})
	if err != nil {
		// Returned as it is: its status says what to answer.
		return nil, nil, err
	}
	turns := make([]txTurnData, len(resp.GetTurns()))
	for i, t := range resp.GetTurns() {
		turns[i] = txTurnData{Call: t.GetCall(), PolicyEvents: t.GetPolicyEvents()}
		if t.GetRequest() != nil {
			turns[i].Request = t.GetRequest().AsMap()
		}
		if t.GetResponse() != nil {
			turns[i].Response = t.GetResponse().AsMap()
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(sessionVersionQueries)
	for i := range turns {
		if !turns[i].Call.GetIntervened() {
			continue
		}
		g.Go(func() error {
			if err := u.loadVersions(gctx, &turns[i]); err != nil {
				// The turn still shows what the client saw.
				u.cfg.Log.WarnContext(ctx, "reading a call's versions", "call_id", turns[i].Call.GetCallId(), "err", err)
			}
			return nil
		})
	}
	_ = g.Wait()
	return resp.GetSession(), turns, nil
}

// loadVersions fills in the request as sent upstream and the response as
// upstream gave it, when they differ from what the turn has.
func (u *UI) loadVersions(ctx context.Context, t *txTurnData) error {
	resp, err := u.cfg.History.GetCall(ctx, &cpv1.GetCallRequest{CallId: t.Call.GetCallId()})
	if err != nil {
		return fmt.Errorf("get call %s: %w", t.Call.GetCallId(), err)
	}
	last := map[string]*cpv1.CallEvent{}
	for _, ev := range resp.GetEvents() {
		last[ev.GetEventType()] = ev
	}
	if ev := last["request.final"]; ev.GetPayload() != nil {
		if m := ev.GetPayload().AsMap(); !reflect.DeepEqual(m, t.Request) {
			t.RequestFinal = m
		}
	}
	if ev := last["response.original"]; ev.GetPayload() != nil {
		if m := ev.GetPayload().AsMap(); !reflect.DeepEqual(m, t.Response) {
			t.ResponseOriginal = m
		}
	}
	return nil
}

// sessionStatusOf maps a query error to an HTTP status and a message.
func sessionStatusOf(err error) (int, string) {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.NotFound:
		return http.StatusNotFound, st.Message()
	case codes.InvalidArgument:
		return http.StatusBadRequest, st.Message()
	}
	return http.StatusBadGateway, st.Message()
}
