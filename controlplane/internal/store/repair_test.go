package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/dbtest"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// badBody is a request body with a byte that is not UTF-8 (Latin-1 é)
// inside a JSON string, and an escaped NUL.
const badBody = `{"model":"m","messages":[{"role":"user","content":"caf` + "\xe9" + ` au lait \u0000 firewall"}],"k\u0000":1,"literal":"\\u0000 stays"}`

// A record with text PostgreSQL cannot hold (invalid UTF-8, NUL) is
// stored, repaired and marked, in both stores, and every read method
// returns it in a form readers (protojson, gRPC) accept.
func TestRecordWithInvalidTextIsStored(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		call, events := record(t, "bad", "sess\x00bad", "m", "placeholder", "fine", 0, false)
		events[0].Event.PayloadJson = []byte(badBody)
		for _, e := range events {
			e.Event.SessionId = "sess\x00bad"
		}
		call.Text = "caf\xe9 au lait \x00 firewall"
		call.Preview = "caf\xe9"
		call.Summary.Error = "upstream said \xff\x00"
		write(t, b, []*Call{call}, events)

		const session = "sess\uFFFDbad"
		got, evs, err := b.GetCall(ctx, "bad")
		if err != nil {
			t.Fatalf("GetCall: %v", err)
		}
		if got.GetSessionId() != session || got.GetError() != "upstream said \uFFFD\uFFFD" {
			t.Errorf("summary = %v", got)
		}
		req := evs[0]
		if req.GetEventType() != "request.received" || !utf8.Valid(req.GetPayloadJson()) {
			t.Fatalf("request event %q: %q", req.GetEventType(), req.GetPayloadJson())
		}
		f := PayloadStruct(req).GetFields()
		content := f["messages"].GetListValue().GetValues()[0].GetStructValue().GetFields()["content"].GetStringValue()
		if content != "caf\uFFFD au lait \uFFFD firewall" || f["k\uFFFD"] == nil || f["literal"].GetStringValue() != `\u0000 stays` {
			t.Errorf("request payload read as %v", f)
		}
		if mark := f["_luthien_repaired"].GetStringValue(); mark != "invalid utf-8, nul" {
			t.Errorf("payload mark %q, want %q: %s", mark, "invalid utf-8, nul", req.GetPayloadJson())
		}
		for _, ev := range evs {
			if ev.GetSessionId() != session {
				t.Errorf("event %s session %q", ev.GetEventType(), ev.GetSessionId())
			}
			if _, err := proto.Marshal(Readable(ev)); err != nil {
				t.Errorf("event %s cannot be sent to a reader: %v", ev.GetEventType(), err)
			}
		}

		hits, err := b.Search(ctx, "firewall", 10)
		if err != nil || len(hits) != 1 || hits[0].GetCall().GetCallId() != "bad" {
			t.Fatalf("Search = %v, %v", hits, err)
		}
		if _, err := proto.Marshal(hits[0]); err != nil || !strings.Contains(hits[0].GetSnippet(), "\uFFFD") {
			t.Errorf("search hit %v: %v", hits[0], err)
		}
		sum, turns, err := b.GetSession(ctx, session)
		if err != nil || len(turns) != 1 || sum.GetPreview() != "caf\uFFFD" {
			t.Fatalf("GetSession = %v, %d turns, %v", sum, len(turns), err)
		}
		if !strings.Contains(string(turns[0].Request.GetPayloadJson()), `"_luthien_repaired":"invalid utf-8, nul"`) {
			t.Errorf("turn request %s", turns[0].Request.GetPayloadJson())
		}
		if list, _, err := b.ListCalls(ctx, CallFilter{Limit: 10}); err != nil || len(list) != 1 || !utf8.ValidString(list[0].GetError()) {
			t.Errorf("ListCalls = %v, %v", list, err)
		}
	})
}

