// Package activity is the live feed of recorded events. A Hub fans every
// published event out to its subscribers, each through a buffer bounded in
// events and in bytes: a subscriber that reads too slowly loses events
// (counted), and never slows a publisher. A hub takes a bounded number of
// subscribers. With Redis, hubs of every gateway and control plane
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

// DefaultBuffer is a subscriber's buffer, in events, when Subscribe is
// given none.
const DefaultBuffer = 256

// Default limits of a hub. A subscriber's events share their payloads with
// every other subscriber's and the store's, but a slow subscriber keeps
// them alive: at most 8 MiB each, so that 64 subscribers that stopped
// reading hold 512 MiB at worst.
const (
	// DefaultSubscriberBytes bounds the bytes of the events waiting for
	// one subscriber.
	DefaultSubscriberBytes = 8 << 20
	// DefaultMaxSubscribers bounds the subscribers of a hub.
	DefaultMaxSubscribers = 64
	// DefaultPublishBytes bounds the bytes of the events waiting to be
	// published to Redis.
	DefaultPublishBytes = 16 << 20
)

// publishBatchBytes bounds the bytes of the events published to Redis in
// one round trip.
const publishBatchBytes = 4 << 20

// ErrTooManySubscribers is Subscribe's error when the hub has its most
// subscribers.
var ErrTooManySubscribers = errors.New("too many activity subscribers")

// Limits bound a hub; zero values are the defaults.
type Limits struct {
	// SubscriberBytes bounds the bytes (payload, strings and a fixed cost
	// per event) of the events waiting for each subscriber
	// (DefaultSubscriberBytes): an event that would take a subscriber
	// over it is dropped for that subscriber and counted, like one that
	// finds its buffer full.
	SubscriberBytes int64
	// Subscribers bounds the subscribers of the hub
	// (DefaultMaxSubscribers); Subscribe refuses more.
	Subscribers int
	// PublishBytes bounds the bytes of the events waiting to be published
	// to Redis (DefaultPublishBytes), as the queue of 4 096 events bounds
	// their number: an event beyond is not published (counted in
	// PublishDropped); the hub's own subscribers still get it.
	PublishBytes int64
}

// eventOverhead is what an event costs a subscriber besides its payload
// and strings.
const eventOverhead = 256

// eventBytes is about the memory an event holds.
func eventBytes(ev *cpv1.CallEvent) int64 {
	n := eventOverhead + len(ev.GetPayloadJson()) + len(ev.GetCallId()) + len(ev.GetSessionId()) + len(ev.GetEventType())
	if p := ev.GetPayload(); p != nil {
		n += proto.Size(p)
	}
	return int64(n)
}

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
	log    *slog.Logger
	limits Limits

	// mu guards subs and serialises deliveries (each subscription's byte
	// accounting follows its channel's order).
	mu   sync.Mutex
	subs map[*Subscription]struct{}

	dropped atomic.Int64 // events lost by slow subscribers

	// Redis bridge; rdb is nil for an in-process hub.
	rdb            *redis.Client
	channel        string
	origin         string // this hub's id, to skip its own events coming back
	out            chan *cpv1.CallEvent
	outBytes       atomic.Int64 // bytes of the events in out and being published
	pubsub         *redis.PubSub
	publishDropped atomic.Int64
	cancel         context.CancelFunc
	wg             sync.WaitGroup
	closeOnce      sync.Once
}

// NewLocal returns an in-process hub with the default limits.
func NewLocal(log *slog.Logger) *Hub { return NewLocalLimited(log, Limits{}) }

// NewLocalLimited returns an in-process hub bounded by l.
func NewLocalLimited(log *slog.Logger, l Limits) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if l.SubscriberBytes <= 0 {
		l.SubscriberBytes = DefaultSubscriberBytes
	}
	if l.Subscribers <= 0 {
		l.Subscribers = DefaultMaxSubscribers
	}
	if l.PublishBytes <= 0 {
		l.PublishBytes = DefaultPublishBytes
	}
	return &Hub{log: log, limits: l, subs: make(map[*Subscription]struct{})}
}

