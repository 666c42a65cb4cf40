package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/dbtest"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// backend is a store under test.
type backend interface {
	Writer
	Purger
	ListCalls(ctx context.Context, f CallFilter) ([]*cpv1.CallSummary, string, error)
	GetCall(ctx context.Context, id string) (*cpv1.CallSummary, []*cpv1.CallEvent, error)
	ListSessions(ctx context.Context, limit int, token string) ([]*cpv1.SessionSummary, string, error)
	GetSession(ctx context.Context, id string) (*cpv1.SessionSummary, []Turn, error)
	Search(ctx context.Context, query string, limit int) ([]*cpv1.SearchHit, error)
	Kind() string
}

// newPool opens a pool on a fresh migrated database.
func newPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("pgxpool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// eachBackend runs f against the Postgres and the memory store.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		f(t, NewPostgres(newPool(t, dbtest.NewDatabase(t))))
	})
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		f(t, NewMemory(0, 0))
	})
}

func jsonStruct(t testing.TB, s string) *structpb.Struct {
	t.Helper()
	var out structpb.Struct
	if err := protojson.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("payload %s: %v", s, err)
	}
	return &out
}

// base is the time the test calls start from.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// record builds a call started minute minutes after base, with a request,
// its final form and a response.
func record(t testing.TB, id, session, model, userText, answer string, minute int, intervened bool) (*Call, []Event) {
	t.Helper()
	at := base.Add(time.Duration(minute) * time.Minute)
	sum := &cpv1.CallSummary{
		CallId: id, SessionId: session, Model: model, Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES,
		Upstream: "https://api.example", Status: 200, StartedAt: timestamppb.New(at),
		FinishedAt: timestamppb.New(at.Add(time.Second)), DurationMs: 1000, TtftMs: 120,
		Usage: &cpv1.Usage{InputTokens: 10, OutputTokens: 20}, Intervened: intervened,
	}
	if intervened {
		sum.Status = 403
	}
	req := fmt.Appendf(nil, `{"model":%q,"messages":[{"role":"user","content":%q}]}`, model, userText)
	resp := fmt.Appendf(nil, `{"content":[{"type":"text","text":%q}]}`, answer)
	ev := func(i int, typ string, payload []byte) Event {
		return Event{Key: fmt.Sprintf("g%d:%s", i, typ), Event: &cpv1.CallEvent{
			CallId: id, SessionId: session, EventType: typ, Time: timestamppb.New(at.Add(time.Duration(i) * time.Millisecond)), PayloadJson: payload}}
	}
	msg := &cpv1.Message{Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: answer}}}}}
	text, preview := ConversationText(req, msg)
	events := []Event{ev(0, "request.received", req), ev(1, "request.final", req), ev(2, "response.original", resp), ev(3, "response.final", resp)}
	return &Call{Summary: sum, Preview: preview, Text: text}, events
}

func write(t testing.TB, b Writer, calls []*Call, events []Event) {
	t.Helper()
	if err := b.WriteBatch(context.Background(), calls, events); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
}

func ids(calls []*cpv1.CallSummary) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.GetCallId()
	}
	return out
}

