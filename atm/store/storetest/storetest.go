// Package storetest opens real, throwaway stores for tests: a bbolt file in
// the test's temporary directory, closed when the test ends.
package storetest

import (
	"path/filepath"
	"testing"

	"github.com/cardless-atm/cardless/atm/store"
)

// Open returns a fresh store in t.TempDir(), closed on cleanup.
func Open(t testing.TB) *store.DB {
	t.Helper()
	return OpenOptions(t, store.Options{})
}

// OpenOptions is Open with options (clock, AfterCommit hook...).
func OpenOptions(t testing.TB, opts store.Options) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "atm.db"), opts)
	if err != nil {
		t.Fatalf("storetest: open store: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("storetest: close store: %v", err)
		}
	})
	return db
}