// TakePayload, which prepares what the store writes and the activity feed
// publishes, repairs and marks a payload.
func TestTakePayloadRepairs(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"invalid UTF-8", "{\"a\":\"x\xffy\"}", `{"_luthien_repaired":"invalid utf-8","a":"x` + "\uFFFD" + `y"}`},
		{"a cut multi-byte character", "{\"a\":\"\xe2\x82\"}", `{"_luthien_repaired":"invalid utf-8","a":"` + "\uFFFD\uFFFD" + `"}`},
		{"an escaped NUL", `{"a":"x\u0000y"}`, `{"_luthien_repaired":"nul","a":"x` + "\uFFFD" + `y"}`},
		{"a NUL byte (not JSON before the repair)", "{\"a\":\"x\x00y\"}", `{"_luthien_repaired":"nul","a":"x` + "\uFFFD" + `y"}`},
		{"an unpaired surrogate", `{"a":"\ud800x","b":"\udc00"}`, `{"_luthien_repaired":"invalid utf-8","a":"` + "\uFFFD" + `x","b":"` + "\uFFFD" + `"}`},
		{"both", "{\"a\":\"\xff\\u0000\"}", `{"_luthien_repaired":"invalid utf-8, nul","a":"` + "\uFFFD\uFFFD" + `"}`},
		{"a mark already there", "{\"_luthien_repaired\":\"no\",\"a\":\"\xff\"}", `{"_luthien_repaired":"invalid utf-8","a":"` + "\uFFFD" + `"}`},
		{"not an object", "caf\xe9", `{"_luthien_repaired":"invalid utf-8","raw":"caf` + "\uFFFD" + `"}`},
		{"a surrogate pair is kept", `{"a":"\ud83d\ude00"}`, `{"a":"\ud83d\ude00"}`},
		{"an escaped backslash before u0000 is text", `{"a":"\\u0000"}`, `{"a":"\\u0000"}`},
		{"valid text is kept", `{"a":"é ✓"}`, `{"a":"é ✓"}`},
	}
	for _, tt := range tests {
		ev := &cpv1.CallEvent{PayloadJson: []byte(tt.in)}
		TakePayload(ev)
		if got := string(ev.GetPayloadJson()); !sameJSON(t, got, tt.want) {
			t.Errorf("%s: TakePayload(%q) = %s, want %s", tt.name, tt.in, got, tt.want)
		}
	}
	// A Struct from a writer: its NUL reaches the payload as \u0000.
	ev := &cpv1.CallEvent{Payload: &structpb.Struct{Fields: map[string]*structpb.Value{"a": structpb.NewStringValue("x\x00")}}}
	TakePayload(ev)
	if got := PayloadStruct(ev).GetFields(); got["a"].GetStringValue() != "x\uFFFD" || got["_luthien_repaired"].GetStringValue() != "nul" {
		t.Errorf("Struct payload = %s", ev.GetPayloadJson())
	}
}

// sameJSON reports whether two JSON texts hold the same value (the order
// of keys aside).
func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	return reflect.DeepEqual(x, y)
}

// Payloads stored before repairs existed, or JSON protojson refuses (a key
// twice, a huge number), are still readable.
func TestPayloadStructReadsWhatProtojsonRefuses(t *testing.T) {
	for in, check := range map[string]func(f map[string]*structpb.Value) bool{
		`{"a":1,"a":2}`:        func(f map[string]*structpb.Value) bool { return f["a"].GetNumberValue() == 2 },
		`{"a":1e400,"b":"x"}`:  func(f map[string]*structpb.Value) bool { return f["a"].GetStringValue() == "1e400" && f["b"] != nil },
		`{"a":"\ud800","b":1}`: func(f map[string]*structpb.Value) bool { return f["a"].GetStringValue() == "\uFFFD" && f["b"] != nil },
		"{\"a\":\"\xff\"}":     func(f map[string]*structpb.Value) bool { return f["a"].GetStringValue() == "\uFFFD" },
	} {
		if f := PayloadStruct(&cpv1.CallEvent{PayloadJson: []byte(in)}).GetFields(); !check(f) {
			t.Errorf("PayloadStruct(%q) = %v", in, f)
		}
	}
}

// One bad row never holds up a batch: a batch PostgreSQL refuses for one
// row's data is written record by record, the refused record row by row,
// and only the rows it refuses alone are dropped and counted.
func TestQueueKeepsWhatPostgresAccepts(t *testing.T) {
	pool := newPool(t, dbtest.NewDatabase(t))
	p := NewPostgres(pool)
	// Linger long enough for the three records to make one batch.
	q := NewQueue(p, QueueOptions{Writers: 1, Linger: 300 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})

	good, goodEvents := record(t, "good", "s", "m", "q", "a", 0, false)
	// A session id of kilobytes (a client's header) is more than the
	// session index can hold: PostgreSQL refuses the call row (a program
	// limit, not a data exception); its events carry no such index.
	long := randomText(t, 20000)
	longCall, longEvents := record(t, "long", long, "m", "q", "a", 1, false)
	for _, e := range longEvents {
		e.Event.SessionId = long
	}
	// An event dated before any date PostgreSQL knows.
	oddCall, oddEvents := record(t, "odd", "s", "m", "q", "a", 2, false)
	oddEvents[2].Event.Time = &timestamppb.Timestamp{Seconds: -300_000_000_000}

	for _, r := range []struct {
		call   *Call
		events []Event
	}{{good, goodEvents}, {longCall, longEvents}, {oddCall, oddEvents}} {
		if !q.Enqueue(r.call, r.events) {
			t.Fatal("record dropped at enqueue")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatalf("Close: %v (one bad row held the batch)", err)
	}

	count := func(query string, args ...any) int {
		var n int
		if err := pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for id, want := range map[string]struct{ row, events int }{"good": {1, 4}, "long": {0, 4}, "odd": {1, 3}} {
		if row, events := count("SELECT count(*) FROM calls WHERE call_id = $1", id), count("SELECT count(*) FROM call_events WHERE call_id = $1", id); row != want.row || events != want.events {
			t.Errorf("call %s: %d rows and %d events stored, want %d and %d", id, row, events, want.row, want.events)
		}
	}
	if q.Dropped() != 1 || q.Written() != 11 {
		t.Errorf("dropped %d events and wrote %d, want 1 and 11", q.Dropped(), q.Written())
	}
}

// randomText is n characters that do not compress.
func randomText(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
