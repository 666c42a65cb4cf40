package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// fakeWriter records batches; it fails while failing is set and blocks
// while gate is held.
type fakeWriter struct {
	mu      sync.Mutex
	events  []Event
	calls   []*Call
	batches int
	failing atomic.Bool
	gate    sync.RWMutex
}

func (w *fakeWriter) WriteBatch(ctx context.Context, calls []*Call, events []Event) error {
	w.gate.RLock()
	defer w.gate.RUnlock()
	if w.failing.Load() {
		return errors.New("database down")
	}
	for _, e := range events {
		if e.Key == "bad" {
			return fmt.Errorf("bad data: %w", ErrRejected)
		}
	}
	for _, c := range calls {
		if c.Summary.GetCallId() == "bad" {
			return fmt.Errorf("bad call row: %w", ErrRejected)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, events...)
	w.calls = append(w.calls, calls...)
	w.batches++
	return nil
}

func (w *fakeWriter) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

func testEvents(callID string, n int) []Event {
	out := make([]Event, n)
	for i := range out {
		out[i] = Event{Key: fmt.Sprint(i), Event: &cpv1.CallEvent{CallId: callID, EventType: "policy.test"}}
	}
	return out
}

func closeQueue(t *testing.T, q *Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestQueueWritesInBatches(t *testing.T) {
	w := &fakeWriter{}
	w.gate.Lock() // hold the writer so that records pile up
	q := NewQueue(w, QueueOptions{Capacity: 1000, MaxBatch: 10})
	for i := range 20 {
		if !q.Enqueue(&Call{Summary: &cpv1.CallSummary{CallId: fmt.Sprint(i)}}, testEvents(fmt.Sprint(i), 5)) {
			t.Fatalf("record %d dropped", i)
		}
	}
	if got := q.Depth(); got != 100 {
		t.Errorf("Depth = %d, want 100", got)
	}
	w.gate.Unlock()
	closeQueue(t, q)
	if w.written() != 100 || len(w.calls) != 20 {
		t.Fatalf("wrote %d events and %d calls, want 100 and 20", w.written(), len(w.calls))
	}
	// The first batch took what the writer held; the rest came 10 at a time.
	if w.batches < 10 || w.batches > 11 {
		t.Errorf("%d batches, want 10 or 11 of at most 10 events", w.batches)
	}
	if q.Written() != 100 || q.Depth() != 0 || q.Dropped() != 0 {
		t.Errorf("written %d, depth %d, dropped %d", q.Written(), q.Depth(), q.Dropped())
	}
}

func TestQueueDropsWhenFull(t *testing.T) {
	w := &fakeWriter{}
	w.gate.Lock()
	var reports atomic.Int64
	q := NewQueue(w, QueueOptions{Capacity: 10, DropReportInterval: 10 * time.Millisecond,
		OnDrop: func(dropped, total int64) { reports.Add(dropped) }})
	accepted := 0
	for i := range 5 {
		if q.Enqueue(nil, testEvents(fmt.Sprint(i), 3)) {
			accepted++
		}
	}
	if accepted != 3 {
		t.Errorf("accepted %d records of 3 events with capacity 10, want 3", accepted)
	}
	if q.Dropped() != 6 {
		t.Errorf("Dropped = %d, want 6", q.Dropped())
	}
	deadline := time.Now().Add(5 * time.Second)
	for reports.Load() != 6 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if reports.Load() != 6 {
		t.Errorf("OnDrop reported %d dropped, want 6", reports.Load())
	}
	w.gate.Unlock()
	closeQueue(t, q)
	if w.written() != 9 {
		t.Errorf("wrote %d events, want 9", w.written())
	}
	if q.Enqueue(nil, testEvents("late", 1)) {
		t.Error("a closed queue accepted a record")
	}
}

func TestQueueRetriesUntilTheWriterRecovers(t *testing.T) {
	w := &fakeWriter{}
	w.failing.Store(true)
	q := NewQueue(w, QueueOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	q.Enqueue(nil, testEvents("a", 4))
	deadline := time.Now().Add(5 * time.Second)
	for q.WriteErrors() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if q.WriteErrors() < 3 {
		t.Fatalf("WriteErrors = %d, want retries", q.WriteErrors())
	}
	if q.Depth() != 4 || w.written() != 0 {
		t.Fatalf("depth %d, written %d while failing", q.Depth(), w.written())
	}
	w.failing.Store(false)
	closeQueue(t, q)
	if w.written() != 4 {
		t.Errorf("wrote %d events after recovery, want 4", w.written())
	}
}

func TestQueueCloseGivesUpAtTheDeadline(t *testing.T) {
	w := &fakeWriter{}
	w.failing.Store(true)
	q := NewQueue(w, QueueOptions{MinBackoff: time.Millisecond})
	q.Enqueue(nil, testEvents("a", 2))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := q.Close(ctx)
	if err == nil {
		t.Fatal("Close succeeded with the writer down")
	}
	if q.Depth() != 2 {
		t.Errorf("Depth = %d after giving up, want 2", q.Depth())
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// A batch the store rejects is written record by record, a rejected record
// row by row, and only the rows rejected alone are dropped.
func TestQueueDropsOnlyRejectedRows(t *testing.T) {
	w := &fakeWriter{}
	w.gate.Lock()
	q := NewQueue(w, QueueOptions{Writers: 1})
	q.Enqueue(nil, testEvents("a", 2))
	q.Enqueue(&Call{Summary: &cpv1.CallSummary{CallId: "bad"}},
		[]Event{{Key: "bad", Event: &cpv1.CallEvent{CallId: "bad"}}, {Key: "ok", Event: &cpv1.CallEvent{CallId: "bad"}}})
	q.Enqueue(&Call{Summary: &cpv1.CallSummary{CallId: "c"}}, testEvents("c", 3))
	w.gate.Unlock()
	closeQueue(t, q)
	if w.written() != 6 || len(w.calls) != 1 || q.Written() != 6 || q.Dropped() != 1 || q.Rejected() != 2 {
		t.Errorf("written %d events (counted %d) and %d call rows, dropped %d, rejected %d; want the 6 good events "+
			"and the good call row written, the bad event dropped, it and the bad call row rejected",
			w.written(), q.Written(), len(w.calls), q.Dropped(), q.Rejected())
	}
}
