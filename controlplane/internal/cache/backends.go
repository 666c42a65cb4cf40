package cache

import (
	"container/list"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultLRUSize is the number of entries of the in-process cache.
const DefaultLRUSize = 1000

// NewLRU returns a cache of at most size entries (DefaultLRUSize when
// <= 0) in this process.
func NewLRU(size int, ttl time.Duration, mode Mode, log *slog.Logger) *Cache {
	if size <= 0 {
		size = DefaultLRUSize
	}
	return newCache(&lru{size: size, entries: make(map[string]*list.Element), order: list.New(), now: time.Now},
		"memory", ttl, mode, log)
}

// NewRedis returns a cache in Redis under keys prefix+"cache:"+hash.
func NewRedis(rdb *redis.Client, prefix string, ttl time.Duration, mode Mode, log *slog.Logger) *Cache {
	return newCache(&redisBackend{rdb: rdb, prefix: prefix + "cache:"}, "redis", ttl, mode, log)
}

func newCache(b backend, kind string, ttl time.Duration, mode Mode, log *slog.Logger) *Cache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if mode == "" {
		mode = ModeTemperature0
	}
	return &Cache{b: b, kind: kind, ttl: ttl, mode: mode, log: log}
}

// redisBackend keeps entries in Redis with an expiry.
type redisBackend struct {
	rdb    *redis.Client
	prefix string
}

func (r *redisBackend) get(ctx context.Context, key string) ([]byte, bool, error) {
	b, err := r.rdb.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

func (r *redisBackend) set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return r.rdb.Set(ctx, r.prefix+key, value, ttl).Err()
}

// lru keeps the most recently used entries in memory.
type lru struct {
	size int
	now  func() time.Time

	mu      sync.Mutex
	entries map[string]*list.Element
	order   *list.List // front: most recently used
}

type lruEntry struct {
	key     string
	value   []byte
	expires time.Time
}

func (l *lru) get(_ context.Context, key string) ([]byte, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.entries[key]
	if !ok {
		return nil, false, nil
	}
	e := el.Value.(*lruEntry)
	if !l.now().Before(e.expires) {
		l.order.Remove(el)
		delete(l.entries, key)
		return nil, false, nil
	}
	l.order.MoveToFront(el)
	return e.value, true, nil
}

func (l *lru) set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := &lruEntry{key: key, value: value, expires: l.now().Add(ttl)}
	if el, ok := l.entries[key]; ok {
		el.Value = e
		l.order.MoveToFront(el)
		return nil
	}
	l.entries[key] = l.order.PushFront(e)
	for l.order.Len() > l.size {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.entries, oldest.Value.(*lruEntry).key)
	}
	return nil
}
