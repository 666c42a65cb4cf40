// Package dbtest gives control-plane tests a fresh migrated database.
package dbtest

import (
	"testing"

	"luthien.dev/migrations/dbtest"
)

// NewDatabase returns the URL of a fresh migrated database, dropped when
// the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return dbtest.NewDatabase(t)
}