// NewRedis returns a hub bridged through Redis pub/sub on channel
// prefix+"activity", with the default limits. It waits (within ctx) for
// the subscription to be confirmed; when Redis cannot be reached it
// returns an error. Once running, a lost Redis connection is
// re-established by itself; local subscribers keep receiving this hub's
// own events meanwhile.
func NewRedis(ctx context.Context, rdb *redis.Client, prefix string, log *slog.Logger) (*Hub, error) {
	return NewRedisLimited(ctx, rdb, prefix, log, Limits{})
}

// NewRedisLimited is NewRedis with a hub bounded by l.
func NewRedisLimited(ctx context.Context, rdb *redis.Client, prefix string, log *slog.Logger, l Limits) (*Hub, error) {
	h := NewLocalLimited(log, l)
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
	if h.out == nil {
		h.deliver(ev, -1)
		return
	}
	size := eventBytes(ev)
	h.deliver(ev, size)
	if h.outBytes.Add(size) <= h.limits.PublishBytes {
		select {
		case h.out <- ev:
			return
		default:
		}
	}
	h.outBytes.Add(-size)
	if n := h.publishDropped.Add(1); n == 1 || n%1000 == 0 {
		h.log.Warn("activity events not published to redis: queue full", "dropped_total", n)
	}
}

// deliver hands ev, of size bytes (-1: not known yet), to the local
// subscribers.
func (h *Hub) deliver(ev *cpv1.CallEvent, size int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if !s.filter.Match(ev) {
			continue
		}
		if size < 0 {
			size = eventBytes(ev)
		}
		if !s.offer(ev, size) {
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
// buffer events (DefaultBuffer when <= 0) and Limits.SubscriberBytes.
// Close it when done. A hub with Limits.Subscribers subscribers refuses
// more: ErrTooManySubscribers.
func (h *Hub) Subscribe(f Filter, buffer int) (*Subscription, error) {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	s := &Subscription{hub: h, filter: f, ch: make(chan *cpv1.CallEvent, buffer),
		sizes: make([]int64, buffer), maxBytes: h.limits.SubscriberBytes}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= h.limits.Subscribers {
		return nil, fmt.Errorf("%w: the hub has its most, %d", ErrTooManySubscribers, h.limits.Subscribers)
	}
	h.subs[s] = struct{}{}
	return s, nil
}

// Subscribers is the number of subscriptions open.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
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

	// Guarded by the hub's mu: sizes[head:head+n] (a ring) are the sizes
	// of the events sent to ch, oldest first, of which the reader took
	// those not in ch any more; held is their sum.
	sizes    []int64
	head, n  int
	held     int64
	maxBytes int64
}

// offer sends ev, of size bytes, when it fits the buffer and the byte
// budget; it reports whether it did. The hub's mu is held.
func (s *Subscription) offer(ev *cpv1.CallEvent, size int64) bool {
	s.forgetTaken()
	if s.held+size > s.maxBytes {
		return false
	}
	select {
	case s.ch <- ev:
	default:
		return false
	}
	i := s.head + s.n
	if i >= len(s.sizes) {
		i -= len(s.sizes)
	}
	s.sizes[i] = size
	s.n++
	s.held += size
	return true
}

// forgetTaken releases the bytes of the events the reader took: those
// sent but no longer in the channel (only the reader empties it, so this
// never releases an event still held). The hub's mu is held.
func (s *Subscription) forgetTaken() {
	for taken := s.n - len(s.ch); taken > 0; taken-- {
		s.held -= s.sizes[s.head]
		if s.head++; s.head == len(s.sizes) {
			s.head = 0
		}
		s.n--
	}
}

// Held is the number of bytes of the events waiting for the subscriber.
func (s *Subscription) Held() int64 {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.forgetTaken()
	return s.held
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
		var size int64
		select {
		case ev := <-h.out:
			batch = append(batch[:0], ev)
			size = eventBytes(ev)
		case <-ctx.Done():
			return
		}
	fill:
		for len(batch) < cap(batch) && size < publishBatchBytes {
			select {
			case ev := <-h.out:
				batch = append(batch, ev)
				size += eventBytes(ev)
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
		clear(batch)
		h.outBytes.Add(-size)
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
		h.deliver(ev, -1)
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
