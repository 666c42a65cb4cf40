package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// textSearchConfig is the PostgreSQL text search configuration of the
// conversation index.
const textSearchConfig = "english"

// Postgres is the PostgreSQL store (tables calls and call_events of the
// migrations). It is safe for concurrent use.
type Postgres struct {
	pool *pgxpool.Pool
}

var _ Writer = (*Postgres)(nil)

// NewPostgres returns a store on pool, whose schema is migrated.
func NewPostgres(pool *pgxpool.Pool) *Postgres {
	return &Postgres{pool: pool}
}

// Kind returns KindPostgres.
func (p *Postgres) Kind() string { return KindPostgres }

const insertEvents = `INSERT INTO call_events (call_id, event_key, session_id, event_type, created_at, payload)
SELECT call_id, event_key, session_id, event_type, created_at, payload::json
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
  AS t(call_id, event_key, session_id, event_type, created_at, payload)
ON CONFLICT (call_id, event_key) DO NOTHING`

// upsertCalls writes many call rows in one statement, from one array per
// column: one statement per batch instead of one per call costs
// PostgreSQL a third of what it spends on a batch.
const upsertCalls = `INSERT INTO calls (call_id, session_id, user_id, model, client_format, upstream, status, stream,
  started_at, finished_at, ttft_ms, duration_ms, input_tokens, output_tokens, cache_read_tokens,
  cache_creation_tokens, intervened, policy_revision, error, preview, conversation_text, conversation,
  request_unchanged, response_unchanged)
SELECT call_id, session_id, user_id, model, client_format, upstream, status, stream,
  started_at, finished_at, ttft_ms, duration_ms, input_tokens, output_tokens, cache_read_tokens,
  cache_creation_tokens, intervened, policy_revision, error, preview, conversation_text,
  to_tsvector('` + textSearchConfig + `', conversation_text), request_unchanged, response_unchanged
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::integer[], $8::boolean[],
  $9::timestamptz[], $10::timestamptz[], $11::double precision[], $12::double precision[], $13::bigint[],
  $14::bigint[], $15::bigint[], $16::bigint[], $17::boolean[], $18::text[], $19::text[], $20::text[], $21::text[],
  $22::boolean[], $23::boolean[])
  AS t(call_id, session_id, user_id, model, client_format, upstream, status, stream,
  started_at, finished_at, ttft_ms, duration_ms, input_tokens, output_tokens, cache_read_tokens,
  cache_creation_tokens, intervened, policy_revision, error, preview, conversation_text,
  request_unchanged, response_unchanged)
ON CONFLICT (call_id) DO UPDATE SET session_id = EXCLUDED.session_id, user_id = EXCLUDED.user_id,
  model = EXCLUDED.model, client_format = EXCLUDED.client_format, upstream = EXCLUDED.upstream,
  status = EXCLUDED.status, stream = EXCLUDED.stream, started_at = EXCLUDED.started_at,
  finished_at = EXCLUDED.finished_at, ttft_ms = EXCLUDED.ttft_ms, duration_ms = EXCLUDED.duration_ms,
  input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,
  cache_read_tokens = EXCLUDED.cache_read_tokens, cache_creation_tokens = EXCLUDED.cache_creation_tokens,
  intervened = EXCLUDED.intervened, policy_revision = EXCLUDED.policy_revision, error = EXCLUDED.error,
  preview = EXCLUDED.preview, conversation_text = EXCLUDED.conversation_text,
  conversation = EXCLUDED.conversation, request_unchanged = EXCLUDED.request_unchanged,
  response_unchanged = EXCLUDED.response_unchanged`

