package live

import (
	"context"
	"sync"
)

// relayBytes bounds the bytes of the feed messages a relay has received
// and not yet written to its client: 4 MiB. The relay stops reading the
// control plane's stream beyond it, so a slow client holds little in the
// gateway; gRPC flow control then stops the control plane's sends, and
// its subscription (bounded too) drops the events, counted in the next
// message's dropped.
const relayBytes = 4 << 20

// budget counts bytes held against a bound; acquire waits for room.
type budget struct {
	mu    sync.Mutex
	held  int64
	max   int64
	freed chan struct{} // a token: bytes were released
}

func newBudget(maxBytes int64) *budget {
	return &budget{max: maxBytes, freed: make(chan struct{}, 1)}
}

// acquire counts n bytes held, waiting while they would take the budget
// over its bound (a message larger than the bound alone is taken when
// nothing is held). It returns false when ctx ends first.
func (b *budget) acquire(ctx context.Context, n int64) bool {
	for {
		b.mu.Lock()
		if b.held == 0 || b.held+n <= b.max {
			b.held += n
			b.mu.Unlock()
			return true
		}
		b.mu.Unlock()
		select {
		case <-b.freed:
		case <-ctx.Done():
			return false
		}
	}
}

// release counts n bytes no longer held.
func (b *budget) release(n int64) {
	b.mu.Lock()
	b.held -= n
	b.mu.Unlock()
	select {
	case b.freed <- struct{}{}:
	default:
	}
}

// bytes is the number of bytes held.
func (b *budget) bytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}
