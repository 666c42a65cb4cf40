package replica

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/structpb"

	"luthien.dev/controlplane/internal/netcut"
	"luthien.dev/controlplane/internal/service"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// serveAdmin serves the admin service of n (its replica persists,
// announces and lists the history) on bufconn and returns a client.
func serveAdmin(t *testing.T, n *node) cpv1.PolicyAdminServiceClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	var history service.PolicyHistory
	if n.rep.pool != nil {
		history = n.rep
	}
	cpv1.RegisterPolicyAdminServiceServer(gs, service.NewAdminService(n.store, nil, n.rep, history))
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return cpv1.NewPolicyAdminServiceClient(conn)
}

// newPool opens another pool on the database of pool: another process.
func newPool(t *testing.T, connString string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.ConnectTimeout = time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// setPolicy calls SetPolicy with a deadline of d and returns the answer,
// the response header and the error.
func setPolicy(t *testing.T, client cpv1.PolicyAdminServiceClient, d time.Duration, class string, cfg map[string]any) (*cpv1.SetPolicyResponse, metadata.MD, error) {
	t.Helper()
	st, err := structpb.NewStruct(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var header metadata.MD
	resp, err := client.SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: class, Config: st}}, grpc.Header(&header))
	return resp, header, err
}

// getPolicy returns the active policy client shows.
func getPolicy(t *testing.T, client cpv1.PolicyAdminServiceClient) *cpv1.ActivePolicy {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := client.GetPolicy(ctx, &cpv1.GetPolicyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return got.GetActive()
}

// waitRevisionWithin waits up to d for n to run revision.
func waitRevisionWithin(t *testing.T, n *node, revision string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for n.store.Active().Revision != revision {
		if time.Now().After(deadline) {
			t.Fatalf("revision %s did not arrive within %v (active %s)", revision, d, n.store.Active().Revision)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With PostgreSQL and Redis, a change whose announcement cannot be
// published (Redis unreachable from the replica making it) is committed
// and answered as made: the answer, GetPolicy, the other replicas (from
// the database) and a control plane restarted on the same database all
// agree on it.
func TestSetPolicyWithRedisDown(t *testing.T) {
	pool := openDB(t)
	channel := uniqueChannel()
	proxy := netcut.Start(t, "127.0.0.1:6379")
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DialTimeout: time.Second, MaxRetries: 1})
	t.Cleanup(func() { _ = viaProxy.Close() })
	repA, err := New(pool, viaProxy, channel, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a := startNode(t, repA)
	repB, err := New(newPool(t, pool.Config().ConnString()), openRedis(t), channel, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	repB.reconcile = 100 * time.Millisecond
	b := startNode(t, repB)
	admin := serveAdmin(t, a)

	first, header, err := setPolicy(t, admin, 5*time.Second, "all_caps", nil)
	if err != nil {
		t.Fatalf("SetPolicy with Redis up: %v", err)
	}
	if got := header.Get(service.PropagationMetadataKey); len(got) != 0 {
		t.Errorf("propagation %q with Redis up", got)
	}
	waitRevisionWithin(t, b, first.GetActive().GetRevision(), time.Second)

	proxy.Cut()
	start := time.Now()
	resp, header, err := setPolicy(t, admin, 3*time.Second, "string_replacement", map[string]any{"replacements": []any{[]any{"a", "b"}}})
	if err != nil {
		t.Fatalf("SetPolicy with Redis down: %v (the change is committed: it must be answered as made)", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("SetPolicy took %v, past the caller's deadline", elapsed)
	}
	if got := header.Get(service.PropagationMetadataKey); len(got) != 1 || got[0] != service.PropagationDelayed {
		t.Errorf("propagation header %q, want %q", got, service.PropagationDelayed)
	}
	revision := resp.GetActive().GetRevision()
	if got := getPolicy(t, admin); got.GetRevision() != revision || got.GetPolicy().GetClass() != "string_replacement" {
		t.Errorf("GetPolicy after the change: %v, want revision %s", got, revision)
	}
	// The other replica missed the announcement and loads the row.
	waitRevisionWithin(t, b, revision, 5*time.Second)

	// A control plane restarted on the same database runs what the
	// answer said.
	repC, err := New(newPool(t, pool.Config().ConnString()), openRedis(t), channel, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	c := startNode(t, repC)
	if got := getPolicy(t, serveAdmin(t, c)); got.GetRevision() != revision || got.GetPolicy().GetClass() != "string_replacement" {
		t.Errorf("after a restart: %v, want revision %s", got, revision)
	}

	// Redis back: the replica that made the change subscribes again and
	// stays on it.
	proxy.Restore()
	time.Sleep(1500 * time.Millisecond)
	if got := a.store.Active().Revision; got != revision {
		t.Errorf("after Redis came back the replica runs %s, want %s", got, revision)
	}
}

// A change that cannot be committed is UNAVAILABLE and changes nothing:
// not here, not on the other replicas, not after a restart.
func TestSetPolicyWithDatabaseDown(t *testing.T) {
	direct := openDB(t)
	channel := uniqueChannel()
	u, err := url.Parse(direct.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	proxy := netcut.Start(t, u.Host)
	u.Host = proxy.Addr()
	repA, err := New(newPool(t, u.String()), openRedis(t), channel, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a := startNode(t, repA)
	b := newNode(t, direct, openRedis(t), channel)
	admin := serveAdmin(t, a)
	first, _, err := setPolicy(t, admin, 5*time.Second, "all_caps", nil)
	if err != nil {
		t.Fatal(err)
	}
	revision := first.GetActive().GetRevision()
	waitRevisionWithin(t, b, revision, time.Second)

	proxy.Cut()
	_, _, err = setPolicy(t, admin, 3*time.Second, "noop", nil)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("SetPolicy with the database down: %v, want UNAVAILABLE", err)
	}
	if got := getPolicy(t, admin); got.GetRevision() != revision {
		t.Errorf("GetPolicy after a refused change: %s, want %s", got.GetRevision(), revision)
	}
	time.Sleep(200 * time.Millisecond)
	if got := b.store.Active().Revision; got != revision {
		t.Errorf("the other replica runs %s, want %s", got, revision)
	}
	c := newNode(t, newPool(t, direct.Config().ConnString()), openRedis(t), channel)
	if got := c.store.Active().Revision; got != revision {
		t.Errorf("after a restart: %s, want %s", got, revision)
	}
}