// WriteBatch writes calls and events in one round trip and one implicit
// transaction: events with a multi-row INSERT over arrays, call rows with
// a multi-row upsert. Text PostgreSQL cannot hold is repaired first
// (repair.go). A batch PostgreSQL refuses for its data is reported as
// ErrRejected.
func (p *Postgres) WriteBatch(ctx context.Context, calls []*Call, events []Event) error {
	var b pgx.Batch
	if len(events) > 0 {
		// Copies are kept as the call row's flags (withCopies).
		events = slices.DeleteFunc(slices.Clone(events), func(e Event) bool { return e.Copy })
	}
	if len(events) > 0 {
		n := len(events)
		callIDs, keys, sessions, types := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		times, payloads := make([]time.Time, n), make([]string, n)
		for i, e := range events {
			ev := repairedEvent(e.Event)
			callIDs[i], sessions[i], types[i] = ev.GetCallId(), ev.GetSessionId(), ev.GetEventType()
			keys[i], _ = repairString(e.Key)
			times[i] = eventTime(ev)
			payloads[i] = string(PayloadJSON(ev))
		}
		b.Queue(insertEvents, callIDs, keys, sessions, types, times, payloads)
	}
	if len(calls) > 0 {
		// Repaired before latestCalls: two ids may repair to one.
		repaired := make([]*Call, len(calls))
		for i, c := range calls {
			repaired[i] = repairedCall(c)
		}
		b.Queue(upsertCalls, callColumnsOf(latestCalls(repaired))...)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := p.pool.SendBatch(ctx, &b).Close(); err != nil {
		if rejected(err) {
			return fmt.Errorf("store: write batch: %w: %w", ErrRejected, err)
		}
		return fmt.Errorf("store: write batch: %w", err)
	}
	return nil
}

// rejected reports whether PostgreSQL refused a write for its data, which
// no retry can change: a data exception (class 22: a value out of range,
// bad text), an integrity violation (23), a cardinality violation (21: a
// row touched twice) or a program limit (54: an index row or a tsvector
// too large, as a client-chosen session id of kilobytes makes).
func rejected(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) < 2 {
		return false
	}
	switch pgErr.Code[:2] {
	case "21", "22", "23", "54":
		return true
	}
	return false
}

// callColumnsOf returns the arrays of upsertCalls' parameters.
func callColumnsOf(calls []*Call) []any {
	n := len(calls)
	ids, sessions, users, models, formats, upstreams := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	statuses, streams, started, finished := make([]int32, n), make([]bool, n), make([]time.Time, n), make([]*time.Time, n)
	ttft, duration := make([]float64, n), make([]float64, n)
	input, output, cacheRead, cacheCreation := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	intervened, revisions, errs, previews, texts := make([]bool, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n)
	reqUnchanged, respUnchanged := make([]bool, n), make([]bool, n)
	for i, c := range calls {
		s := c.Summary
		u := s.GetUsage()
		ids[i], sessions[i], users[i], models[i] = s.GetCallId(), s.GetSessionId(), s.GetUserId(), s.GetModel()
		formats[i], upstreams[i], statuses[i], streams[i] = s.GetFormat().String(), s.GetUpstream(), s.GetStatus(), s.GetStream()
		started[i] = startedAt(s)
		if s.GetFinishedAt() != nil {
			t := s.GetFinishedAt().AsTime()
			finished[i] = &t
		}
		ttft[i], duration[i] = s.GetTtftMs(), s.GetDurationMs()
		input[i], output[i] = u.GetInputTokens(), u.GetOutputTokens()
		cacheRead[i], cacheCreation[i] = u.GetCacheReadInputTokens(), u.GetCacheCreationInputTokens()
		intervened[i], revisions[i], errs[i] = s.GetIntervened(), s.GetPolicyRevision(), s.GetError()
		previews[i], texts[i] = c.Preview, c.Text
		reqUnchanged[i], respUnchanged[i] = c.RequestUnchanged, c.ResponseUnchanged
	}
	return []any{ids, sessions, users, models, formats, upstreams, statuses, streams, started, finished, ttft, duration,
		input, output, cacheRead, cacheCreation, intervened, revisions, errs, previews, texts, reqUnchanged, respUnchanged}
}

