package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/dbtest"
	"luthien.dev/controlplane/internal/store"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

const (
	regexBlockConfig = "../../config/policies/regex_block.yaml"
	debugConfig      = "../../config/policies/debug_logging.yaml"
	testRedisURL     = "redis://127.0.0.1:6379/0"
)

// cp is a control plane with recording, served on bufconn.
type cp struct {
	srv      *Server
	policy   cpv1.PolicyServiceClient
	admin    cpv1.PolicyAdminServiceClient
	record   cpv1.RecordServiceClient
	activity cpv1.ActivityServiceClient
	history  cpv1.HistoryServiceClient
	conn     *grpc.ClientConn
}

// startCP serves a Server built from cfg; it is closed (queue flushed)
// when the test ends.
func startCP(t *testing.T, cfg Config) *cp {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	lis := bufconn.Listen(1 << 20)
	gs := srv.NewGRPCServer()
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(func() {
		srv.Shutdown()
		gs.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &cp{srv: srv, policy: cpv1.NewPolicyServiceClient(conn), admin: cpv1.NewPolicyAdminServiceClient(conn),
		record: cpv1.NewRecordServiceClient(conn), activity: cpv1.NewActivityServiceClient(conn),
		history: cpv1.NewHistoryServiceClient(conn), conn: conn}
}

// redisPrefix is a Redis key and channel prefix of this test only.
func redisPrefix(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "luthien-test:" + hex.EncodeToString(b[:]) + ":"
}

// eventually polls cond until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func payload(t *testing.T, s string) *structpb.Struct {
	t.Helper()
	var out structpb.Struct
	if err := protojson.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("payload %s: %v", s, err)
	}
	return &out
}

func toolUse(name, input string) *cpv1.Message {
	return &cpv1.Message{Id: "msg_1", Model: "claude", StopReason: "tool_use", Content: []*cpv1.ContentBlock{toolUseBlock("toolu_1", name, input)}}
}

// callRecord is what the gateway records for a call: the request as
// received and sent, the response as received and as sent.
func callRecord(t *testing.T, id, session, revision string, body string, original, final *cpv1.Message, intervened bool) *cpv1.CallRecord {
	t.Helper()
	now := time.Now()
	msgJSON := func(m *cpv1.Message) *structpb.Struct {
		b, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return payload(t, string(b))
	}
	ev := func(typ string, p *structpb.Struct) *cpv1.CallEvent {
		return &cpv1.CallEvent{CallId: id, SessionId: session, EventType: typ, Time: timestamppb.New(now), Payload: p}
	}
	return &cpv1.CallRecord{
		Summary: &cpv1.CallSummary{CallId: id, SessionId: session, Model: "claude", Format: anthropic,
			Upstream: "http://upstream.test", Status: 200, StartedAt: timestamppb.New(now.Add(-time.Second)),
			FinishedAt: timestamppb.New(now), DurationMs: 1000, Intervened: intervened, PolicyRevision: revision,
			Usage: &cpv1.Usage{InputTokens: 3, OutputTokens: 5}},
		Events: []*cpv1.CallEvent{
			ev("request.received", payload(t, body)), ev("request.final", payload(t, body)),
			ev("response.original", msgJSON(original)), ev("response.final", msgJSON(final)),
		},
		FinalResponse: final,
		FinalRequest:  []byte(body),
	}
}

// eventTypes lists the types of events.
func eventTypes(events []*cpv1.CallEvent) []string {
	var out []string
	for _, ev := range events {
		out = append(out, ev.GetEventType())
	}
	return out
}

