package store

import (
	"context"
	"log/slog"
	"time"
)

// Purger deletes calls and events older than a cutoff, in batches.
type Purger interface {
	Purge(ctx context.Context, cutoff time.Time, batch int) (calls, events int64, err error)
}

// Retention settings.
const (
	// purgeBatch is the most rows one DELETE removes.
	purgeBatch = 5000
	// PurgeInterval is how often retention runs.
	PurgeInterval = time.Hour
)

// PurgeOnce deletes what is older than days days.
func PurgeOnce(ctx context.Context, p Purger, days int, now time.Time, log *slog.Logger) error {
	cutoff := now.Add(-time.Duration(days) * 24 * time.Hour)
	calls, events, err := p.Purge(ctx, cutoff, purgeBatch)
	if calls > 0 || events > 0 {
		log.Info("retention purged old calls", "calls", calls, "events", events, "older_than", cutoff)
	}
	return err
}

// RunRetention purges what is older than days days now and then every
// interval, until ctx ends. days <= 0 keeps everything.
func RunRetention(ctx context.Context, p Purger, days int, interval time.Duration, log *slog.Logger) {
	if days <= 0 {
		return
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if err := PurgeOnce(ctx, p, days, time.Now(), log); err != nil && ctx.Err() == nil {
			log.Warn("retention purge failed", "error", err)
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
	}
}
