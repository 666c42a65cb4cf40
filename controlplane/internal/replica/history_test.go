package replica

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// activation describes a test activation.
func activation(t *testing.T, class, revision, changedBy string, cfg map[string]any) *cpv1.ActivePolicy {
	t.Helper()
	st, err := structpb.NewStruct(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &cpv1.ActivePolicy{Policy: &cpv1.PolicyConfig{Class: class, Config: st}, Revision: revision,
		ActivatedAt: timestamppb.Now(), ChangedBy: changedBy}
}

// TestPolicyHistoryRows checks that the startup entry seeds only an empty
// history, that every published activation becomes a row with its author
// and config, newest first, and that the active row keeps its author.
func TestPolicyHistoryRows(t *testing.T) {
	rep, err := New(openDB(t), nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got, err := rep.ListHistory(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("empty history: %v, %v", got, err)
	}
	if err := rep.SeedHistory(ctx, activation(t, "noop", "r0", "startup", nil)); err != nil {
		t.Fatal(err)
	}
	if err := rep.SeedHistory(ctx, activation(t, "noop", "r0-again", "startup", nil)); err != nil {
		t.Fatal(err)
	}
	published := []*cpv1.ActivePolicy{
		activation(t, "regex_block", "r1", "alice", map[string]any{"patterns": []any{"rm"}}),
		activation(t, "all_caps", "r2", "", nil),
	}
	for _, desc := range published {
		if err := rep.Publish(ctx, desc); err != nil {
			t.Fatal(err)
		}
	}
	got, err := rep.ListHistory(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ revision, changedBy string }{{"r2", ""}, {"r1", "alice"}, {"r0", "startup"}}
	if len(got) != len(want) {
		t.Fatalf("history %v, want %d entries", got, len(want))
	}
	for i, w := range want {
		if got[i].GetRevision() != w.revision || got[i].GetChangedBy() != w.changedBy {
			t.Errorf("entry %d = %s by %q, want %s by %q", i, got[i].GetRevision(), got[i].GetChangedBy(), w.revision, w.changedBy)
		}
	}
	if p := got[1].GetPolicy().GetConfig().AsMap()["patterns"]; fmt.Sprint(p) != "[rm]" || !got[1].GetActivatedAt().IsValid() {
		t.Errorf("entry r1 lost its config or time: %v", got[1])
	}
	if got, err := rep.ListHistory(ctx, 1); err != nil || len(got) != 1 || got[0].GetRevision() != "r2" {
		t.Errorf("ListHistory(1) = %v, %v", got, err)
	}
	// Seeding a history that has entries changes nothing.
	if err := rep.SeedHistory(ctx, activation(t, "noop", "late", "startup", nil)); err != nil {
		t.Fatal(err)
	}
	if got, _ := rep.ListHistory(ctx, 10); len(got) != 3 {
		t.Errorf("a seed over a history added an entry: %v", got)
	}
	published[0].ChangedBy = "alice"
	if err := rep.Publish(ctx, published[0]); err != nil {
		t.Fatal(err)
	}
	if desc, ok, err := rep.Load(ctx); err != nil || !ok || desc.GetChangedBy() != "alice" {
		t.Errorf("Load = %v, %v, %v; want the active policy changed by alice", desc, ok, err)
	}
}

// TestPolicyHistoryBounded fills policy_history to HistoryLimit rows:
// each publish then deletes the oldest rows in its transaction.
func TestPolicyHistoryBounded(t *testing.T) {
	pool := openDB(t)
	rep, err := New(pool, nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO policy_history (class, revision, activated_at, changed_by)
		SELECT 'noop', 'old-' || n, now(), 'filler' FROM generate_series(1, $1) AS n`, HistoryLimit); err != nil {
		t.Fatal(err)
	}
	for _, rev := range []string{"new-1", "new-2"} {
		if err := rep.Publish(ctx, activation(t, "all_caps", rev, "bob", nil)); err != nil {
			t.Fatal(err)
		}
	}
	var count int
	var oldest string
	if err := pool.QueryRow(ctx, `SELECT count(*), (SELECT revision FROM policy_history ORDER BY id LIMIT 1) FROM policy_history`).Scan(&count, &oldest); err != nil {
		t.Fatal(err)
	}
	if count != HistoryLimit || oldest != "old-3" {
		t.Errorf("%d rows, oldest %s; want %d, the two oldest deleted", count, oldest, HistoryLimit)
	}
	got, err := rep.ListHistory(ctx, 2)
	if err != nil || len(got) != 2 || got[0].GetRevision() != "new-2" || got[1].GetRevision() != "new-1" {
		t.Errorf("newest entries %v, %v", got, err)
	}
}
