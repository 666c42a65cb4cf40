package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"luthien.dev/migrations"
	"luthien.dev/migrations/dbtest"
)

// emptyDatabase creates an empty (unmigrated) database, dropped when the
// test ends, and returns its URL.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dbtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "luthien_test_empty_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dbtest.AdminURL())
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(dbtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func TestMigrate(t *testing.T) {
	dbURL := emptyDatabase(t)
	getenv := func(name string) string {
		if name == envDatabaseURL {
			return dbURL
		}
		return ""
	}
	ctx := context.Background()
	for range 2 { // the second run has nothing to do
		if err := run(ctx, []string{"migrate", "-log-level", "error"}, getenv); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := migrations.Check(ctx, pool); err != nil {
		t.Fatalf("schema after migrate: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM calls").Scan(&n); err != nil {
		t.Fatalf("calls table: %v", err)
	}

	err = run(ctx, []string{"migrate"}, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("migrate without a database: %v", err)
	}
	err = run(ctx, []string{"migrate", "-database-url", "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"}, func(string) string { return "" })
	if err == nil {
		t.Fatal("migrate succeeded against an unreachable database")
	}
}