// TestRecordPassedAndBlockedCalls runs a passed and a blocked call through
// the policies, records them as the gateway does, and queries them back,
// with the memory store and with PostgreSQL.
func TestRecordPassedAndBlockedCalls(t *testing.T) {
	for _, tt := range []struct {
		name, databaseURL func(t *testing.T) string
		kind              string
	}{
		{kind: store.KindMemory, databaseURL: func(*testing.T) string { return "" }},
		{kind: store.KindPostgres, databaseURL: func(t *testing.T) string { return dbtest.NewDatabase(t) }},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			c := startCP(t, Config{PolicyConfigPath: regexBlockConfig, DatabaseURL: tt.databaseURL(t)})
			ctx := testContext(t)
			body := `{"model":"claude","max_tokens":100,"messages":[{"role":"user","content":"tidy up the build directory"}]}`
			meta := &cpv1.RequestMetadata{SessionId: "sess-1", Model: "claude"}

			var records []*cpv1.CallRecord
			for _, call := range []struct {
				id, command string
				blocked     bool
			}{{"call-pass", "ls build", false}, {"call-block", "rm -rf build /", true}} {
				req, err := c.policy.ApplyRequestPolicies(ctx, &cpv1.ApplyRequestPoliciesRequest{CallId: call.id, Format: anthropic, Body: []byte(body), Metadata: meta})
				if err != nil {
					t.Fatalf("ApplyRequestPolicies: %v", err)
				}
				original := toolUse("Bash", fmt.Sprintf(`{"command":%q}`, call.command))
				resp, err := c.policy.ApplyResponsePolicy(ctx, &cpv1.ApplyResponsePolicyRequest{CallId: call.id, Format: anthropic,
					Request: []byte(body), Metadata: meta, PolicyRevision: req.GetPolicyRevision(), Response: original})
				if err != nil {
					t.Fatalf("ApplyResponsePolicy: %v", err)
				}
				if (resp.Response != nil) != call.blocked {
					t.Fatalf("%s: response changed = %v, want %v", call.id, resp.Response != nil, call.blocked)
				}
				final := original
				if resp.Response != nil {
					final = resp.GetResponse()
				}
				records = append(records, callRecord(t, call.id, "sess-1", req.GetPolicyRevision(), body, original, final, call.blocked))
			}
			rr, err := c.record.RecordCalls(ctx, &cpv1.RecordCallsRequest{Calls: records})
			if err != nil || rr.GetAccepted() != 2 || rr.GetDropped() != 0 {
				t.Fatalf("RecordCalls = %v, %v", rr, err)
			}
			// Resending the batch (as after a lost answer) duplicates nothing.
			if _, err := c.record.RecordCalls(ctx, &cpv1.RecordCallsRequest{Calls: records}); err != nil {
				t.Fatalf("RecordCalls again: %v", err)
			}

			var blocked *cpv1.GetCallResponse
			eventually(t, "the blocked call with its policy event", func() bool {
				blocked, err = c.history.GetCall(ctx, &cpv1.GetCallRequest{CallId: "call-block"})
				return err == nil && len(blocked.GetEvents()) == 5 && blocked.GetCall().GetStatus() == 200
			})
			types := eventTypes(blocked.GetEvents())
			slices.Sort(types)
			if want := []string{"policy.regex_block.blocked", "request.final", "request.received", "response.final", "response.original"}; !slices.Equal(types, want) {
				t.Errorf("blocked call events %v, want %v", types, want)
			}
			if !blocked.GetCall().GetIntervened() || blocked.GetCall().GetSessionId() != "sess-1" {
				t.Errorf("blocked call summary %v", blocked.GetCall())
			}
			var passed *cpv1.GetCallResponse
			eventually(t, "the passed call", func() bool {
				passed, err = c.history.GetCall(ctx, &cpv1.GetCallRequest{CallId: "call-pass"})
				return err == nil && len(passed.GetEvents()) == 4
			})
			if passed.GetCall().GetIntervened() || slices.ContainsFunc(passed.GetEvents(), func(e *cpv1.CallEvent) bool {
				return strings.HasPrefix(e.GetEventType(), "policy.")
			}) {
				t.Errorf("passed call %v with events %v", passed.GetCall(), eventTypes(passed.GetEvents()))
			}

			diff, err := c.history.GetCallDiff(ctx, &cpv1.GetCallDiffRequest{CallId: "call-block"})
			if err != nil {
				t.Fatalf("GetCallDiff: %v", err)
			}
			if diff.GetRequest().GetChanged() || !diff.GetResponse().GetChanged() || len(diff.GetResponse().GetChanges()) == 0 {
				t.Errorf("diff: request changed %v, response changed %v (%v)", diff.GetRequest().GetChanged(), diff.GetResponse().GetChanged(), diff.GetResponse().GetChanges())
			}
			if d, err := c.history.GetCallDiff(ctx, &cpv1.GetCallDiffRequest{CallId: "call-pass"}); err != nil || d.GetResponse().GetChanged() {
				t.Errorf("passed call diff = %v, %v", d, err)
			}

			list, err := c.history.ListCalls(ctx, &cpv1.ListCallsRequest{IntervenedOnly: true})
			if err != nil || len(list.GetCalls()) != 1 || list.GetCalls()[0].GetCallId() != "call-block" {
				t.Errorf("ListCalls(intervened) = %v, %v", list, err)
			}
			sessions, err := c.history.ListSessions(ctx, &cpv1.ListSessionsRequest{})
			if err != nil || len(sessions.GetSessions()) != 1 || sessions.GetSessions()[0].GetTurns() != 2 ||
				sessions.GetSessions()[0].GetInterventions() != 1 || sessions.GetSessions()[0].GetPreview() != "tidy up the build directory" {
				t.Errorf("ListSessions = %v, %v", sessions, err)
			}
			session, err := c.history.GetSession(ctx, &cpv1.GetSessionRequest{SessionId: "sess-1"})
			if err != nil || len(session.GetTurns()) != 2 || len(session.GetTurns()[1].GetPolicyEvents())+len(session.GetTurns()[0].GetPolicyEvents()) != 1 ||
				session.GetTurns()[0].GetRequest() == nil || session.GetTurns()[0].GetResponse() == nil {
				t.Errorf("GetSession = %v, %v", session, err)
			}
			hits, err := c.history.SearchCalls(ctx, &cpv1.SearchCallsRequest{Query: "build directory"})
			if err != nil || len(hits.GetHits()) != 2 {
				t.Errorf("SearchCalls = %v, %v", hits, err)
			}
			stats, err := c.history.GetStats(ctx, &cpv1.GetStatsRequest{})
			if err != nil || stats.GetStore() != tt.kind || stats.GetEventsWritten() < 9 || stats.GetEventsDropped() != 0 {
				t.Errorf("GetStats = %v, %v", stats, err)
			}

			for _, tc := range []struct {
				err  error
				code codes.Code
			}{
				{err: second(c.history.GetCall(ctx, &cpv1.GetCallRequest{CallId: "absent"})), code: codes.NotFound},
				{err: second(c.history.GetCall(ctx, &cpv1.GetCallRequest{})), code: codes.InvalidArgument},
				{err: second(c.history.GetSession(ctx, &cpv1.GetSessionRequest{SessionId: "absent"})), code: codes.NotFound},
				{err: second(c.history.ListCalls(ctx, &cpv1.ListCallsRequest{PageToken: "%%%"})), code: codes.InvalidArgument},
				{err: second(c.history.ListCalls(ctx, &cpv1.ListCallsRequest{PageSize: -1})), code: codes.InvalidArgument},
				{err: second(c.history.SearchCalls(ctx, &cpv1.SearchCallsRequest{Query: " "})), code: codes.InvalidArgument},
			} {
				if status.Code(tc.err) != tc.code {
					t.Errorf("error %v, want code %v", tc.err, tc.code)
				}
			}
		})
	}
}

