package server

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/calltest"
	"luthien.dev/controlplane/internal/dbtest"
	"luthien.dev/controlplane/internal/store"
	"luthien.dev/controlplane/internal/wire"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// gatewayCall is one call as a gateway runs it on CallService.Call.
type gatewayCall struct {
	start *cpv1.CallStart
	// upstream is upstream's answer: sent as the response message when
	// the decision inspects it, in end when the control plane wants it.
	upstream *cpv1.Message
	// record is end.record; nil: none.
	record *cpv1.CallRecord
}

// runCall runs a whole-response call on a Call stream, from start to
// done, and returns the decision.
func runCall(t *testing.T, conn *grpc.ClientConn, gc gatewayCall) *cpv1.CallDecision {
	t.Helper()
	return mustRun(t, conn, calltest.Call{Start: gc.start, Upstream: gc.upstream, Record: gc.record}).Decision
}

// mustRun runs a call on a Call stream, from start to done, and fails the
// test on an error.
func mustRun(t *testing.T, conn *grpc.ClientConn, c calltest.Call) *calltest.Result {
	t.Helper()
	res, err := calltest.Run(testContext(t), conn, c)
	if err != nil {
		t.Fatalf("call %s: %v", c.Start.GetCallId(), err)
	}
	return res
}

// startOf is a call's start: an Anthropic request for one credential.
func startOf(id, body string) *cpv1.CallStart {
	return &cpv1.CallStart{CallId: id, Format: anthropic, Body: []byte(body),
		Metadata: &cpv1.RequestMetadata{SessionId: "sess-1", UserId: "user-1", Model: "claude", CredentialSha256: credA}}
}

// endRecord is the record a gateway sends in end: the summary and the
// response as upstream gave it, unchanged, and no request (the session has
// it).
func endRecord(t *testing.T, upstream *cpv1.Message) *cpv1.CallRecord {
	t.Helper()
	body, err := wire.RenderMessage(anthropic, nil, upstream)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	return &cpv1.CallRecord{
		Summary: &cpv1.CallSummary{Upstream: "http://upstream.test", Status: 200,
			StartedAt: timestamppb.New(now.Add(-time.Second)), FinishedAt: timestamppb.New(now), DurationMs: 1000,
			Usage: upstream.GetUsage()},
		Events:            []*cpv1.CallEvent{{EventType: "response.original", Time: timestamppb.New(now), PayloadJson: body}},
		FinalResponse:     upstream,
		ResponseUnchanged: true,
	}
}

// storedCall waits until the call is stored with the events of types
// want (at least) and returns it.
func storedCall(t *testing.T, c *cp, id string, want ...string) *cpv1.GetCallResponse {
	t.Helper()
	var got *cpv1.GetCallResponse
	eventually(t, "call "+id+" stored with "+strings.Join(want, ", "), func() bool {
		var err error
		got, err = c.history.GetCall(testContext(t), &cpv1.GetCallRequest{CallId: id})
		if err != nil || got.GetCall().GetStatus() == 0 {
			return false
		}
		types := eventTypes(got.GetEvents())
		for _, w := range want {
			if !slices.Contains(types, w) {
				return false
			}
		}
		return true
	})
	return got
}

// eventOf returns the call's only event of type typ.
func eventOf(t *testing.T, got *cpv1.GetCallResponse, typ string) *cpv1.CallEvent {
	t.Helper()
	var found *cpv1.CallEvent
	for _, ev := range got.GetEvents() {
		if ev.GetEventType() != typ {
			continue
		}
		if found != nil {
			t.Fatalf("two %s events in %v", typ, eventTypes(got.GetEvents()))
		}
		found = ev
	}
	if found == nil {
		t.Fatalf("no %s event in %v", typ, eventTypes(got.GetEvents()))
	}
	return found
}

// payloadText is an event's payload as JSON text.
func payloadText(t *testing.T, ev *cpv1.CallEvent) []byte {
	t.Helper()
	if len(ev.GetPayloadJson()) > 0 {
		return ev.GetPayloadJson()
	}
	b, err := protojson.Marshal(ev.GetPayload())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameJSON fails unless the event's payload is the JSON of want.
func sameJSON(t *testing.T, ev *cpv1.CallEvent, want []byte) {
	t.Helper()
	var g, w any
	got := payloadText(t, ev)
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s payload: %v", ev.GetEventType(), err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s payload %.300s, want %.300s", ev.GetEventType(), got, want)
	}
}

