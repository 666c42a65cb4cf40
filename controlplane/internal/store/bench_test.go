package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/dbtest"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// BenchmarkPostgresWrite measures the write path into PostgreSQL: calls of
// five events (request and response bodies of about 1 KiB each) through
// the Queue, flushed at the end. It reports events per second.
//
//	go test -run '^$' -bench PostgresWrite -benchtime 20000x ./internal/store
func BenchmarkPostgresWrite(b *testing.B) {
	for _, writers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) { benchmarkWrite(b, writers) })
	}
}

func benchmarkWrite(b *testing.B, writers int) {
	pool := newPool(b, dbtest.NewDatabase(b))
	q := NewQueue(NewPostgres(pool), QueueOptions{Capacity: 1 << 22, Writers: writers})
	body := fmt.Appendf(nil, `{"model":"claude","messages":[{"role":"user","content":%q}]}`, strings.Repeat("lorem ipsum ", 80))
	types := []string{"request.received", "request.final", "response.original", "response.final", "policy.bench.decided"}
	start := time.Now()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("bench-%d", i)
		now := timestamppb.Now()
		events := make([]Event, len(types))
		for j, typ := range types {
			events[j] = Event{Key: typ, Event: &cpv1.CallEvent{CallId: id, SessionId: "s", EventType: typ, Time: now, PayloadJson: body}}
		}
		call := &Call{Summary: &cpv1.CallSummary{CallId: id, SessionId: "s", Model: "claude", Status: 200, StartedAt: now},
			Text: "lorem ipsum dolor sit amet", Preview: "lorem"}
		for !q.Enqueue(call, events) {
			time.Sleep(time.Millisecond) // the benchmark measures throughput, not drops
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(q.Written())/elapsed.Seconds(), "events/s")
}
