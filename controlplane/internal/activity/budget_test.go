package activity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// bigEvent is an event of call id with a payload of about n bytes.
func bigEvent(id string, n int) *cpv1.CallEvent {
	return &cpv1.CallEvent{CallId: id, EventType: "request.received",
		PayloadJson: fmt.Appendf(nil, `{"content":%q}`, strings.Repeat("x", n))}
}

// A subscriber that does not read holds at most its byte budget (8 MiB by
// default) however many events its buffer would take: the rest are
// dropped and counted. Once it reads, the bytes are free again.
func TestSlowSubscriberBoundedInBytes(t *testing.T) {
	h := NewLocal(nil)
	defer h.Close()
	slow := subscribe(t, h, Filter{}, 1024)
	for i := range 100 {
		h.Publish(bigEvent(fmt.Sprint(i), 512<<10))
		if held := slow.Held(); held > DefaultSubscriberBytes {
			t.Fatalf("after %d events the subscriber holds %d bytes, budget %d", i+1, held, DefaultSubscriberBytes)
		}
	}
	got := 0
	var bytes int
	for len(slow.C()) > 0 {
		ev := <-slow.C()
		if ev.GetCallId() != fmt.Sprint(got) {
			t.Fatalf("event %d is %s: want the first ones in order", got, ev.GetCallId())
		}
		got++
		bytes += len(ev.GetPayloadJson())
	}
	if got == 0 || bytes > DefaultSubscriberBytes {
		t.Errorf("the subscriber held %d events, %d bytes; budget %d", got, bytes, DefaultSubscriberBytes)
	}
	if d := slow.TakeDropped(); d != int64(100-got) || h.Dropped() != d {
		t.Errorf("dropped %d (hub: %d), want %d", d, h.Dropped(), 100-got)
	}
	if held := slow.Held(); held != 0 {
		t.Errorf("%d bytes held after reading everything", held)
	}
	h.Publish(bigEvent("after", 512<<10))
	if ev := receive(t, slow); ev.GetCallId() != "after" {
		t.Errorf("after reading, got %s", ev.GetCallId())
	}
}

// An explicit budget holds; an event larger than the budget never reaches
// the subscriber, and costs it nothing else.
func TestSubscriberBudgetLimit(t *testing.T) {
	h := NewLocalLimited(nil, Limits{SubscriberBytes: 64 << 10})
	defer h.Close()
	s := subscribe(t, h, Filter{}, 100)
	h.Publish(bigEvent("huge", 100<<10))
	for i := range 10 {
		h.Publish(bigEvent(fmt.Sprint(i), 10<<10))
	}
	if held := s.Held(); held > 64<<10 {
		t.Errorf("holds %d bytes, budget %d", held, 64<<10)
	}
	if ev := receive(t, s); ev.GetCallId() != "0" {
		t.Errorf("first event %s, want 0 (huge dropped)", ev.GetCallId())
	}
	if d := s.TakeDropped(); d != 1+10-6 {
		t.Errorf("dropped %d, want 5 (huge, then 4 of the 10 KiB events over 64 KiB)", d)
	}
}

// A hub takes DefaultMaxSubscribers (64) subscribers; the next is refused
// until one leaves.
func TestSubscribersCapped(t *testing.T) {
	h := NewLocal(nil)
	defer h.Close()
	subs := make([]*Subscription, 0, DefaultMaxSubscribers)
	for range DefaultMaxSubscribers {
		subs = append(subs, subscribe(t, h, Filter{}, 0))
	}
	if _, err := h.Subscribe(Filter{}, 0); !errors.Is(err, ErrTooManySubscribers) {
		t.Fatalf("subscriber %d: %v, want ErrTooManySubscribers", DefaultMaxSubscribers+1, err)
	}
	subs[0].Close()
	s := subscribe(t, h, Filter{}, 0)
	h.Publish(event("c1", "", "x"))
	if receive(t, s).GetCallId() != "c1" || h.Subscribers() != DefaultMaxSubscribers {
		t.Errorf("a subscriber in a freed place: %d subscribers", h.Subscribers())
	}
}

// Events waiting to be published to Redis are bounded in bytes: a burst of
// large events beyond the bound is not published (counted), and the hub's
// own subscribers still get every event.
func TestRedisPublishBoundedInBytes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := NewRedisLimited(ctx, redisClient(t), testPrefix(t), nil, Limits{PublishBytes: 2 << 20, SubscriberBytes: 64 << 20})
	if err != nil {
		t.Fatalf("NewRedisLimited: %v", err)
	}
	defer h.Close()
	local := subscribe(t, h, Filter{}, 1024)
	got := make(chan int)
	go func() {
		n := 0
		for range local.C() {
			if n++; n == 50 {
				break
			}
		}
		got <- n
	}()
	burst := make([]*cpv1.CallEvent, 50)
	for i := range burst {
		burst[i] = bigEvent(fmt.Sprint(i), 1<<20)
	}
	for _, ev := range burst {
		h.Publish(ev)
	}
	select {
	case n := <-got:
		if n != 50 {
			t.Errorf("the local subscriber got %d of 50 events", n)
		}
	case <-ctx.Done():
		t.Fatal("the local subscriber did not get every event")
	}
	if d := h.PublishDropped(); d == 0 || d == 50 {
		t.Errorf("%d of 50 events not published, want some (a burst of 50 MiB over a 2 MiB bound), not all", d)
	}
}
