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
