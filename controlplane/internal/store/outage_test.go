package store

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"luthien.dev/controlplane/internal/dbtest"
	"luthien.dev/controlplane/internal/netcut"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// TestNothingLostAcrossAnOutage writes calls under load while the
// database becomes unreachable (the test cuts a TCP proxy between the
// store and PostgreSQL) and comes back, and checks that every event
// accepted by the queue is stored exactly once.
func TestNothingLostAcrossAnOutage(t *testing.T) {
	direct := dbtest.NewDatabase(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy := netcut.Start(t, u.Host)
	u.Host = proxy.Addr()
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.ConnectTimeout = time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	q := NewQueue(NewPostgres(pool), QueueOptions{Capacity: 100000, MaxBatch: 200,
		WriteTimeout: 2 * time.Second, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	const calls, perCall = 1500, 5
	sent, accepted := 0, 0
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			id := fmt.Sprintf("call-%d", i)
			events := testEvents(id, perCall)
			if q.Enqueue(&Call{Summary: &cpv1.CallSummary{CallId: id}}, events) {
				accepted++
				sent += len(events)
			}
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	produce(0, 300)
	proxy.Cut()
	outage := time.Now()
	produce(300, 900)
	// Wait until writes have failed, so that the outage really happened
	// while records were queued.
	deadline := time.Now().Add(20 * time.Second)
	for q.WriteErrors() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if q.WriteErrors() < 3 {
		t.Fatalf("no failed writes during the outage (write errors %d)", q.WriteErrors())
	}
	if q.Depth() == 0 {
		t.Fatal("nothing queued during the outage")
	}
	t.Logf("outage: %d write errors, %d events queued after %v", q.WriteErrors(), q.Depth(), time.Since(outage))
	proxy.Restore()
	produce(900, calls)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if q.Dropped() != 0 || accepted != calls {
		t.Fatalf("dropped %d, accepted %d of %d calls", q.Dropped(), accepted, calls)
	}

	check := newPool(t, direct)
	var storedEvents, storedCalls int
	if err := check.QueryRow(ctx, "SELECT count(*) FROM call_events").Scan(&storedEvents); err != nil {
		t.Fatal(err)
	}
	if err := check.QueryRow(ctx, "SELECT count(*) FROM calls").Scan(&storedCalls); err != nil {
		t.Fatal(err)
	}
	if storedEvents != sent || storedCalls != accepted {
		t.Fatalf("stored %d events and %d calls, sent %d and %d", storedEvents, storedCalls, sent, accepted)
	}
	if q.Written() != int64(sent) {
		t.Errorf("Written = %d, want %d", q.Written(), sent)
	}
	t.Logf("sent %d events, stored %d, write errors %d", sent, storedEvents, q.WriteErrors())
}
