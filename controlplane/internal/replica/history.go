package replica

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// HistoryLimit bounds policy_history: every write keeps the newest
// HistoryLimit rows and deletes the older ones in its transaction.
const HistoryLimit = 1000

// historyLock serialises writers of policy_history across control planes
// (pg_advisory_xact_lock), so that the first entry of an empty history is
// written once and the rows keep the order of the activations.
const historyLock = 7_245_093_120

// appendHistory writes an activation into policy_history within tx and
// trims the table to the newest HistoryLimit rows.
func appendHistory(ctx context.Context, tx pgx.Tx, desc *cpv1.ActivePolicy, cfg []byte) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, historyLock); err != nil {
		return fmt.Errorf("policy history: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO policy_history (class, config, revision, activated_at, changed_by)
		VALUES ($1, $2, $3, $4, $5)`,
		desc.GetPolicy().GetClass(), cfg, desc.GetRevision(), desc.GetActivatedAt().AsTime(), desc.GetChangedBy()); err != nil {
		return fmt.Errorf("policy history: insert: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM policy_history
		WHERE id < (SELECT id FROM policy_history ORDER BY id DESC OFFSET $1 LIMIT 1)`, HistoryLimit-1); err != nil {
		return fmt.Errorf("policy history: trim: %w", err)
	}
	return nil
}

// SeedHistory records desc, the policy a control plane starts with, as
// the first entry of an empty policy history. A history with entries is
// left as it is. Without a database it does nothing.
func (r *Replica) SeedHistory(ctx context.Context, desc *cpv1.ActivePolicy) error {
	if r.pool == nil {
		return nil
	}
	cfg, err := configJSON(desc)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, historyLock); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO policy_history (class, config, revision, activated_at, changed_by)
			SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM policy_history)`,
			desc.GetPolicy().GetClass(), cfg, desc.GetRevision(), desc.GetActivatedAt().AsTime(), desc.GetChangedBy())
		return err
	})
	if err != nil {
		return fmt.Errorf("seed policy history: %w", err)
	}
	return nil
}

// ListHistory returns up to limit activations of policy_history, newest
// first.
func (r *Replica) ListHistory(ctx context.Context, limit int) ([]*cpv1.ActivePolicy, error) {
	if r.pool == nil {
		return nil, errors.New("list policy history: no database")
	}
	rows, err := r.pool.Query(ctx, `SELECT class, config, revision, activated_at, changed_by
		FROM policy_history ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list policy history: %w", err)
	}
	defer rows.Close()
	var out []*cpv1.ActivePolicy
	for rows.Next() {
		desc, err := scanPolicy(rows)
		if err != nil {
			return nil, fmt.Errorf("list policy history: %w", err)
		}
		out = append(out, desc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list policy history: %w", err)
	}
	return out, nil
}
