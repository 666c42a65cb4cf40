package replica

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/db"
	"luthien.dev/controlplane/internal/dbtest"
	"luthien.dev/controlplane/internal/policy"
	"luthien.dev/controlplane/internal/service"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// node is one simulated control plane: a store and its replica.
type node struct {
	store *service.Revisions
	rep   *Replica
}

// newNode starts a node listening for announcements until the test ends.
func newNode(t *testing.T, pool *pgxpool.Pool, rdb *redis.Client, channel string) *node {
	t.Helper()
	rep, err := New(pool, rdb, channel, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return startNode(t, rep)
}

// testLogger logs warnings and errors to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startNode starts a node over rep, running noop until the persisted
// policy or an announcement says otherwise, and listening for
// announcements until the test ends.
func startNode(t *testing.T, rep *Replica) *node {
	t.Helper()
	reg, err := policy.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	store, err := service.NewRevisions(reg, testLogger(t), "noop", nil, "startup")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rep.Listen(ctx, store, ready)
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("replica did not subscribe")
	}
	return &node{store: store, rep: rep}
}

// set activates a policy on n the way SetPolicy does.
func (n *node) set(t *testing.T, class string, cfg map[string]any) *service.Active {
	t.Helper()
	a, err := n.store.Prepare(class, cfg, "tester")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.rep.Publish(ctx, a.Proto()); err != nil {
		t.Fatal(err)
	}
	// As SetPolicy does: the announcement comes back through the
	// subscription, in the channel's order.
	if !n.store.WaitInstalled(ctx, a.Revision) {
		t.Fatalf("own announcement %s never came back", a.Revision)
	}
	return a
}

// waitRevision waits up to a second for n to run revision.
func waitRevision(t *testing.T, n *node, revision string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for n.store.Active().Revision != revision {
		if time.Now().After(deadline) {
			t.Fatalf("revision %s did not arrive within a second (active %s)", revision, n.store.Active().Revision)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func openDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), dbtest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func openRedis(t *testing.T) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// uniqueChannel keeps concurrent test runs on one Redis apart.
func uniqueChannel() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "luthien-test-" + hex.EncodeToString(b) + ":policy"
}

func TestPropagation(t *testing.T) {
	for _, tt := range []struct {
		name  string
		pg    bool
		redis bool
	}{
		{"postgres notify", true, false},
		{"redis", false, true},
		{"postgres and redis", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var pool1, pool2 *pgxpool.Pool
			if tt.pg {
				pool1 = openDB(t)
				// A second pool on the same database: another process.
				var err error
				if pool2, err = pgxpool.New(context.Background(), pool1.Config().ConnString()); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(pool2.Close)
			}
			var rdb1, rdb2 *redis.Client
			if tt.redis {
				rdb1, rdb2 = openRedis(t), openRedis(t)
			}
			channel := uniqueChannel()
			a := newNode(t, pool1, rdb1, channel)
			b := newNode(t, pool2, rdb2, channel)

			act := a.set(t, "all_caps", nil)
			waitRevision(t, b, act.Revision)
			if b.store.Active().Policy.Name() != "all_caps" {
				t.Errorf("b runs %s", b.store.Active().Policy.Name())
			}
			// Rapid switches from both sides converge on the last one.
			var last *service.Active
			for i := range 10 {
				n := a
				if i%2 == 1 {
					n = b
				}
				last = n.set(t, "string_replacement", map[string]any{"replacements": []any{[]any{"x", string(rune('a' + i))}}})
			}
			waitRevision(t, a, last.Revision)
			waitRevision(t, b, last.Revision)

			if tt.pg {
				desc, ok, err := b.rep.Load(context.Background())
				if err != nil || !ok || desc.GetRevision() != last.Revision || desc.GetPolicy().GetClass() != "string_replacement" {
					t.Errorf("persisted %v %v %v, want revision %s", desc, ok, err, last.Revision)
				}
			}
		})
	}
}

// An announcement this replica cannot build changes nothing.
func TestInvalidAnnouncementIgnored(t *testing.T) {
	rdb := openRedis(t)
	channel := uniqueChannel()
	a := newNode(t, nil, rdb, channel)
	before := a.store.Active().Revision
	bad := &cpv1.ActivePolicy{Policy: &cpv1.PolicyConfig{Class: "no_such_policy", Config: &structpb.Struct{}}, Revision: "bad1", ActivatedAt: timestamppb.Now()}
	if err := a.rep.Publish(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	good := a.set(t, "all_caps", nil) // after the bad one, in channel order
	waitRevision(t, a, good.Revision)
	if a.store.Lookup("bad1").Revision == "bad1" || before == good.Revision {
		t.Error("invalid announcement was activated")
	}
}

// A persisted policy survives a restart and is not overwritten by a seed.
func TestPersistence(t *testing.T) {
	pool := openDB(t)
	rep, err := New(pool, nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, ok, err := rep.Load(ctx); ok || err != nil {
		t.Fatalf("empty database: %v %v", ok, err)
	}
	cfg, _ := structpb.NewStruct(map[string]any{"patterns": []any{"rm"}})
	first := &cpv1.ActivePolicy{Policy: &cpv1.PolicyConfig{Class: "regex_block", Config: cfg}, Revision: "r1", ActivatedAt: timestamppb.Now()}
	got, err := rep.Seed(ctx, first)
	if err != nil || got.GetRevision() != "r1" {
		t.Fatalf("seed: %v %v", got, err)
	}
	second := &cpv1.ActivePolicy{Policy: &cpv1.PolicyConfig{Class: "noop"}, Revision: "r2", ActivatedAt: timestamppb.Now()}
	if got, err = rep.Seed(ctx, second); err != nil || got.GetRevision() != "r1" {
		t.Errorf("a second seed replaced the row: %v %v", got, err)
	}
	if got.GetPolicy().GetConfig().AsMap()["patterns"].([]any)[0] != "rm" {
		t.Errorf("config lost: %v", got)
	}
	if err := rep.Publish(ctx, second); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := rep.Load(ctx); got.GetRevision() != "r2" {
		t.Errorf("after publish: %v", got)
	}
	if _, err := New(nil, nil, "", nil); err == nil {
		t.Error("New without a database or Redis succeeded")
	}
}

// Concurrent switches on two replicas converge: both end on the same
// revision, the last the channel delivered.
func TestConcurrentSwitchesConverge(t *testing.T) {
	channel := uniqueChannel()
	a := newNode(t, nil, openRedis(t), channel)
	b := newNode(t, nil, openRedis(t), channel)
	var wg sync.WaitGroup
	for _, n := range []*node{a, b} {
		wg.Go(func() {
			for i := range 15 {
				class := "all_caps"
				if i%2 == 0 {
					class = "noop"
				}
				n.set(t, class, nil)
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for a.store.Active().Revision != b.store.Active().Revision {
		if time.Now().After(deadline) {
			t.Fatalf("replicas diverged: %s vs %s", a.store.Active().Revision, b.store.Active().Revision)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
