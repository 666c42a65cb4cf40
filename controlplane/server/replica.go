package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"luthien.dev/controlplane/internal/replica"
	"luthien.dev/controlplane/internal/service"
)

// startupTimeout bounds connecting to the database and Redis, loading the
// persisted policy and subscribing to policy changes at start-up, each.
const startupTimeout = 30 * time.Second

// startReplica runs the replica over the process's shared connections:
// it activates the persisted policy (or seeds the database with the
// store's, when it came from a policy file), records the policy it
// starts with as the first entry of an empty policy history, and listens
// for policy changes until the returned stop function is called. Without
// a database or Redis it returns a nil Replica and a stop that does
// nothing. The connections are closed by their owner, not by stop.
func startReplica(cfg Config, conns *connections, store *service.Revisions, logger *slog.Logger) (*replica.Replica, func(), error) {
	if conns.pool == nil && conns.rdb == nil {
		return nil, func() {}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), startupTimeout)
	defer cancel()
	prefix := cfg.RedisPrefix
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	rep, err := replica.New(conns.pool, conns.rdb, prefix+"policy", logger)
	if err != nil {
		return nil, nil, err
	}
	if err := restorePersisted(ctx, rep, store, cfg.PolicyConfigPath != ""); err != nil {
		return nil, nil, err
	}

	lctx, stopListening := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rep.Listen(lctx, store, ready)
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		stopListening()
		<-done
		return nil, nil, fmt.Errorf("subscribe to policy changes: %w", ctx.Err())
	}
	stop := func() {
		stopListening()
		<-done
	}
	return rep, sync.OnceFunc(stop), nil
}

// restorePersisted activates the persisted policy; without one, a policy
// that came from a file (seed) is persisted so that every replica starts
// with it. The policy it ends with is the first entry of the policy
// history when that is empty.
func restorePersisted(ctx context.Context, rep *replica.Replica, store *service.Revisions, seed bool) error {
	desc, ok, err := rep.Load(ctx)
	if err != nil {
		return err
	}
	if !ok && seed {
		if desc, err = rep.Seed(ctx, store.Active().Proto()); err != nil {
			return err
		}
		ok = true
	}
	if ok {
		if err := store.Restore(desc); err != nil {
			return fmt.Errorf("persisted policy: %w", err)
		}
	}
	return rep.SeedHistory(ctx, store.Active().Proto())
}
