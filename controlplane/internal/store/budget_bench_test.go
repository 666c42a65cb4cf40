package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// benchRecord is a call of five events with bodies of about 1 KiB, as the
// record service queues it.
func benchRecord(i int, body []byte) (*Call, []Event) {
	id := fmt.Sprintf("bench-%d", i)
	now := timestamppb.Now()
	types := []string{"request.received", "request.final", "response.original", "response.final", "policy.bench.decided"}
	events := make([]Event, len(types))
	for j, typ := range types {
		events[j] = Event{Key: typ, Event: &cpv1.CallEvent{CallId: id, SessionId: "s", EventType: typ, Time: now, PayloadJson: body}}
	}
	return &Call{Summary: &cpv1.CallSummary{CallId: id, SessionId: "s", Model: "claude", Status: 200, StartedAt: now},
		Text: "lorem ipsum dolor sit amet", Preview: "lorem"}, events
}

func benchBody() []byte {
	return fmt.Appendf(nil, `{"model":"claude","messages":[{"role":"user","content":%q}]}`, strings.Repeat("lorem ipsum ", 80))
}

// BenchmarkMemoryWrite measures writing one call of five events into a
// full memory store (every write evicts the oldest call).
func BenchmarkMemoryWrite(b *testing.B) {
	m := NewMemory(0, 0)
	body := benchBody()
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		c, ev := benchRecord(i, body)
		i++
		if err := m.WriteBatch(ctx, []*Call{c}, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQueueMemory measures the whole write path without a database:
// Enqueue (on the request path) and the writers storing into the memory
// store.
func BenchmarkQueueMemory(b *testing.B) {
	q := NewQueue(NewMemory(0, 0), QueueOptions{})
	body := benchBody()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		c, ev := benchRecord(i, body)
		i++
		for !q.Enqueue(c, ev) {
			time.Sleep(50 * time.Microsecond) // throughput, not drops
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		b.Fatal(err)
	}
}