// activeRevision is the active policy's revision.
func activeRevision(t *testing.T, c *cp) string {
	t.Helper()
	active, err := c.admin.GetPolicy(testContext(t), &cpv1.GetPolicyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return active.GetActive().GetRevision()
}

// requestReplacement activates string_replacement on requests: "hello"
// becomes "goodbye".
func requestReplacement(t *testing.T, c *cp) string {
	t.Helper()
	set, err := c.admin.SetPolicy(testContext(t), &cpv1.SetPolicyRequest{Policy: policyConfig(t, "string_replacement",
		map[string]any{"replacements": []any{[]any{"hello", "goodbye"}}, "apply_to": "request"})})
	if err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	return set.GetActive().GetRevision()
}

// The session completes the gateway's record with the request as it
// received it and as a policy rewrote it, and the policy revision it
// decided under, and stores it with the gateway's response; with the
// memory store and with PostgreSQL.
func TestCallRecordStored(t *testing.T) {
	for _, tt := range []struct {
		kind        string
		databaseURL func(t *testing.T) string
	}{
		{kind: store.KindMemory, databaseURL: func(*testing.T) string { return "" }},
		{kind: store.KindPostgres, databaseURL: func(t *testing.T) string { return dbtest.NewDatabase(t) }},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			c := startCP(t, Config{DatabaseURL: tt.databaseURL(t)})
			revision := requestReplacement(t, c)
			upstream := textMessage("sure")
			activity := collect(subscribe(t, c, &cpv1.StreamActivityRequest{CallId: "rewritten", EventTypePrefixes: []string{"request."}}))

			// Rewritten: request.final is the policy's body.
			body := `{"model":"claude","max_tokens":50,"messages":[{"role":"user","content":"hello there"}]}`
			rec := endRecord(t, upstream)
			dec := runCall(t, c.conn, gatewayCall{start: startOf("rewritten", body), upstream: upstream, record: rec})
			rewritten := dec.GetContinue().GetBody()
			if rewritten == nil || !bytes.Contains(rewritten, []byte("goodbye there")) || dec.GetCached() {
				t.Fatalf("decision %v, want continue with the request rewritten", dec)
			}
			got := storedCall(t, c, "rewritten", "request.received", "request.final", "response.original", "response.final")
			sameJSON(t, eventOf(t, got, "request.received"), []byte(body))
			sameJSON(t, eventOf(t, got, "request.final"), rewritten)
			sameJSON(t, eventOf(t, got, "response.original"), rec.GetEvents()[0].GetPayloadJson())
			sameJSON(t, eventOf(t, got, "response.final"), rec.GetEvents()[0].GetPayloadJson())
			sum := got.GetCall()
			if sum.GetPolicyRevision() != revision || sum.GetSessionId() != "sess-1" || sum.GetUserId() != "user-1" ||
				sum.GetModel() != "claude" || sum.GetFormat() != anthropic || sum.GetUpstream() != "http://upstream.test" ||
				sum.GetUsage().GetOutputTokens() != 5 {
				t.Errorf("summary %v, want the session's revision %s and the start's ids", sum, revision)
			}
			for _, ev := range got.GetEvents() {
				if ev.GetSessionId() != "sess-1" {
					t.Errorf("%s event of session %q", ev.GetEventType(), ev.GetSessionId())
				}
			}
			// The session's request events reach the activity feed too.
			eventually(t, "request events published", func() bool { return len(activity()) == 2 })
			for _, ev := range activity() {
				if ev.GetEvent().GetCallId() != "rewritten" {
					t.Errorf("published %v", ev.GetEvent())
				}
			}

			// Unchanged: request.final is request.received's copy.
			plain := `{"model":"claude","max_tokens":50,"messages":[{"role":"user","content":"good day"}]}`
			dec = runCall(t, c.conn, gatewayCall{start: startOf("unchanged", plain), upstream: upstream, record: endRecord(t, upstream)})
			if dec.GetContinue() == nil || dec.GetContinue().Body != nil {
				t.Fatalf("decision %v, want continue unchanged", dec)
			}
			got = storedCall(t, c, "unchanged", "request.received", "request.final", "response.original")
			sameJSON(t, eventOf(t, got, "request.received"), []byte(plain))
			sameJSON(t, eventOf(t, got, "request.final"), []byte(plain))
			if d, err := c.history.GetCallDiff(testContext(t), &cpv1.GetCallDiffRequest{CallId: "unchanged"}); err != nil || d.GetRequest().GetChanged() {
				t.Errorf("diff of an unchanged request: %v, %v", d, err)
			}
			if d, err := c.history.GetCallDiff(testContext(t), &cpv1.GetCallDiffRequest{CallId: "rewritten"}); err != nil || !d.GetRequest().GetChanged() {
				t.Errorf("diff of a rewritten request: %v, %v", d, err)
			}
		})
	}
}

