// Package replica keeps the active policy the same on every control-plane
// replica and across restarts. The active policy is one row of
// current_policy in PostgreSQL, written on every activation and loaded at
// start-up; an activation is announced on the Redis channel luthien:policy
// or, without Redis, with PostgreSQL NOTIFY luthien_policy. Every replica
// listens and activates what it hears (validated like any activation), so
// a change made on one reaches all of them in well under a second.
//
// The database row wins over a policy file: a file only seeds an empty
// database.
//
// Every activation is also a row of policy_history, written in the same
// transaction and bounded to the newest HistoryLimit rows (history.go).
//
// With both PostgreSQL and Redis the row is the truth and the announcement
// a shortcut: an activation is committed first, then announced; a replica
// reloads the row whenever it (re)subscribes and every ReconcileInterval,
// so one that missed an announcement (Redis unreachable from the replica
// that made the change) still ends on the committed policy.
package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// NotifyChannel is the PostgreSQL channel of policy announcements (used
// without Redis).
const NotifyChannel = "luthien_policy"

// DefaultRedisChannel is the usual Redis channel of policy announcements.
const DefaultRedisChannel = "luthien:policy"

// opTimeout bounds each database or Redis operation not bounded by a
// request.
const opTimeout = 10 * time.Second

// ReconcileInterval is how often a replica with both a database and Redis
// reloads the persisted policy, catching an activation whose announcement
// it missed.
const ReconcileInterval = 30 * time.Second

// Applier activates a policy described by another replica or the database.
type Applier interface {
	Restore(desc *cpv1.ActivePolicy) error
}

// Replica persists and announces activations and listens for others'. Its
// methods are safe for concurrent use.
type Replica struct {
	pool    *pgxpool.Pool // nil without a database
	rdb     *redis.Client // nil without Redis
	channel string        // the Redis channel
	logger  *slog.Logger
	// reconcile is how often a listening replica with both a database
	// and Redis reloads the row; ReconcileInterval unless a test sets it.
	reconcile time.Duration
	// applyMu makes applying an announcement and reloading the row
	// mutually exclusive, so a reload never undoes a newer announcement.
	applyMu sync.Mutex
}

// New returns a Replica over a database pool and a Redis client; either
// may be nil, not both. channel is the Redis channel of announcements
// (empty: DefaultRedisChannel); replicas sharing a Redis and a channel
// share their policy.
func New(pool *pgxpool.Pool, rdb *redis.Client, channel string, logger *slog.Logger) (*Replica, error) {
	if pool == nil && rdb == nil {
		return nil, errors.New("replica: needs a database or Redis")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if channel == "" {
		channel = DefaultRedisChannel
	}
	return &Replica{pool: pool, rdb: rdb, channel: channel, logger: logger, reconcile: ReconcileInterval}, nil
}

// Load returns the persisted active policy; ok is false when there is
// none (or no database).
func (r *Replica) Load(ctx context.Context) (desc *cpv1.ActivePolicy, ok bool, err error) {
	if r.pool == nil {
		return nil, false, nil
	}
	desc, err = scanPolicy(r.pool.QueryRow(ctx, `SELECT class, config, revision, activated_at, changed_by FROM current_policy`))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load active policy: %w", err)
	}
	return desc, true, nil
}

// scanPolicy reads a row of class, config, revision, activated_at and
// changed_by.
func scanPolicy(row pgx.Row) (*cpv1.ActivePolicy, error) {
	var class, revision, changedBy string
	var cfg []byte
	var at time.Time
	if err := row.Scan(&class, &cfg, &revision, &at, &changedBy); err != nil {
		return nil, err
	}
	st := &structpb.Struct{}
	if err := protojson.Unmarshal(cfg, st); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &cpv1.ActivePolicy{
		Policy:      &cpv1.PolicyConfig{Class: class, Config: st},
		Revision:    revision,
		ActivatedAt: timestamppb.New(at),
		ChangedBy:   changedBy,
	}, nil
}

// Seed persists desc unless a policy is already persisted; it returns the
// policy that is persisted afterwards (desc or the existing one).
func (r *Replica) Seed(ctx context.Context, desc *cpv1.ActivePolicy) (*cpv1.ActivePolicy, error) {
	if r.pool == nil {
		return desc, nil
	}
	cfg, err := configJSON(desc)
	if err != nil {
		return nil, err
	}
	if _, err := r.pool.Exec(ctx, `INSERT INTO current_policy (class, config, revision, activated_at, changed_by)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (singleton) DO NOTHING`,
		desc.GetPolicy().GetClass(), cfg, desc.GetRevision(), desc.GetActivatedAt().AsTime(), desc.GetChangedBy()); err != nil {
		return nil, fmt.Errorf("seed active policy: %w", err)
	}
	stored, ok, err := r.Load(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("seed active policy: row missing after insert")
	}
	return stored, nil
}

// Publish persists an activation (Persist) and announces it (Announce).
func (r *Replica) Publish(ctx context.Context, desc *cpv1.ActivePolicy) error {
	if _, err := r.Persist(ctx, desc); err != nil {
		return err
	}
	return r.Announce(ctx, desc)
}

// Persist writes an activation, with its row of policy history, in one
// transaction: every replica loads it at start-up and whenever it
// (re)subscribes to announcements. Without Redis the transaction also
// announces it (PostgreSQL NOTIFY, delivered at commit). durable reports
// whether there is a database; a failure writes nothing.
func (r *Replica) Persist(ctx context.Context, desc *cpv1.ActivePolicy) (durable bool, err error) {
	if r.pool == nil {
		return false, nil
	}
	cfg, err := configJSON(desc)
	if err != nil {
		return false, err
	}
	var msg []byte
	if r.rdb == nil {
		if msg, err = protojson.Marshal(desc); err != nil {
			return false, fmt.Errorf("persist policy: %w", err)
		}
	}
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO current_policy (class, config, revision, activated_at, changed_by, updated_at)
			VALUES ($1, $2, $3, $4, $5, now())
			ON CONFLICT (singleton) DO UPDATE SET class = EXCLUDED.class, config = EXCLUDED.config,
				revision = EXCLUDED.revision, activated_at = EXCLUDED.activated_at,
				changed_by = EXCLUDED.changed_by, updated_at = now()`,
			desc.GetPolicy().GetClass(), cfg, desc.GetRevision(), desc.GetActivatedAt().AsTime(), desc.GetChangedBy()); err != nil {
			return err
		}
		if err := appendHistory(ctx, tx, desc, cfg); err != nil {
			return err
		}
		if msg != nil {
			// Delivered at commit, in commit order.
			_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, string(msg))
			return err
		}
		return nil
	})
	if err != nil {
		return true, fmt.Errorf("persist policy: %w", err)
	}
	return true, nil
}

// Announce tells every replica about an activation over Redis. Without
// Redis it does nothing: Persist announced it.
func (r *Replica) Announce(ctx context.Context, desc *cpv1.ActivePolicy) error {
	if r.rdb == nil {
		return nil
	}
	msg, err := protojson.Marshal(desc)
	if err != nil {
		return fmt.Errorf("announce policy: %w", err)
	}
	if err := r.rdb.Publish(ctx, r.channel, msg).Err(); err != nil {
		return fmt.Errorf("announce policy: redis: %w", err)
	}
	return nil
}

// configJSON renders a policy's config for the database.
func configJSON(desc *cpv1.ActivePolicy) ([]byte, error) {
	cfg := desc.GetPolicy().GetConfig()
	if cfg == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(cfg.AsMap())
	if err != nil {
		return nil, fmt.Errorf("policy config: %w", err)
	}
	return b, nil
}
