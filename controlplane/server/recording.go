package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/activity"
	"luthien.dev/controlplane/internal/cache"
	"luthien.dev/controlplane/internal/service"
	"luthien.dev/controlplane/internal/store"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Defaults of the recording settings.
const (
	// DefaultRedisPrefix prefixes every Redis key and channel of the
	// activity feed and the response cache.
	DefaultRedisPrefix = "luthien:"
	// DefaultCacheTTL is the usual LUTHIEN_CACHE_TTL.
	DefaultCacheTTL = time.Hour
	// DefaultQueueCapacity is the write queue's capacity in events.
	DefaultQueueCapacity = store.DefaultQueueCapacity
)

// droppedEventType is the activity event announcing that the write queue
// dropped events.
const droppedEventType = "store.dropped"

// history is what the history service and retention need of a store.
type history interface {
	service.History
	store.Writer
	store.Purger
}

// recording is the record of calls: the store and its write queue, the
// activity hub, the response cache and retention.
type recording struct {
	history  history
	queue    *store.Queue
	hub      *activity.Hub
	cache    *cache.Cache
	stopping chan struct{} // closed by Shutdown: ends activity streams
	stopOnce sync.Once
	cancel   context.CancelFunc // stops retention
	done     chan struct{}      // closed when retention returns
}

// newRecording builds the recording pipeline over the shared connections:
// PostgreSQL or the memory store, Redis or the in-process hub and LRU.
func newRecording(cfg Config, conns *connections, logger *slog.Logger) (*recording, error) {
	mode, err := cache.ParseMode(cfg.CacheMode)
	if err != nil {
		return nil, err
	}
	if cfg.CacheTTL < 0 {
		return nil, fmt.Errorf("cache TTL %v is negative", cfg.CacheTTL)
	}
	if cfg.RetentionDays < 0 || cfg.QueueCapacity < 0 {
		return nil, errors.New("retention days and queue capacity must not be negative")
	}
	prefix := cfg.RedisPrefix
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	r := &recording{stopping: make(chan struct{}), done: make(chan struct{})}
	if conns.pool != nil {
		r.history = store.NewPostgres(conns.pool)
	} else {
		r.history = store.NewMemory(0, 0)
	}
	if conns.rdb != nil {
		ctx, cancel := context.WithTimeout(context.Background(), startupTimeout)
		r.hub, err = activity.NewRedis(ctx, conns.rdb, prefix, logger)
		cancel()
		if err != nil {
			return nil, err
		}
		r.cache = cache.NewRedis(conns.rdb, prefix, cfg.CacheTTL, mode, logger)
	} else {
		r.hub = activity.NewLocal(logger)
		r.cache = cache.NewLRU(0, cfg.CacheTTL, mode, logger)
	}
	r.queue = store.NewQueue(r.history, store.QueueOptions{
		Capacity: cfg.QueueCapacity,
		Logger:   logger,
		OnDrop:   func(dropped, total int64) { r.hub.Publish(droppedEvent(dropped, total)) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		store.RunRetention(ctx, r.history, cfg.RetentionDays, store.PurgeInterval, logger)
	}()
	logger.Info("recording calls", "store", r.history.Kind(), "activity", hubKind(conns), "cache", r.cache.Kind(),
		"cache_ttl", cfg.CacheTTL, "cache_mode", mode, "retention_days", cfg.RetentionDays)
	return r, nil
}

func hubKind(c *connections) string {
	if c.rdb != nil {
		return "redis"
	}
	return "in-process"
}

// droppedEvent is the activity event that reports events the write queue
// dropped.
func droppedEvent(dropped, total int64) *cpv1.CallEvent {
	return &cpv1.CallEvent{EventType: droppedEventType, Time: timestamppb.Now(), Payload: &structpb.Struct{
		Fields: map[string]*structpb.Value{
			"dropped":       structpb.NewNumberValue(float64(dropped)),
			"dropped_total": structpb.NewNumberValue(float64(total)),
		},
	}}
}

// shutdown ends the activity streams.
func (r *recording) shutdown() {
	r.stopOnce.Do(func() { close(r.stopping) })
}

// close flushes the write queue (until ctx ends) and stops retention and
// the hub.
func (r *recording) close(ctx context.Context) error {
	r.shutdown()
	err := r.queue.Close(ctx)
	r.cancel()
	<-r.done
	r.hub.Close()
	return err
}
