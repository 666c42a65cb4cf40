package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"luthien.dev/controlplane/internal/db"
)

// connections are the process's one PostgreSQL pool and one Redis client,
// shared by every part of the control plane; either may be nil.
type connections struct {
	pool *pgxpool.Pool
	rdb  *redis.Client
}

// connect opens the database (migrating it and checking the schema
// version) and Redis named in cfg.
func connect(cfg Config, logger *slog.Logger) (*connections, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startupTimeout)
	defer cancel()
	c := &connections{}
	if cfg.DatabaseURL != "" {
		pool, err := db.Open(ctx, cfg.DatabaseURL, logger)
		if err != nil {
			return nil, err
		}
		c.pool = pool
		logger.Info("database connected", "url", RedactURL(cfg.DatabaseURL))
	}
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("redis: REDIS_URL: %w", err)
		}
		c.rdb = redis.NewClient(opts)
		if err := c.rdb.Ping(ctx).Err(); err != nil {
			c.close()
			return nil, fmt.Errorf("redis: connect: %w", err)
		}
		logger.Info("redis connected", "url", RedactURL(cfg.RedisURL))
	}
	return c, nil
}

// close closes what is open.
func (c *connections) close() {
	if c.pool != nil {
		c.pool.Close()
	}
	if c.rdb != nil {
		_ = c.rdb.Close()
	}
}

// RedactURL returns a database or Redis URL with its password replaced,
// for logs.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
