package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// bigRecord is a call of one event whose payload is body.
func bigRecord(id string, minute int, body []byte) (*Call, []Event) {
	at := timestamppb.New(base.Add(time.Duration(minute) * time.Minute))
	return &Call{Summary: &cpv1.CallSummary{CallId: id, SessionId: "s", StartedAt: at}},
		[]Event{{Key: "g0:request.received", Event: &cpv1.CallEvent{CallId: id, SessionId: "s", EventType: "request.received", Time: at, PayloadJson: body}}}
}

// payloadOf is a JSON object of about n bytes.
func payloadOf(n int) []byte {
	return fmt.Appendf(nil, `{"content":%q}`, strings.Repeat("x", max(n-14, 0)))
}

// The memory store, by default, keeps at most DefaultMemoryBytes (256 MiB)
// of calls, however few: the oldest go first.
func TestMemoryEvictsByBytes(t *testing.T) {
	m := NewMemory(0, 0)
	body := payloadOf(10 << 20) // one array, held by every call as far as the bound is concerned
	for i := range 40 {
		c, e := bigRecord(fmt.Sprint("c", i), i, body)
		write(t, m, []*Call{c}, e)
	}
	got, _, err := m.ListCalls(context.Background(), CallFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got); n == 0 || n > 25 || got[0].GetCallId() != "c39" {
		t.Fatalf("kept %d calls of 10 MiB (newest %v), want at most 25 (256 MiB), the newest first", n, ids(got))
	}
	var want []string
	for i := 39; i > 39-len(got); i-- {
		want = append(want, fmt.Sprint("c", i))
	}
	if !slices.Equal(ids(got), want) {
		t.Errorf("kept %v, want the newest %v", ids(got), want)
	}
}

// An explicit byte bound is kept after every write, retention purges
// included.
func TestMemoryByteBoundHolds(t *testing.T) {
	const bound = 1 << 20
	m := NewMemoryLimited(MemoryLimits{Bytes: bound})
	for i := range 10 {
		c, e := bigRecord(fmt.Sprint("c", i), i, payloadOf(300<<10))
		write(t, m, []*Call{c}, e)
		if b := m.Bytes(); b > bound {
			t.Fatalf("after call %d: %d bytes held, bound %d", i, b, bound)
		}
	}
	got, _, _ := m.ListCalls(context.Background(), CallFilter{Limit: 100})
	if want := []string{"c9", "c8", "c7"}; !slices.Equal(ids(got), want) {
		t.Errorf("kept %v, want %v", ids(got), want)
	}
	if _, _, err := m.Purge(context.Background(), base.Add(100*time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	if b := m.Bytes(); b != 0 {
		t.Errorf("%d bytes counted in an empty store", b)
	}
}

// The write queue, by default, holds at most DefaultQueueBytes (128 MiB) of
// records: while the store is stuck, records beyond are dropped and their
// events counted, however few; once it is back, what was queued is
// written.
func TestQueueDropsByBytes(t *testing.T) {
	w := &fakeWriter{}
	w.gate.Lock()
	q := NewQueue(w, QueueOptions{Writers: 1})
	body := payloadOf(10 << 20)
	accepted := 0
	for i := range 20 {
		c, e := bigRecord(fmt.Sprint("c", i), i, body)
		if q.Enqueue(c, e) {
			accepted++
		}
	}
	if accepted == 0 || accepted > 12 || q.Dropped() != int64(20-accepted) {
		t.Errorf("accepted %d records of 10 MiB, dropped %d events; want at most 12 (128 MiB) and the rest counted", accepted, q.Dropped())
	}
	w.gate.Unlock()
	closeQueue(t, q)
	if w.written() != accepted {
		t.Errorf("wrote %d events, want the %d queued", w.written(), accepted)
	}
}

// Bytes follows what is queued and in flight, and an explicit bound holds.
func TestQueueByteBound(t *testing.T) {
	const bound = 1 << 20
	w := &fakeWriter{}
	w.gate.Lock()
	q := NewQueue(w, QueueOptions{MaxBytes: bound})
	for i := range 10 {
		c, e := bigRecord(fmt.Sprint("c", i), i, payloadOf(300<<10))
		q.Enqueue(c, e)
		if b := q.Bytes(); b > bound {
			t.Fatalf("queue holds %d bytes, bound %d", b, bound)
		}
	}
	if q.Dropped() != 7 {
		t.Errorf("dropped %d events, want 7 (three fit in 1 MiB)", q.Dropped())
	}
	w.gate.Unlock()
	closeQueue(t, q)
	if b := q.Bytes(); b != 0 || w.written() != 3 {
		t.Errorf("after the flush: %d bytes counted, %d events written", b, w.written())
	}
}

// The search text of a request the gateway recorded truncated is the start
// it kept.
func TestConversationTextOfTruncatedRequest(t *testing.T) {
	marker := []byte(`{"_luthien_truncated":{"original_bytes":5000000,"kept_bytes":60},"head":"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"find the needle"}`)
	text, _ := ConversationText(marker, nil)
	if !strings.Contains(text, "find the needle") {
		t.Errorf("text %q", text)
	}
}
