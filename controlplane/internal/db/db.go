// Package db opens the control plane's PostgreSQL pool and keeps its
// schema current.
package db

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"luthien.dev/migrations"
)

// Open connects to url, applies pending migrations and checks the schema
// version. The caller closes the pool.
func Open(ctx context.Context, url string, log *slog.Logger) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database: DATABASE_URL: %w", err)
	}
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database: connect: %w", err)
	}
	if err := Migrate(pctx, pool, log); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Migrate applies pending migrations (never destructive) and verifies the
// resulting schema version.
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	applied, err := migrations.Apply(ctx, pool)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if len(applied) > 0 && log != nil {
		log.Info("database migrated", "applied", applied, "version", migrations.Latest())
	}
	if err := migrations.Check(ctx, pool); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return nil
}
