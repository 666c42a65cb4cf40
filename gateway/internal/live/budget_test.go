package live

import (
	"context"
	"testing"
	"time"
)

// The relay's budget holds what fits, makes the reader wait beyond it
// until the writer frees bytes, takes a message larger than the bound when
// nothing is held, and gives up when the request ends.
func TestRelayBudget(t *testing.T) {
	b := newBudget(100)
	ctx := context.Background()
	if !b.acquire(ctx, 60) || !b.acquire(ctx, 40) {
		t.Fatal("what fits was refused")
	}
	got := make(chan bool, 1)
	go func() { got <- b.acquire(ctx, 30) }()
	select {
	case <-got:
		t.Fatal("acquired over the bound")
	case <-time.After(50 * time.Millisecond):
	}
	b.release(60)
	select {
	case ok := <-got:
		if !ok || b.bytes() != 70 {
			t.Fatalf("after a release: acquired %v, %d bytes held", ok, b.bytes())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a release did not wake the reader")
	}
	b.release(70)
	if !b.acquire(ctx, 1000) || b.bytes() != 1000 {
		t.Fatalf("a message over the bound, nothing held: %d bytes held", b.bytes())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if b.acquire(cctx, 1) {
		t.Error("acquired over the bound after the request ended")
	}
}