// latestCalls keeps the last row of each call id (an upsert cannot touch a
// row twice in one statement batch without ordering surprises).
func latestCalls(calls []*Call) []*Call {
	if len(calls) < 2 {
		return calls
	}
	seen := make(map[string]int, len(calls))
	out := make([]*Call, 0, len(calls))
	for _, c := range calls {
		id := c.Summary.GetCallId()
		if i, ok := seen[id]; ok {
			out[i] = c
			continue
		}
		seen[id] = len(out)
		out = append(out, c)
	}
	return out
}

// eventTime is the event's time, or now when it has none.
func eventTime(ev *cpv1.CallEvent) time.Time {
	if ev.GetTime() != nil {
		return ev.GetTime().AsTime()
	}
	return time.Now()
}

// startedAt is the call's start, or now when it has none.
func startedAt(s *cpv1.CallSummary) time.Time {
	if s.GetStartedAt() != nil {
		return s.GetStartedAt().AsTime()
	}
	return time.Now()
}

const callColumns = `call_id, session_id, user_id, model, client_format, upstream, status, stream, started_at,
  finished_at, coalesce(ttft_ms, 0), coalesce(duration_ms, 0), input_tokens, output_tokens, cache_read_tokens,
  cache_creation_tokens, intervened, policy_revision, error`

// scanCall scans callColumns (plus extra destinations) into a summary.
func scanCall(row pgx.Row, extra ...any) (*cpv1.CallSummary, error) {
	var s cpv1.CallSummary
	var format string
	var started time.Time
	var finished *time.Time
	u := &cpv1.Usage{}
	dest := append([]any{&s.CallId, &s.SessionId, &s.UserId, &s.Model, &format, &s.Upstream, &s.Status, &s.Stream,
		&started, &finished, &s.TtftMs, &s.DurationMs, &u.InputTokens, &u.OutputTokens, &u.CacheReadInputTokens,
		&u.CacheCreationInputTokens, &s.Intervened, &s.PolicyRevision, &s.Error}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	s.Format = cpv1.ClientFormat(cpv1.ClientFormat_value[format])
	s.StartedAt = timestamppb.New(started)
	if finished != nil {
		s.FinishedAt = timestamppb.New(*finished)
	}
	s.Usage = u
	return &s, nil
}

// ListCalls lists calls matching f, newest first, and the token of the
// next page ("" on the last).
func (p *Postgres) ListCalls(ctx context.Context, f CallFilter) ([]*cpv1.CallSummary, string, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.SessionID != "" {
		where = append(where, "session_id = "+arg(f.SessionID))
	}
	if f.Model != "" {
		where = append(where, "model = "+arg(f.Model))
	}
	if f.Status != 0 {
		where = append(where, "status = "+arg(f.Status))
	}
	if f.IntervenedOnly {
		where = append(where, "intervened")
	}
	if !f.Since.IsZero() {
		where = append(where, "started_at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "started_at < "+arg(f.Until))
	}
	if f.PageToken != "" {
		t, id, err := decodeCallToken(f.PageToken)
		if err != nil {
			return nil, "", err
		}
		where = append(where, fmt.Sprintf("(started_at, call_id) < (%s, %s)", arg(t), arg(id)))
	}
	q := "SELECT " + callColumns + " FROM calls"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY started_at DESC, call_id DESC LIMIT " + arg(f.Limit+1)
	rows, err := p.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list calls: %w", err)
	}
	calls, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cpv1.CallSummary, error) { return scanCall(r) })
	if err != nil {
		return nil, "", fmt.Errorf("store: list calls: %w", err)
	}
	return pageCalls(calls, f.Limit)
}

// querier runs queries: the pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// snapshot runs f in a read-only repeatable-read transaction, so that its
// queries see one state of the database (a call's row and its events are
// committed together).
func (p *Postgres) snapshot(ctx context.Context, f func(q querier) error) error {
	return pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error { return f(tx) })
}

