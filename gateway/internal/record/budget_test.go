package record

import (
	"fmt"
	"slices"
	"testing"
)

// The queue holds at most MaxBytes of calls: the calls beyond are dropped
// and counted, and sent plus dropped is every call submitted.
func TestQueueDropsByBytes(t *testing.T) {
	const budget = 1 << 20
	s := newSink()
	r := New(quiet(), Options{MaxBytes: budget, MaxBodyBytes: -1, Workers: 1})
	release := stall(t, s, r)
	body := chatBody(300 << 10) // about 300 KiB a call
	for i := range 10 {
		r.Submit(newCall(fmt.Sprint("c", i), body), s.end())
		if q := r.QueuedBytes(); q > budget {
			t.Errorf("queue holds %d bytes, budget %d", q, budget)
		}
	}
	if r.Dropped() != 7 || s.ended() != 7 {
		t.Errorf("dropped %d of 10 calls, %d ended without a record; want 7 (three fit in 1 MiB)", r.Dropped(), s.ended())
	}
	release()
	waitFor(t, "every call sent or dropped", func() bool { return r.Sent()+r.Dropped() == 11 })
	if got := s.received(); !slices.Equal(got, []string{"c0", "c1", "c2", "first"}) {
		t.Errorf("received %v", got)
	}
	if q := r.QueuedBytes(); q != 0 {
		t.Errorf("%d bytes still counted in an empty queue", q)
	}
	closeRecorder(t, r)
}