func second[T any](_ T, err error) error { return err }

// subscribe opens an activity stream and waits until the control plane
// has subscribed it (its headers arrive).
func subscribe(t *testing.T, c *cp, req *cpv1.StreamActivityRequest) grpc.ServerStreamingClient[cpv1.StreamActivityResponse] {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := c.activity.StreamActivity(ctx, req)
	if err != nil {
		t.Fatalf("StreamActivity: %v", err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatalf("StreamActivity headers: %v", err)
	}
	return stream
}

// collect receives from stream in the background until it ends.
func collect(stream grpc.ServerStreamingClient[cpv1.StreamActivityResponse]) func() []*cpv1.StreamActivityResponse {
	var mu sync.Mutex
	var got []*cpv1.StreamActivityResponse
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, resp)
			mu.Unlock()
		}
	}()
	return func() []*cpv1.StreamActivityResponse {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// TestActivityAcrossControlPlanes records on one control plane and
// receives the events on another sharing Redis.
func TestActivityAcrossControlPlanes(t *testing.T) {
	prefix := redisPrefix(t)
	a := startCP(t, Config{PolicyConfigPath: debugConfig, RedisURL: testRedisURL, RedisPrefix: prefix})
	b := startCP(t, Config{RedisURL: testRedisURL, RedisPrefix: prefix})
	other := startCP(t, Config{RedisURL: testRedisURL, RedisPrefix: redisPrefix(t)})
	onB := collect(subscribe(t, b, &cpv1.StreamActivityRequest{SessionId: "shared"}))
	onBPolicy := collect(subscribe(t, b, &cpv1.StreamActivityRequest{EventTypePrefixes: []string{"policy."}}))
	onOther := collect(subscribe(t, other, &cpv1.StreamActivityRequest{}))
	ctx := testContext(t)

	body := `{"model":"claude","messages":[{"role":"user","content":"hi"}]}`
	req, err := a.policy.ApplyRequestPolicies(ctx, &cpv1.ApplyRequestPoliciesRequest{CallId: "x1", Format: anthropic,
		Body: []byte(body), Metadata: &cpv1.RequestMetadata{SessionId: "shared"}})
	if err != nil {
		t.Fatalf("ApplyRequestPolicies: %v", err)
	}
	msg := &cpv1.Message{Content: []*cpv1.ContentBlock{textBlock("hello")}}
	rec := callRecord(t, "x1", "shared", req.GetPolicyRevision(), body, msg, msg, false)
	if _, err := a.record.RecordCalls(ctx, &cpv1.RecordCallsRequest{Calls: []*cpv1.CallRecord{rec}}); err != nil {
		t.Fatalf("RecordCalls: %v", err)
	}
	eventually(t, "the call's events on the other control plane", func() bool { return len(onB()) == 5 })
	var types []string
	for _, r := range onB() {
		if r.GetEvent().GetCallId() != "x1" || r.GetDropped() != 0 {
			t.Errorf("unexpected activity %v", r)
		}
		types = append(types, r.GetEvent().GetEventType())
	}
	if want := []string{"policy.debug_logging.request", "request.received", "request.final", "response.original", "response.final"}; !slices.Equal(types, want) {
		t.Errorf("activity on b: %v, want %v", types, want)
	}
	eventually(t, "the policy event through the type filter", func() bool { return len(onBPolicy()) == 1 })
	time.Sleep(100 * time.Millisecond)
	if got := onOther(); len(got) != 0 {
		t.Errorf("a control plane with another prefix received %d events", len(got))
	}
}

// TestRedaction sends a key the way a careless client would (in the
// message text, the request metadata, headers and the error) and checks
// that it appears nowhere in the database or the activity stream.
func TestRedaction(t *testing.T) {
	const secret = "sk-ant-TOPSECRET0123456789"
	url := dbtest.NewDatabase(t)
	c := startCP(t, Config{PolicyConfigPath: debugConfig, DatabaseURL: url, RedisURL: testRedisURL, RedisPrefix: redisPrefix(t)})
	feed := collect(subscribe(t, c, &cpv1.StreamActivityRequest{}))
	ctx := testContext(t)

	body := `{"model":"claude","metadata":{"api_key":"plain-secret-value"},"messages":[{"role":"user","content":"my key is ` + secret + `"}]}`
	req, err := c.policy.ApplyRequestPolicies(ctx, &cpv1.ApplyRequestPoliciesRequest{CallId: "r1", Format: anthropic, Body: []byte(body),
		Metadata: &cpv1.RequestMetadata{SessionId: "s", Headers: map[string]string{"user-agent": "test"}}})
	if err != nil {
		t.Fatalf("ApplyRequestPolicies: %v", err)
	}
	msg := &cpv1.Message{Content: []*cpv1.ContentBlock{textBlock("noted: " + secret)}}
	rec := callRecord(t, "r1", "s", req.GetPolicyRevision(), body, msg, msg, false)
	rec.Events = append(rec.Events, &cpv1.CallEvent{EventType: "error", Time: timestamppb.Now(),
		Payload: payload(t, `{"headers":{"X-Api-Key":"header-secret-value","Authorization":"Bearer `+secret+`"}}`)})
	rec.Summary.Error = "upstream said: invalid key " + secret
	if _, err := c.record.RecordCalls(ctx, &cpv1.RecordCallsRequest{Calls: []*cpv1.CallRecord{rec}}); err != nil {
		t.Fatalf("RecordCalls: %v", err)
	}
	eventually(t, "the call's events in the feed", func() bool { return len(feed()) == 6 })
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.srv.Close(closeCtx); err != nil { // flushes the queue
		t.Fatalf("Close: %v", err)
	}

	secrets := []string{secret, "TOPSECRET", "plain-secret-value", "header-secret-value"}
	var streamed strings.Builder
	for _, r := range feed() {
		b, _ := protojson.Marshal(r)
		streamed.Write(b)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var calls, events string
	if err := pool.QueryRow(ctx, "SELECT coalesce(string_agg(c::text, ' '), '') FROM calls c").Scan(&calls); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, "SELECT coalesce(string_agg(e::text, ' '), '') FROM call_events e").Scan(&events); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(events, "my key is [redacted:anthropic-key]") || !strings.Contains(calls, "r1") || !strings.Contains(streamed.String(), "[redacted]") {
		t.Fatalf("the record is not where the test looks:\ncalls: %.300s\nevents: %.300s\nstream: %.300s", calls, events, streamed.String())
	}
	for _, s := range secrets {
		for where, text := range map[string]string{"calls": calls, "call_events": events, "activity stream": streamed.String()} {
			if strings.Contains(text, s) {
				t.Errorf("%s contains %q", where, s)
			}
		}
	}
}

// TestQueueFullDropsAreCounted blocks the database's event table so that
// the write queue fills: drops are counted (RecordCalls, GetStats) and
// announced on the activity feed, and the queued events are written once
// the table is free.
func TestQueueFullDropsAreCounted(t *testing.T) {
	url := dbtest.NewDatabase(t)
	c := startCP(t, Config{DatabaseURL: url, QueueCapacity: 10})
	drops := collect(subscribe(t, c, &cpv1.StreamActivityRequest{EventTypePrefixes: []string{"store."}}))
	ctx := testContext(t)

	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Released at the latest when the test ends: the pool cannot close
	// with the transaction open.
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, "LOCK TABLE call_events IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	msg := &cpv1.Message{Content: []*cpv1.ContentBlock{textBlock("ok")}}
	var accepted, dropped int32
	for i := range 6 { // 4 events each: 2 fit in 10
		rec := callRecord(t, fmt.Sprintf("q%d", i), "s", "", `{"model":"m"}`, msg, msg, false)
		resp, err := c.record.RecordCalls(ctx, &cpv1.RecordCallsRequest{Calls: []*cpv1.CallRecord{rec}})
		if err != nil {
			t.Fatalf("RecordCalls: %v", err)
		}
		accepted += resp.GetAccepted()
		dropped += resp.GetDropped()
	}
	if accepted != 2 || dropped != 4 {
		t.Errorf("accepted %d, dropped %d; want 2 and 4", accepted, dropped)
	}
	stats, err := c.history.GetStats(ctx, &cpv1.GetStatsRequest{})
	if err != nil || stats.GetEventsDropped() != 16 || stats.GetQueueDepth() != 8 {
		t.Errorf("GetStats = %v, %v; want 16 events dropped, 8 queued", stats, err)
	}
	eventually(t, "the drop announced on the activity feed", func() bool { return len(drops()) > 0 })
	if n := drops()[0].GetEvent().GetPayload().GetFields()["dropped_total"].GetNumberValue(); n != 16 {
		t.Errorf("store.dropped event reports %v dropped, want 16", n)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the queued events written", func() bool {
		s, err := c.history.GetStats(ctx, &cpv1.GetStatsRequest{})
		return err == nil && s.GetEventsWritten() == 8 && s.GetQueueDepth() == 0
	})
}

