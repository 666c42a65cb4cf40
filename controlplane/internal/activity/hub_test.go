package activity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

func event(callID, session, typ string) *cpv1.CallEvent {
	return &cpv1.CallEvent{CallId: callID, SessionId: session, EventType: typ}
}

// subscribe subscribes to h.
func subscribe(t *testing.T, h *Hub, f Filter, buffer int) *Subscription {
	t.Helper()
	s, err := h.Subscribe(f, buffer)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return s
}

// receive waits for the next event of s.
func receive(t *testing.T, s *Subscription) *cpv1.CallEvent {
	t.Helper()
	select {
	case ev := <-s.C():
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return nil
	}
}

// none checks that s has no event waiting.
func none(t *testing.T, s *Subscription) {
	t.Helper()
	select {
	case ev := <-s.C():
		t.Fatalf("unexpected event %v", ev)
	default:
	}
}

func TestFilters(t *testing.T) {
	h := NewLocal(nil)
	defer h.Close()
	all := subscribe(t, h, Filter{}, 0)
	byCall := subscribe(t, h, Filter{CallID: "c1"}, 0)
	bySession := subscribe(t, h, Filter{SessionID: "s2"}, 0)
	byType := subscribe(t, h, Filter{Prefixes: []string{"policy.", "error"}}, 0)

	h.Publish(event("c1", "s1", "request.received"))
	h.Publish(event("c2", "s2", "policy.judge.blocked"))
	h.Publish(event("c3", "s3", "error"))

	for i, want := range []string{"c1", "c2", "c3"} {
		if got := receive(t, all).GetCallId(); got != want {
			t.Errorf("all: event %d is %s, want %s", i, got, want)
		}
	}
	if got := receive(t, byCall).GetCallId(); got != "c1" {
		t.Errorf("by call: %s", got)
	}
	if got := receive(t, bySession).GetCallId(); got != "c2" {
		t.Errorf("by session: %s", got)
	}
	if a, b := receive(t, byType).GetCallId(), receive(t, byType).GetCallId(); a != "c2" || b != "c3" {
		t.Errorf("by type: %s, %s", a, b)
	}
	for _, s := range []*Subscription{all, byCall, bySession, byType} {
		none(t, s)
	}
}

func TestSlowSubscriberLosesEventsAndNeverBlocks(t *testing.T) {
	h := NewLocal(nil)
	defer h.Close()
	slow := subscribe(t, h, Filter{}, 4)
	fast := subscribe(t, h, Filter{}, 100)
	done := make(chan struct{})
	go func() {
		for i := range 10 {
			h.Publish(event(fmt.Sprint(i), "", "x"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	if got := slow.TakeDropped(); got != 6 {
		t.Errorf("slow subscriber dropped %d, want 6", got)
	}
	if slow.TakeDropped() != 0 {
		t.Error("TakeDropped did not reset")
	}
	if fast.TakeDropped() != 0 || h.Dropped() != 6 {
		t.Errorf("fast dropped %d, hub dropped %d", fast.TakeDropped(), h.Dropped())
	}
	for i := range 4 {
		if got := receive(t, slow).GetCallId(); got != fmt.Sprint(i) {
			t.Errorf("slow got %s, want the first events in order", got)
		}
	}
	slow.Close()
	slow.Close() // twice is fine
	h.Publish(event("after", "", "x"))
	if _, ok := <-slow.C(); ok {
		t.Error("a closed subscription received an event")
	}
}

// redisClient connects to the test Redis.
func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// testPrefix is a key and channel prefix of this test only.
func testPrefix(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "luthien-test:" + hex.EncodeToString(b[:]) + ":"
}

func TestHubsShareEventsThroughRedis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prefix := testPrefix(t)
	a, err := NewRedis(ctx, redisClient(t), prefix, nil)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	defer a.Close()
	b, err := NewRedis(ctx, redisClient(t), prefix, nil)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	defer b.Close()
	other, err := NewRedis(ctx, redisClient(t), testPrefix(t), nil)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	defer other.Close()
	subA, subB, subOther := subscribe(t, a, Filter{}, 0), subscribe(t, b, Filter{CallID: "c1"}, 0), subscribe(t, other, Filter{}, 0)

	a.Publish(event("c1", "s", "request.received"))
	b.Publish(event("c2", "s", "request.received"))

	// Each hub sees its own event once and the other's.
	gotA := []string{receive(t, subA).GetCallId(), receive(t, subA).GetCallId()}
	if !(gotA[0] == "c1" && gotA[1] == "c2" || gotA[0] == "c2" && gotA[1] == "c1") {
		t.Errorf("hub a received %v, want c1 and c2", gotA)
	}
	if got := receive(t, subB).GetCallId(); got != "c1" {
		t.Errorf("hub b received %s, want c1 (from hub a)", got)
	}
	time.Sleep(100 * time.Millisecond) // let any duplicate arrive
	none(t, subA)
	none(t, subB)
	none(t, subOther) // another prefix is another feed
}
