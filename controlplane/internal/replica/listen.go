package replica

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// retryDelay is the wait before re-subscribing after a lost connection.
const retryDelay = time.Second

// Listen applies every announced activation until ctx is done,
// re-subscribing after connection losses. Announcements are applied in
// the order the channel delivers them, the same on every replica, so all
// replicas end with the last one. ready, when not nil, is closed once the
// first subscription is active.
func (r *Replica) Listen(ctx context.Context, a Applier, ready chan<- struct{}) error {
	if r.pool != nil && r.rdb != nil {
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { r.reconcileLoop(ctx, a) })
	}
	for {
		err := r.listenOnce(ctx, a, ready)
		ready = nil
		if ctx.Err() != nil {
			return nil
		}
		r.logger.WarnContext(ctx, "policy announcements: subscription lost; resubscribing", "error", err)
		t := time.NewTimer(retryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// listenOnce subscribes once and applies announcements until the
// subscription fails. After subscribing it reloads the persisted policy,
// so nothing announced while it was not listening is missed.
func (r *Replica) listenOnce(ctx context.Context, a Applier, ready chan<- struct{}) error {
	if r.rdb != nil {
		sub := r.rdb.Subscribe(ctx, r.channel)
		defer sub.Close()
		// A blocked receive does not watch ctx: closing the subscription
		// ends it.
		defer context.AfterFunc(ctx, func() { _ = sub.Close() })()
		if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
			return fmt.Errorf("redis subscribe: %w", err)
		}
		r.catchUp(ctx, a)
		if ready != nil {
			close(ready)
		}
		for {
			msg, err := sub.ReceiveMessage(ctx)
			if err != nil {
				return fmt.Errorf("redis receive: %w", err)
			}
			r.apply(ctx, a, []byte(msg.Payload))
		}
	}
	pooled, err := r.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("listen: connect: %w", err)
	}
	// A connection that ran LISTEN is not given back to the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	r.catchUp(ctx, a)
	if ready != nil {
		close(ready)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("listen: wait: %w", err)
		}
		r.apply(ctx, a, []byte(n.Payload))
	}
}

// reconcileLoop reloads the persisted policy every r.reconcile until ctx
// is done.
func (r *Replica) reconcileLoop(ctx context.Context, a Applier) {
	t := time.NewTicker(r.reconcile)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.catchUp(ctx, a)
		}
	}
}

// catchUp applies the persisted policy, if any.
func (r *Replica) catchUp(ctx context.Context, a Applier) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	desc, ok, err := r.Load(lctx)
	if err != nil {
		r.logger.WarnContext(ctx, "policy announcements: reloading the persisted policy failed", "error", err)
		return
	}
	if ok {
		if err := a.Restore(desc); err != nil {
			r.logger.ErrorContext(ctx, "persisted policy is invalid here; keeping the active one", "error", err)
		}
	}
}

// apply activates one announcement; an invalid one is logged and ignored.
func (r *Replica) apply(ctx context.Context, a Applier, payload []byte) {
	desc := &cpv1.ActivePolicy{}
	if err := protojson.Unmarshal(payload, desc); err != nil {
		r.logger.ErrorContext(ctx, "policy announcement unreadable; ignored", "error", err)
		return
	}
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	if err := a.Restore(desc); err != nil {
		r.logger.ErrorContext(ctx, "announced policy is invalid here; keeping the active one",
			"revision", desc.GetRevision(), "error", err)
	}
}