// GetCall returns a call and its events in time order. A call whose row
// is not written yet but which has events is returned with what the
// events tell.
func (p *Postgres) GetCall(ctx context.Context, id string) (*cpv1.CallSummary, []*cpv1.CallEvent, error) {
	var s *cpv1.CallSummary
	var events []*cpv1.CallEvent
	err := p.snapshot(ctx, func(q querier) error {
		var err error
		var reqUnchanged, respUnchanged bool
		s, err = scanCall(q.QueryRow(ctx, "SELECT "+callColumns+", request_unchanged, response_unchanged FROM calls WHERE call_id = $1", id),
			&reqUnchanged, &respUnchanged)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("store: get call: %w", err)
		}
		if events, err = p.events(ctx, q, "call_id = $1", id); err != nil {
			return err
		}
		events = withCopies(events, reqUnchanged, respUnchanged)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if s == nil {
		if len(events) == 0 {
			return nil, nil, ErrNotFound
		}
		s = &cpv1.CallSummary{CallId: id, SessionId: events[0].GetSessionId()}
	}
	return s, events, nil
}

// withCopies adds the final events stored as the call row's flags, each
// right after its original.
func withCopies(events []*cpv1.CallEvent, reqUnchanged, respUnchanged bool) []*cpv1.CallEvent {
	if !reqUnchanged && !respUnchanged {
		return events
	}
	out := make([]*cpv1.CallEvent, 0, len(events)+2)
	for _, ev := range events {
		out = append(out, ev)
		final := ""
		switch {
		case reqUnchanged && ev.GetEventType() == "request.received":
			final = "request.final"
		case respUnchanged && ev.GetEventType() == "response.original":
			final = "response.final"
		}
		if final != "" {
			copied := EventLike(ev, final)
			copied.PayloadJson = ev.GetPayloadJson()
			out = append(out, copied)
		}
	}
	return out
}

// events returns the events matching where (with args), in time order.
func (p *Postgres) events(ctx context.Context, q querier, where string, args ...any) ([]*cpv1.CallEvent, error) {
	rows, err := q.Query(ctx, `SELECT call_id, session_id, event_type, created_at, payload::text
		FROM call_events WHERE `+where+` ORDER BY created_at, event_key`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cpv1.CallEvent, error) {
		var ev cpv1.CallEvent
		var at time.Time
		if err := r.Scan(&ev.CallId, &ev.SessionId, &ev.EventType, &at, &ev.PayloadJson); err != nil {
			return nil, err
		}
		ev.Time = timestamppb.New(at)
		return &ev, nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	return events, nil
}

const sessionColumns = `session_id, count(*), count(*) FILTER (WHERE intervened),
  array_agg(DISTINCT model) FILTER (WHERE model <> ''), min(started_at), max(started_at),
  coalesce((array_agg(preview ORDER BY started_at) FILTER (WHERE preview <> ''))[1], '')`

func scanSession(row pgx.Row) (*cpv1.SessionSummary, error) {
	var s cpv1.SessionSummary
	var first, last time.Time
	if err := row.Scan(&s.SessionId, &s.Turns, &s.Interventions, &s.Models, &first, &last, &s.Preview); err != nil {
		return nil, err
	}
	s.FirstActivity, s.LastActivity = timestamppb.New(first), timestamppb.New(last)
	return &s, nil
}

// ListSessions lists sessions, most recently active first.
func (p *Postgres) ListSessions(ctx context.Context, limit int, token string) ([]*cpv1.SessionSummary, string, error) {
	offset, err := decodeOffset(token)
	if err != nil {
		return nil, "", err
	}
	rows, err := p.pool.Query(ctx, "SELECT "+sessionColumns+` FROM calls WHERE session_id <> ''
		GROUP BY session_id ORDER BY max(started_at) DESC, session_id LIMIT $1 OFFSET $2`, limit+1, offset)
	if err != nil {
		return nil, "", fmt.Errorf("store: list sessions: %w", err)
	}
	sessions, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cpv1.SessionSummary, error) { return scanSession(r) })
	if err != nil {
		return nil, "", fmt.Errorf("store: list sessions: %w", err)
	}
	return pageOffset(sessions, limit, offset)
}