// A gateway cannot forge the request, the call id or the revision of a
// record: the session's replace them.
func TestCallRecordForgeryReplaced(t *testing.T) {
	c := startCP(t, Config{DatabaseURL: dbtest.NewDatabase(t)})
	revision := requestReplacement(t, c)
	upstream := textMessage("sure")
	body := `{"model":"claude","max_tokens":50,"messages":[{"role":"user","content":"hello again"}]}`
	forged := []byte(`{"model":"claude","messages":[{"role":"user","content":"forged"}]}`)
	rec := endRecord(t, upstream)
	rec.Summary.CallId, rec.Summary.PolicyRevision = "someone-else", "forged-revision"
	rec.Events[0].CallId = "someone-else"
	rec.Events = append(rec.Events,
		&cpv1.CallEvent{CallId: "someone-else", EventType: "request.received", PayloadJson: forged},
		&cpv1.CallEvent{EventType: "request.final", PayloadJson: forged})
	dec := runCall(t, c.conn, gatewayCall{start: startOf("real", body), upstream: upstream, record: rec})

	got := storedCall(t, c, "real", "request.received", "request.final", "response.original")
	sameJSON(t, eventOf(t, got, "request.received"), []byte(body))
	sameJSON(t, eventOf(t, got, "request.final"), dec.GetContinue().GetBody())
	if sum := got.GetCall(); sum.GetCallId() != "real" || sum.GetPolicyRevision() != revision {
		t.Errorf("summary %v, want call real under %s", sum, revision)
	}
	for _, ev := range got.GetEvents() {
		if bytes.Contains(payloadText(t, ev), []byte("forged")) || ev.GetCallId() != "real" {
			t.Errorf("stored %s of call %s: %s", ev.GetEventType(), ev.GetCallId(), payloadText(t, ev))
		}
	}
	if _, err := c.history.GetCall(testContext(t), &cpv1.GetCallRequest{CallId: "someone-else"}); status.Code(err) != codes.NotFound {
		t.Errorf("the forged call id: %v, want NOT_FOUND", err)
	}
}

// A cache hit is recorded as such: cached in the decision, a cache.hit
// event, and no intervention whatever the gateway says.
func TestCallRecordCacheHit(t *testing.T) {
	c := startCP(t, Config{DatabaseURL: dbtest.NewDatabase(t), RedisURL: testRedisURL, RedisPrefix: redisPrefix(t), CacheTTL: time.Hour})
	upstream := textMessage("hi")
	first := runCall(t, c.conn, gatewayCall{start: startOf("miss", cachedBody), upstream: upstream, record: endRecord(t, upstream)})
	if first.GetContinue() == nil || first.GetCached() || !first.GetWantsResponse() {
		t.Fatalf("first decision %v, want continue asking for the response", first)
	}
	rec := endRecord(t, upstream)
	rec.Summary.Upstream, rec.Summary.Intervened = "", true // a gateway that calls the answer an intervention
	rec.Events = nil
	second := runCall(t, c.conn, gatewayCall{start: startOf("hit", cachedBody), record: rec})
	if !second.GetCached() || second.GetRespond().GetMessage().GetContent()[0].GetText().GetText() != "hi" {
		t.Fatalf("second decision %v, want the cached answer", second)
	}
	got := storedCall(t, c, "hit", "cache.hit", "request.received")
	if sum := got.GetCall(); sum.GetIntervened() || sum.GetPolicyRevision() != activeRevision(t, c) {
		t.Errorf("cache hit summary %v, want no intervention under the active revision", sum)
	}
	sameJSON(t, eventOf(t, got, "request.received"), []byte(cachedBody))
	if miss := storedCall(t, c, "miss", "cache.miss", "request.received"); slices.Contains(eventTypes(miss.GetEvents()), "cache.hit") {
		t.Errorf("the first call recorded a hit: %v", eventTypes(miss.GetEvents()))
	}
}

