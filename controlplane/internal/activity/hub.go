// Package activity is the live feed of recorded events. A Hub fans every
// published event out to its subscribers, each through a bounded buffer: a
// subscriber that reads too slowly loses events (counted), and never
// slows a publisher. With Redis, hubs of every gateway and control plane
// sharing the server also exchange their events over Redis pub/sub, so
// they all show one feed.
package activity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// DefaultBuffer is a subscriber's buffer when Subscribe is given none.
const DefaultBuffer = 256

// publishQueue bounds the events waiting to be published to Redis.
const publishQueue = 4096

// Filter selects events. The zero Filter selects everything.
type Filter struct {
	// CallID selects one call's events ("" = all).
	CallID string
	// SessionID selects one session's events ("" = all).
	SessionID string
	// Prefixes selects event types starting with one of them (empty = all).
	Prefixes []string
}

// Match reports whether ev passes the filter.
func (f Filter) Match(ev *cpv1.CallEvent) bool {
	if f.CallID != "" && ev.GetCallId() != f.CallID {
		return false
	}
	if f.SessionID != "" && ev.GetSessionId() != f.SessionID {
		return false
	}
	if len(f.Prefixes) == 0 {
		return true
	}
	for _, p := range f.Prefixes {
		if strings.HasPrefix(ev.GetEventType(), p) {
			return true
		}
	}
	return false
}

// Hub fans events out to subscribers. It is safe for concurrent use.
type Hub struct {
	log *slog.Logger

	mu   sync.RWMutex
	subs map[*Subscription]struct{}

	dropped atomic.Int64 // events lost by slow subscribers

	// Redis bridge; rdb is nil for an in-process hub.
	rdb            *redis.Client
	channel        string
	origin         string // this hub's id, to skip its own events coming back
	out            chan *cpv1.CallEvent
	pubsub         *redis.PubSub
	publishDropped atomic.Int64
	cancel         context.CancelFunc
	wg             sync.WaitGroup
	closeOnce      sync.Once
}

// NewLocal returns an in-process hub.
func NewLocal(log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{log: log, subs: make(map[*Subscription]struct{})}
}

// NewRedis returns a hub bridged through Redis pub/sub on channel
// prefix+"activity". It waits (within ctx) for the subscription to be
// confirmed; when Redis cannot be reached it returns an error. Once
// running, a lost Redis connection is re-established by itself; local
// subscribers keep receiving this hub's own events meanwhile.
func NewRedis(ctx context.Context, rdb *redis.Client, prefix string, log *slog.Logger) (*Hub, error) {
	h := NewLocal(log)
	var id [8]byte
	_, _ = rand.Read(id[:])
	h.rdb, h.channel, h.origin = rdb, prefix+"activity", hex.EncodeToString(id[:])
	h.out = make(chan *cpv1.CallEvent, publishQueue)
	h.pubsub = rdb.Subscribe(ctx, h.channel)
	if _, err := h.pubsub.Receive(ctx); err != nil {
		_ = h.pubsub.Close()
		return nil, fmt.Errorf("activity: subscribe to redis: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.wg.Add(2)
	go h.publishLoop(runCtx)
	go h.receiveLoop()
	return h, nil
}

// Publish sends ev to every matching subscriber (of every hub sharing
// Redis). It never blocks. Subscribers share ev: nobody may modify it
// after Publish.
func (h *Hub) Publish(ev *cpv1.CallEvent) {
	h.deliver(ev)
	if h.out == nil {
		return
	}
	select {
	case h.out <- ev:
	default:
		if n := h.publishDropped.Add(1); n == 1 || n%1000 == 0 {
			h.log.Warn("activity events not published to redis: queue full", "dropped_total", n)
		}
	}
}

// deliver hands ev to the local subscribers.
func (h *Hub) deliver(ev *cpv1.CallEvent) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		if !s.filter.Match(ev) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			s.dropped.Add(1)
			h.dropped.Add(1)
		}
	}
}

// Dropped is the number of events lost by slow subscribers of this hub.
func (h *Hub) Dropped() int64 { return h.dropped.Load() }

// PublishDropped is the number of events not sent to Redis because the
// publish queue was full or Redis failed.
func (h *Hub) PublishDropped() int64 { return h.publishDropped.Load() }

// Subscribe returns a subscription to events matching f, buffered by
// buffer events (DefaultBuffer when <= 0). Close it when done.
func (h *Hub) Subscribe(f Filter, buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	s := &Subscription{hub: h, filter: f, ch: make(chan *cpv1.CallEvent, buffer)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Close stops the Redis bridge and closes every subscription.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		if h.cancel != nil {
			h.cancel()
			_ = h.pubsub.Close()
			h.wg.Wait()
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		for s := range h.subs {
			delete(h.subs, s)
			close(s.ch)
		}
	})
}

// Subscription is one subscriber's feed.
type Subscription struct {
	hub     *Hub
	filter  Filter
	ch      chan *cpv1.CallEvent
	dropped atomic.Int64
}

// C delivers the events; it is closed when the subscription or the hub
// is closed.
func (s *Subscription) C() <-chan *cpv1.CallEvent { return s.ch }

// TakeDropped returns the number of events this subscriber lost since the
// previous call.
func (s *Subscription) TakeDropped() int64 { return s.dropped.Swap(0) }

// Close ends the subscription.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

// publishLoop sends queued events to Redis, several per round trip.
func (h *Hub) publishLoop(ctx context.Context) {
	defer h.wg.Done()
	batch := make([]*cpv1.CallEvent, 0, 128)
	for {
		select {
		case ev := <-h.out:
			batch = append(batch[:0], ev)
		case <-ctx.Done():
			return
		}
	fill:
		for len(batch) < cap(batch) {
			select {
			case ev := <-h.out:
				batch = append(batch, ev)
			default:
				break fill
			}
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := h.rdb.Pipelined(pctx, func(p redis.Pipeliner) error {
			for _, ev := range batch {
				msg, err := encode(h.origin, ev)
				if err != nil {
					return err
				}
				p.Publish(pctx, h.channel, msg)
			}
			return nil
		})
		cancel()
		if err != nil && ctx.Err() == nil {
			if n := h.publishDropped.Add(int64(len(batch))); n == int64(len(batch)) || n%1000 < int64(len(batch)) {
				h.log.Warn("activity events not published to redis", "events", len(batch), "dropped_total", n, "error", err)
			}
		}
	}
}

// receiveLoop delivers the events other hubs publish.
func (h *Hub) receiveLoop() {
	defer h.wg.Done()
	for msg := range h.pubsub.Channel(redis.WithChannelSize(1024)) {
		origin, ev, err := decode(msg.Payload)
		if err != nil {
			h.log.Warn("activity: undecodable redis message", "error", err)
			continue
		}
		if origin == h.origin {
			continue
		}
		h.deliver(ev)
	}
}

// A Redis message is the origin hub's id, a newline and the marshalled
// event.
func encode(origin string, ev *cpv1.CallEvent) ([]byte, error) {
	b, err := proto.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return append([]byte(origin+"\n"), b...), nil
}

func decode(payload string) (string, *cpv1.CallEvent, error) {
	origin, body, ok := strings.Cut(payload, "\n")
	if !ok {
		return "", nil, errors.New("no origin")
	}
	var ev cpv1.CallEvent
	if err := proto.Unmarshal([]byte(body), &ev); err != nil {
		return "", nil, err
	}
	return origin, &ev, nil
}
