package migrations_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"luthien.dev/migrations"
	"luthien.dev/migrations/dbtest"
)

func TestAllNumbered(t *testing.T) {
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 || migrations.Latest() != len(all) {
		t.Fatalf("got %d migrations, latest %d", len(all), migrations.Latest())
	}
}

func TestApplyIsIdempotentAndChecked(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// The template is already migrated: nothing more to apply.
	applied, err := migrations.Apply(ctx, pool)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second apply: applied %v, err %v", applied, err)
	}
	if err := migrations.Check(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "DELETE FROM schema_migrations WHERE version = $1", migrations.Latest()); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Check(ctx, pool); err == nil {
		t.Fatal("Check accepted a database behind this build")
	}
	if _, err := pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')"); err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Apply(ctx, pool); err == nil {
		t.Fatal("Apply accepted a database ahead of this build")
	}
}

// TestPolicyHistoryMigration applies 0004 over a database at version 3
// holding an active policy: the policy becomes the first history entry,
// its author unknown, and the history takes rows.
func TestPolicyHistoryMigration(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbtest.NewEmptyDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range all[:3] {
		if _, err := pool.Exec(ctx, m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if _, err := pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO current_policy (class, config, revision, activated_at)
		VALUES ('all_caps', '{}', 'rev-before', now())`); err != nil {
		t.Fatal(err)
	}

	applied, err := migrations.Apply(ctx, pool)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(applied) == 0 || applied[0] != 4 {
		t.Fatalf("applied %v, want 4 first", applied)
	}
	if err := migrations.Check(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var class, revision, changedBy string
	if err := pool.QueryRow(ctx, `SELECT class, revision, changed_by FROM policy_history ORDER BY id`).Scan(&class, &revision, &changedBy); err != nil {
		t.Fatalf("policy_history: %v", err)
	}
	if class != "all_caps" || revision != "rev-before" || changedBy != "" {
		t.Errorf("first history entry = %s %s %q, want the active all_caps, author unknown", class, revision, changedBy)
	}
	if err := pool.QueryRow(ctx, `SELECT changed_by FROM current_policy`).Scan(&changedBy); err != nil || changedBy != "" {
		t.Errorf("current_policy.changed_by = %q, %v", changedBy, err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO policy_history (class, revision, activated_at, changed_by)
		VALUES ('noop', 'rev-after', now(), 'alice')`); err != nil {
		t.Errorf("insert into policy_history: %v", err)
	}
}