func TestWriteAndGetCall(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		call, events := record(t, "c1", "s1", "claude", "hello there", "general kenobi", 0, false)
		// A policy event arrives before the call's row.
		policyEv := Event{Key: "p:1", Event: &cpv1.CallEvent{CallId: "c1", SessionId: "s1", EventType: "policy.x.decided",
			Time: timestamppb.New(base.Add(1500 * time.Microsecond)), Payload: jsonStruct(t, `{"probability":0.25}`)}}
		write(t, b, nil, []Event{policyEv})
		got, evs, err := b.GetCall(ctx, "c1")
		if err != nil || got.GetCallId() != "c1" || got.GetSessionId() != "s1" || len(evs) != 1 {
			t.Fatalf("GetCall before the row = %v, %d events, %v", got, len(evs), err)
		}
		write(t, b, []*Call{call}, events)
		// Resending the same record (and the policy event) adds nothing.
		write(t, b, []*Call{call}, append(events, policyEv))

		got, evs, err = b.GetCall(ctx, "c1")
		if err != nil {
			t.Fatalf("GetCall: %v", err)
		}
		if got.GetModel() != "claude" || got.GetStatus() != 200 || got.GetUsage().GetOutputTokens() != 20 ||
			got.GetTtftMs() != 120 || got.GetFormat() != cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES ||
			!got.GetStartedAt().AsTime().Equal(base) {
			t.Errorf("GetCall summary = %v", got)
		}
		var types []string
		for _, ev := range evs {
			types = append(types, ev.GetEventType())
		}
		want := []string{"request.received", "request.final", "policy.x.decided", "response.original", "response.final"}
		if !slices.Equal(types, want) {
			t.Errorf("event types %v, want %v (in time order, no duplicates)", types, want)
		}
		if p := PayloadStruct(evs[2]).GetFields()["probability"].GetNumberValue(); p != 0.25 {
			t.Errorf("policy payload probability = %v", p)
		}
		if _, _, err := b.GetCall(ctx, "absent"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetCall(absent) error = %v, want ErrNotFound", err)
		}
	})
}

func TestListCalls(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		var calls []*Call
		var events []Event
		for i := range 7 {
			session := "s1"
			if i%2 == 1 {
				session = "s2"
			}
			model := "claude"
			if i == 3 {
				model = "gpt"
			}
			c, e := record(t, fmt.Sprintf("c%d", i), session, model, "q", "a", i, i == 5)
			calls, events = append(calls, c), append(events, e...)
		}
		write(t, b, calls, events)
		tests := []struct {
			name string
			f    CallFilter
			want []string
		}{
			{name: "all, newest first", f: CallFilter{Limit: 50}, want: []string{"c6", "c5", "c4", "c3", "c2", "c1", "c0"}},
			{name: "session", f: CallFilter{Limit: 50, SessionID: "s2"}, want: []string{"c5", "c3", "c1"}},
			{name: "model", f: CallFilter{Limit: 50, Model: "gpt"}, want: []string{"c3"}},
			{name: "status", f: CallFilter{Limit: 50, Status: 403}, want: []string{"c5"}},
			{name: "intervened", f: CallFilter{Limit: 50, IntervenedOnly: true}, want: []string{"c5"}},
			{name: "time range", f: CallFilter{Limit: 50, Since: base.Add(2 * time.Minute), Until: base.Add(4 * time.Minute)}, want: []string{"c3", "c2"}},
		}
		for _, tt := range tests {
			got, next, err := b.ListCalls(ctx, tt.f)
			if err != nil {
				t.Fatalf("%s: ListCalls: %v", tt.name, err)
			}
			if !slices.Equal(ids(got), tt.want) || next != "" {
				t.Errorf("%s: got %v (next %q), want %v", tt.name, ids(got), next, tt.want)
			}
		}
		// Pagination walks every call once.
		var all []string
		token := ""
		for range 10 {
			page, next, err := b.ListCalls(ctx, CallFilter{Limit: 3, PageToken: token})
			if err != nil {
				t.Fatalf("ListCalls page: %v", err)
			}
			all = append(all, ids(page)...)
			if token = next; token == "" {
				break
			}
		}
		if want := []string{"c6", "c5", "c4", "c3", "c2", "c1", "c0"}; !slices.Equal(all, want) {
			t.Errorf("pages = %v, want %v", all, want)
		}
		if _, _, err := b.ListCalls(ctx, CallFilter{Limit: 3, PageToken: "!!"}); !errors.Is(err, ErrBadPageToken) {
			t.Errorf("bad token error = %v", err)
		}
	})
}

func TestSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		c1, e1 := record(t, "a1", "alpha", "claude", "first question", "one", 0, false)
		c2, e2 := record(t, "a2", "alpha", "gpt", "second question", "two", 2, true)
		c3, e3 := record(t, "b1", "beta", "claude", "other", "three", 1, false)
		c4, e4 := record(t, "n1", "", "claude", "no session", "four", 3, false)
		pe := Event{Key: "p:x", Event: &cpv1.CallEvent{CallId: "a2", SessionId: "alpha", EventType: "policy.judge.blocked",
			Time: timestamppb.New(base.Add(2*time.Minute + time.Second)), Payload: &structpb.Struct{}}}
		write(t, b, []*Call{c1, c2, c3, c4}, slices.Concat(e1, e2, e3, e4, []Event{pe}))

		list, next, err := b.ListSessions(ctx, 1, "")
		if err != nil || len(list) != 1 || next == "" {
			t.Fatalf("ListSessions page 1 = %v, %q, %v", list, next, err)
		}
		rest, next2, err := b.ListSessions(ctx, 1, next)
		if err != nil || len(rest) != 1 || next2 != "" {
			t.Fatalf("ListSessions page 2 = %v, %q, %v", rest, next2, err)
		}
		alpha, beta := list[0], rest[0]
		if alpha.GetSessionId() != "alpha" || beta.GetSessionId() != "beta" {
			t.Fatalf("sessions %q, %q; want alpha (most recent) then beta", alpha.GetSessionId(), beta.GetSessionId())
		}
		if alpha.GetTurns() != 2 || alpha.GetInterventions() != 1 || !slices.Equal(alpha.GetModels(), []string{"claude", "gpt"}) ||
			alpha.GetPreview() != "first question" || !alpha.GetFirstActivity().AsTime().Equal(base) ||
			!alpha.GetLastActivity().AsTime().Equal(base.Add(2*time.Minute)) {
			t.Errorf("alpha = %v", alpha)
		}

		sum, turns, err := b.GetSession(ctx, "alpha")
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		if sum.GetTurns() != 2 || len(turns) != 2 || turns[0].Call.GetCallId() != "a1" || turns[1].Call.GetCallId() != "a2" {
			t.Fatalf("GetSession = %v with turns %v", sum, turns)
		}
		if got := PayloadStruct(turns[0].Request).GetFields()["messages"].GetListValue().GetValues()[0].GetStructValue().GetFields()["content"].GetStringValue(); got != "first question" {
			t.Errorf("turn 1 request content %q", got)
		}
		if turns[1].Response.GetEventType() != "response.final" || len(turns[1].PolicyEvents) != 1 || len(turns[0].PolicyEvents) != 0 {
			t.Errorf("turn 2 = response %v, policy events %v", turns[1].Response, turns[1].PolicyEvents)
		}
		if _, _, err := b.GetSession(ctx, "gamma"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetSession(gamma) error = %v, want ErrNotFound", err)
		}
	})
}

func TestSearch(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		c1, e1 := record(t, "c1", "s", "m", "How do I configure the firewall?", "Use iptables rules.", 0, false)
		c2, e2 := record(t, "c2", "s", "m", "Write a haiku about autumn", "Leaves fall, firewall holds", 1, false)
		c3, e3 := record(t, "c3", "s", "m", "Unrelated question", "Unrelated answer", 2, false)
		write(t, b, []*Call{c1, c2, c3}, slices.Concat(e1, e2, e3))
		tests := []struct {
			query string
			want  []string
		}{
			{"firewall", []string{"c1", "c2"}},
			{"iptables", []string{"c1"}},
			{"firewall -haiku", []string{"c1"}},
			{`"unrelated answer"`, []string{"c3"}},
			{"nothing-like-this", nil},
		}
		for _, tt := range tests {
			hits, err := b.Search(ctx, tt.query, 10)
			if err != nil {
				t.Fatalf("Search(%q): %v", tt.query, err)
			}
			var got []string
			for _, h := range hits {
				got = append(got, h.GetCall().GetCallId())
				if !strings.Contains(h.GetSnippet(), "**") {
					t.Errorf("Search(%q) snippet %q has no marked match", tt.query, h.GetSnippet())
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Search(%q) = %v, want %v", tt.query, got, tt.want)
			}
		}
	})
}