// The session fills the cache from what it saw: a call whose end carries
// no record fills it, and is not recorded.
func TestCallWithoutRecordFillsTheCache(t *testing.T) {
	c := startCP(t, Config{DatabaseURL: dbtest.NewDatabase(t), CacheTTL: time.Hour})
	upstream := textMessage("hi")
	if dec := runCall(t, c.conn, gatewayCall{start: startOf("unrecorded", cachedBody), upstream: upstream}); !dec.GetWantsResponse() {
		t.Fatalf("first decision %v, want continue asking for the response", dec)
	}
	second := runCall(t, c.conn, gatewayCall{start: startOf("hit", cachedBody)})
	if !second.GetCached() || second.GetRespond().GetMessage().GetContent()[0].GetText().GetText() != "hi" {
		t.Fatalf("second decision %v, want the answer cached from the call without a record", second)
	}
	// Its cache.miss (a policy event) is recorded; no call row nor body.
	var got *cpv1.GetCallResponse
	eventually(t, "the first call's cache.miss", func() bool {
		var err error
		got, err = c.history.GetCall(testContext(t), &cpv1.GetCallRequest{CallId: "unrecorded"})
		return err == nil && slices.Contains(eventTypes(got.GetEvents()), "cache.miss")
	})
	if types := eventTypes(got.GetEvents()); slices.Contains(types, "request.received") || got.GetCall().GetStatus() != 0 {
		t.Errorf("a call without a record recorded as %v with %v", got.GetCall(), types)
	}
}

// A request over the record's bound is recorded truncated, with the
// gateway's marker, as received and as rewritten.
func TestCallRecordTruncatesLargeRequests(t *testing.T) {
	c := startCP(t, Config{DatabaseURL: dbtest.NewDatabase(t)})
	requestReplacement(t, c)
	upstream := textMessage("sure")
	body := `{"model":"claude","max_tokens":50,"messages":[{"role":"user","content":"hello ` + strings.Repeat("x", 3<<19) + `"}]}`
	dec := runCall(t, c.conn, gatewayCall{start: startOf("large", body), upstream: upstream, record: endRecord(t, upstream)})
	rewritten := dec.GetContinue().GetBody()
	if rewritten == nil {
		t.Fatalf("decision %v, want the request rewritten", dec)
	}
	got := storedCall(t, c, "large", "request.received", "request.final")
	for _, tc := range []struct {
		typ  string
		body []byte
	}{{"request.received", []byte(body)}, {"request.final", rewritten}} {
		text := payloadText(t, eventOf(t, got, tc.typ))
		var m struct {
			Truncated map[string]int `json:"_luthien_truncated"`
			Head      string         `json:"head"`
		}
		if err := json.Unmarshal(text, &m); err != nil {
			t.Fatalf("%s: %v", tc.typ, err)
		}
		// Kept: as much of the start as fits the bound of 1 MiB.
		kept := m.Truncated["kept_bytes"]
		if m.Truncated["original_bytes"] != len(tc.body) || kept < 1<<20-100 || kept > 1<<20 || m.Head != string(tc.body[:kept]) {
			t.Errorf("%s: marker original_bytes %d kept_bytes %d (body of %d bytes)", tc.typ, m.Truncated["original_bytes"], kept, len(tc.body))
		}
	}
}