// GetSession returns a session and its turns, oldest first.
func (p *Postgres) GetSession(ctx context.Context, id string) (*cpv1.SessionSummary, []Turn, error) {
	if id == "" {
		return nil, nil, ErrNotFound
	}
	var sum *cpv1.SessionSummary
	var calls []*cpv1.CallSummary
	var events []*cpv1.CallEvent
	err := p.snapshot(ctx, func(q querier) error {
		var err error
		sum, err = scanSession(q.QueryRow(ctx, "SELECT "+sessionColumns+" FROM calls WHERE session_id = $1 GROUP BY session_id", id))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("store: get session: %w", err)
		}
		rows, err := q.Query(ctx, "SELECT "+callColumns+" FROM calls WHERE session_id = $1 ORDER BY started_at, call_id", id)
		if err != nil {
			return fmt.Errorf("store: get session: %w", err)
		}
		calls, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cpv1.CallSummary, error) { return scanCall(r) })
		if err != nil {
			return fmt.Errorf("store: get session: %w", err)
		}
		ids := make([]string, len(calls))
		for i, c := range calls {
			ids[i] = c.GetCallId()
		}
		events, err = p.events(ctx, q, `call_id = ANY($1) AND (event_type IN ('request.received', 'response.original', 'response.final')
			OR event_type LIKE 'policy.%')`, ids)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return sum, buildTurns(calls, events), nil
}

// Search finds calls whose conversation matches query (PostgreSQL
// web-search syntax), best match first.
func (p *Postgres) Search(ctx context.Context, query string, limit int) ([]*cpv1.SearchHit, error) {
	rows, err := p.pool.Query(ctx, "SELECT "+callColumns+`,
		ts_headline('`+textSearchConfig+`', conversation_text, q, 'StartSel=**, StopSel=**, MaxWords=40, MinWords=15, MaxFragments=2')
		FROM calls, websearch_to_tsquery('`+textSearchConfig+`', $1) AS q
		WHERE conversation @@ q ORDER BY ts_rank(conversation, q) DESC, started_at DESC LIMIT $2`, query, limit)
	if err != nil {
		return nil, fmt.Errorf("store: search: %w", err)
	}
	hits, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cpv1.SearchHit, error) {
		var h cpv1.SearchHit
		s, err := scanCall(r, &h.Snippet)
		h.Call = s
		return &h, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: search: %w", err)
	}
	return hits, nil
}

// Purge deletes calls started and events created before cutoff, at most
// batch rows per statement, and returns how many calls and events it
// deleted.
func (p *Postgres) Purge(ctx context.Context, cutoff time.Time, batch int) (calls, events int64, err error) {
	events, err = p.purge(ctx, `DELETE FROM call_events WHERE ctid IN
		(SELECT ctid FROM call_events WHERE created_at < $1 LIMIT $2)`, cutoff, batch)
	if err != nil {
		return 0, events, fmt.Errorf("store: purge events: %w", err)
	}
	calls, err = p.purge(ctx, `DELETE FROM calls WHERE call_id IN
		(SELECT call_id FROM calls WHERE started_at < $1 LIMIT $2)`, cutoff, batch)
	if err != nil {
		return calls, events, fmt.Errorf("store: purge calls: %w", err)
	}
	return calls, events, nil
}

// purge runs a batched delete until a batch deletes fewer than batch rows.
func (p *Postgres) purge(ctx context.Context, query string, cutoff time.Time, batch int) (int64, error) {
	var n int64
	for {
		tag, err := p.pool.Exec(ctx, query, cutoff, batch)
		if err != nil {
			return n, err
		}
		n += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return n, nil
		}
	}
}