func TestPurge(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		old, oldEvents := record(t, "old", "s", "m", "q", "a", -60*24*10, false)
		recent, recentEvents := record(t, "recent", "s", "m", "q", "a", 0, false)
		write(t, b, []*Call{old, recent}, append(oldEvents, recentEvents...))
		calls, events, err := b.Purge(ctx, base.Add(-24*time.Hour), 2) // small batches: several rounds
		if err != nil {
			t.Fatalf("Purge: %v", err)
		}
		if calls != 1 || events != 4 {
			t.Errorf("Purge deleted %d calls and %d events, want 1 and 4", calls, events)
		}
		if _, _, err := b.GetCall(ctx, "old"); !errors.Is(err, ErrNotFound) {
			t.Errorf("old call still there: %v", err)
		}
		if _, evs, err := b.GetCall(ctx, "recent"); err != nil || len(evs) != 4 {
			t.Errorf("recent call: %d events, %v", len(evs), err)
		}
	})
}

func TestRetentionRuns(t *testing.T) {
	m := NewMemory(0, 0)
	c, e := record(t, "old", "s", "m", "q", "a", 0, false)
	write(t, m, []*Call{c}, e)
	if err := PurgeOnce(context.Background(), m, 30, base.Add(29*24*time.Hour), discard()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.GetCall(context.Background(), "old"); err != nil {
		t.Fatalf("a call within the retention was purged: %v", err)
	}
	if err := PurgeOnce(context.Background(), m, 30, base.Add(31*24*time.Hour), discard()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.GetCall(context.Background(), "old"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a call older than the retention was kept: %v", err)
	}
}

func TestMemoryIsBounded(t *testing.T) {
	m := NewMemory(3, 100)
	for i := range 5 {
		c, e := record(t, fmt.Sprintf("c%d", i), "s", "m", "q", "a", i, false)
		write(t, m, []*Call{c}, e)
	}
	got, _, err := m.ListCalls(context.Background(), CallFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"c4", "c3", "c2"}; !slices.Equal(ids(got), want) {
		t.Errorf("kept %v, want the newest %v", ids(got), want)
	}
	m = NewMemory(100, 10)
	for i := range 5 {
		c, e := record(t, fmt.Sprintf("c%d", i), "s", "m", "q", "a", i, false)
		write(t, m, []*Call{c}, e)
	}
	if m.nEvents > 10 {
		t.Errorf("memory store holds %d events, bound 10", m.nEvents)
	}
}

// A body no policy changed is written once; readers still get its final
// event, and a session's turn its response.
func TestUnchangedBodiesStoredOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		call, events := record(t, "same", "sess", "m", "question", "answer", 0, false)
		// As a call session queues an unchanged record: the finals are
		// copies of the originals.
		events[1].Copy, events[3].Copy = true, true
		events[1].Event.PayloadJson, events[3].Event.PayloadJson = events[0].Event.PayloadJson, events[2].Event.PayloadJson
		call.RequestUnchanged, call.ResponseUnchanged = true, true
		write(t, b, []*Call{call}, events)
		_, got, err := b.GetCall(context.Background(), "same")
		if err != nil {
			t.Fatalf("GetCall: %v", err)
		}
		var types []string
		for _, ev := range got {
			types = append(types, ev.GetEventType())
		}
		if want := "request.received request.final response.original response.final"; strings.Join(types, " ") != want {
			t.Fatalf("events %v, want %s", types, want)
		}
		if string(got[1].GetPayloadJson()) != string(got[0].GetPayloadJson()) || string(got[3].GetPayloadJson()) != string(got[2].GetPayloadJson()) {
			t.Errorf("final payloads differ from the originals: %s / %s", got[1].GetPayloadJson(), got[3].GetPayloadJson())
		}
		_, turns, err := b.GetSession(context.Background(), "sess")
		if err != nil || len(turns) != 1 {
			t.Fatalf("GetSession: %d turns, %v", len(turns), err)
		}
		if !strings.Contains(string(turns[0].Response.GetPayloadJson()), "answer") {
			t.Errorf("turn response %v", turns[0].Response)
		}
		if p, ok := b.(*Postgres); ok {
			var rows int
			if err := p.pool.QueryRow(context.Background(), "SELECT count(*) FROM call_events WHERE call_id = 'same'").Scan(&rows); err != nil || rows != 2 {
				t.Errorf("%d event rows stored (%v), want 2: the copies are flags", rows, err)
			}
		}
	})
}
