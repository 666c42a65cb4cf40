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
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/calltest"
	"luthien.dev/controlplane/internal/dbtest"
	"luthien.dev/controlplane/internal/store"
	"luthien.dev/controlplane/internal/wire"
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
		activity: cpv1.NewActivityServiceClient(conn),
		history:  cpv1.NewHistoryServiceClient(conn), conn: conn}
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

// changedRecord is the record a gateway sends in end for a response a
// policy may have changed: endRecord's, with response.final and an
// intervention when final is not upstream's.
func changedRecord(t *testing.T, upstream, final *cpv1.Message) *cpv1.CallRecord {
	t.Helper()
	rec := endRecord(t, upstream)
	if proto.Equal(upstream, final) {
		return rec
	}
	body, err := wire.RenderMessage(anthropic, nil, final)
	if err != nil {
		t.Fatal(err)
	}
	rec.Events = append(rec.Events, &cpv1.CallEvent{EventType: "response.final", Time: timestamppb.Now(), PayloadJson: body})
	rec.FinalResponse, rec.ResponseUnchanged, rec.Summary.Intervened = final, false, true
	return rec
}

// eventTypes lists the types of events.
func eventTypes(events []*cpv1.CallEvent) []string {
	var out []string
	for _, ev := range events {
		out = append(out, ev.GetEventType())
	}
	return out
}

// TestRecordPassedAndBlockedCalls runs a passed and a blocked call on
// CallService.Call as the gateway does, their records in end, and queries
// them back, with the memory store and with PostgreSQL.
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

			for _, call := range []struct {
				id, command string
				blocked     bool
			}{{"call-pass", "ls build", false}, {"call-block", "rm -rf build /", true}} {
				original := toolUse("Bash", fmt.Sprintf(`{"command":%q}`, call.command))
				res := mustRun(t, c.conn, calltest.Call{
					Start:    &cpv1.CallStart{CallId: call.id, Format: anthropic, Body: []byte(body), Metadata: meta},
					Upstream: original,
					RecordOf: func(res *calltest.Result) *cpv1.CallRecord {
						final := original
						if res.Response.GetResponse() != nil {
							final = res.Response.GetResponse()
						}
						return changedRecord(t, original, final)
					},
				})
				if res.Decision.GetInspect() != cpv1.Inspect_INSPECT_RESPONSE {
					t.Fatalf("%s: decision %v, want the response inspected", call.id, res.Decision)
				}
				if (res.Response.GetResponse() != nil) != call.blocked {
					t.Fatalf("%s: response changed = %v, want %v", call.id, res.Response.GetResponse() != nil, call.blocked)
				}
			}

			var (
				blocked *cpv1.GetCallResponse
				err     error
			)
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

	body := `{"model":"claude","messages":[{"role":"user","content":"hi"}]}`
	msg := textMessage("hello")
	mustRun(t, a.conn, calltest.Call{
		Start:    &cpv1.CallStart{CallId: "x1", Format: anthropic, Body: []byte(body), Metadata: &cpv1.RequestMetadata{SessionId: "shared"}},
		Upstream: msg, Record: endRecord(t, msg),
	})
	eventually(t, "the call's events on the other control plane", func() bool { return len(onB()) == 6 })
	var types []string
	for _, r := range onB() {
		if r.GetEvent().GetCallId() != "x1" || r.GetDropped() != 0 {
			t.Errorf("unexpected activity %v", r)
		}
		types = append(types, r.GetEvent().GetEventType())
	}
	// The policy's events as it runs, then the call's record at its end.
	if want := []string{"policy.debug_logging.request", "policy.debug_logging.response"}; !slices.Equal(types[:2], want) {
		t.Errorf("activity on b starts with %v, want the policy's events %v", types, want)
	}
	recorded := slices.Sorted(slices.Values(types[2:]))
	if want := []string{"request.final", "request.received", "response.final", "response.original"}; !slices.Equal(recorded, want) {
		t.Errorf("activity on b: the record's events %v, want %v", recorded, want)
	}
	eventually(t, "the policy events through the type filter", func() bool { return len(onBPolicy()) == 2 })
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
	msg := textMessage("noted: " + secret)
	rec := endRecord(t, msg)
	rec.Events = append(rec.Events, &cpv1.CallEvent{EventType: "error", Time: timestamppb.Now(),
		Payload: payload(t, `{"headers":{"X-Api-Key":"header-secret-value","Authorization":"Bearer `+secret+`"}}`)})
	rec.Summary.Error = "upstream said: invalid key " + secret
	mustRun(t, c.conn, calltest.Call{
		Start: &cpv1.CallStart{CallId: "r1", Format: anthropic, Body: []byte(body),
			Metadata: &cpv1.RequestMetadata{SessionId: "s", Headers: map[string]string{"user-agent": "test"}}},
		Upstream: msg, Record: rec,
	})
	// debug_logging's request and response, and the record's request,
	// response and error events.
	eventually(t, "the call's events in the feed", func() bool { return len(feed()) == 7 })
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
// the write queue fills with the calls' records: drops are counted
// (GetStats) and
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
	msg := textMessage("ok")
	for i := range 6 { // 4 events each: 2 fit in 10
		mustRun(t, c.conn, calltest.Call{Start: &cpv1.CallStart{CallId: fmt.Sprintf("q%d", i), Format: anthropic, Body: []byte(`{"model":"m"}`)},
			Upstream: msg, Record: endRecord(t, msg)})
	}
	// The session records at the end of its call, before done: every
	// record is queued or dropped by now.
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
	for _, name := range []string{"luthien.controlplane.v1.CallService", "luthien.controlplane.v1.ActivityService", "luthien.controlplane.v1.HistoryService"} {
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