// TestRetention starts a control plane with LUTHIEN_RETENTION_DAYS over a
// database holding an old and a recent call: the old one is purged.
func TestRetention(t *testing.T) {
	url := dbtest.NewDatabase(t)
	ctx := testContext(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var calls []*store.Call
	var events []store.Event
	for id, age := range map[string]time.Duration{"old": 40 * 24 * time.Hour, "recent": time.Hour} {
		at := time.Now().Add(-age)
		calls = append(calls, &store.Call{Summary: &cpv1.CallSummary{CallId: id, StartedAt: timestamppb.New(at)}})
		events = append(events, store.Event{Key: "k", Event: &cpv1.CallEvent{CallId: id, EventType: "request.received", Time: timestamppb.New(at), Payload: &structpb.Struct{}}})
	}
	if err := store.NewPostgres(pool).WriteBatch(ctx, calls, events); err != nil {
		t.Fatal(err)
	}
	c := startCP(t, Config{DatabaseURL: url, RetentionDays: 30})
	eventually(t, "the old call purged", func() bool {
		_, err := c.history.GetCall(ctx, &cpv1.GetCallRequest{CallId: "old"})
		return status.Code(err) == codes.NotFound
	})
	if _, err := c.history.GetCall(ctx, &cpv1.GetCallRequest{CallId: "recent"}); err != nil {
		t.Errorf("the recent call: %v", err)
	}
}

// TestActivityEndsAtShutdown checks that Shutdown ends activity streams,
// so that a graceful stop does not wait for subscribers.
func TestActivityEndsAtShutdown(t *testing.T) {
	c := startCP(t, Config{})
	stream := subscribe(t, c, &cpv1.StreamActivityRequest{})
	c.srv.Shutdown()
	_, err := stream.Recv()
	if status.Code(err) != codes.Unavailable || errors.Is(err, io.EOF) {
		t.Fatalf("Recv after Shutdown: %v, want UNAVAILABLE", err)
	}
}

func TestRecordingServicesServed(t *testing.T) {
	c := startCP(t, Config{})
	client := healthpb.NewHealthClient(c.conn)
	for _, name := range []string{"luthien.controlplane.v1.RecordService", "luthien.controlplane.v1.ActivityService", "luthien.controlplane.v1.HistoryService"} {
		resp, err := client.Check(testContext(t), &healthpb.HealthCheckRequest{Service: name})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%s) = %v, %v", name, resp, err)
		}
	}
}

func TestNewFailsWithoutItsDatabaseOrRedis(t *testing.T) {
	for _, cfg := range []Config{
		{DatabaseURL: "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"},
		{RedisURL: "redis://127.0.0.1:1/0"},
		{RedisURL: "not a url"},
		{CacheMode: "sometimes"},
	} {
		if srv, err := New(cfg); err == nil {
			_ = srv.Close(context.Background())
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
