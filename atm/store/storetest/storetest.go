// Package storetest opens real, throwaway stores for tests: a bbolt file in
// the test's temporary directory, closed when the test ends.
//
// Every store it opens is also an integrity test, as bbolt's own btesting
// does: when the test ends, the store is closed, opened again, and its
// electronic journal must verify (store.DB.VerifyJournal) and its file
// pass bbolt's consistency check (store.DB.Check). A test that damages
// the store on purpose opts out with NoIntegrityCheck.
package storetest

import (
	"path/filepath"
	"testing"

	"github.com/cardless-atm/cardless/atm/store"
)

// Option changes what Open does.
type Option func(*config)

type config struct{ noCheck bool }

// NoIntegrityCheck skips the integrity check at the end of the test: for
// tests that damage the store on purpose.
func NoIntegrityCheck() Option { return func(c *config) { c.noCheck = true } }

// Open returns a fresh store in t.TempDir(), closed and checked on cleanup.
func Open(t testing.TB, o ...Option) *store.DB {
	t.Helper()
	return OpenOptions(t, store.Options{}, o...)
}

// OpenOptions is Open with options (clock, AfterCommit hook...).
func OpenOptions(t testing.TB, opts store.Options, o ...Option) *store.DB {
	t.Helper()
	var c config
	for _, f := range o {
		f(&c)
	}
	path := filepath.Join(t.TempDir(), "atm.db")
	db, err := store.Open(path, opts)
	if err != nil {
		t.Fatalf("storetest: open store: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("storetest: close store: %v", err)
		}
		if !c.noCheck {
			Check(t, path, opts)
		}
	})
	return db
}

// Check opens the store file at path with opts and fails the test unless
// its journal verifies and bbolt finds the file consistent.
func Check(t testing.TB, path string, opts store.Options) {
	t.Helper()
	opts.AfterCommit = nil
	opts.DeferFileCheck = false // the whole file, now
	db, err := store.Open(path, opts)
	if err != nil {
		t.Errorf("storetest: integrity check: open %s: %v", path, err)
		return
	}
	defer db.Close()
	if err := db.VerifyJournal(); err != nil {
		t.Errorf("storetest: integrity check: journal: %v", err)
	}
	if err := db.Check(); err != nil {
		t.Errorf("storetest: integrity check: %v", err)
	}
}
