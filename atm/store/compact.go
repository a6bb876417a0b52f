package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// CompactSteps are the points of CompactFile at which its hook is called:
// after the compacted copy is written and synced, after it was checked,
// after it replaced the store, after the directory was synced.
var CompactSteps = []string{"copied", "checked", "renamed", "synced"}

// CompactFile rewrites the store at path into a new file holding only the
// live pages (bbolt's Compact), so the space of pruned journal entries and
// old records goes back to the disk, then swaps it in with one rename. It
// is a maintenance action: the appliance must be stopped (the store's
// lock is taken, ErrLocked-like failure otherwise). A crash at any step
// leaves either the old file or the complete new one at path; a leftover
// copy (path + ".compact") is removed by the next CompactFile. hook, when
// not nil, is called after each step in CompactSteps (crash tests stop the
// process there). It returns the sizes before and after.
func CompactFile(path string, hook func(step string)) (before, after int64, err error) {
	step := func(s string) {
		if hook != nil {
			hook(s)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact: %w", err)
	}
	if _, err := preflight(path, walkScope{}); err != nil {
		return 0, 0, err
	}
	if err := validate(path, DefaultTimeout, false, true); err != nil {
		return 0, 0, err
	}
	tmp := path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, fmt.Errorf("store: compact: remove the leftover %s: %w", tmp, err)
	}
	// The exclusive lock: nobody else has the store open while it is
	// copied and replaced.
	src, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: DefaultTimeout})
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact %s (is the appliance still running?): %w", path, err)
	}
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: DefaultTimeout})
	if err != nil {
		src.Close()
		return 0, 0, fmt.Errorf("store: compact: %w", err)
	}
	err = bolt.Compact(dst, src, 64<<20)
	// Closed before the rename (Windows cannot replace an open file): the
	// appliance is stopped for the maintenance, so nobody opens the old
	// file in between.
	src.Close()
	if err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("store: compact: %w", err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("store: compact: %w", err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("store: compact: %w", err)
	}
	step("copied")
	// The copy must be a sound store of ours before it replaces the
	// original.
	if _, err := preflight(tmp, walkScope{}); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("store: compact: the copy: %w", err)
	}
	if err := checkCopy(tmp); err != nil {
		os.Remove(tmp)
		return 0, 0, err
	}
	step("checked")
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("store: compact: %w", err)
	}
	step("renamed")
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // not supported on every platform; the rename stands
		_ = d.Close()
	}
	step("synced")
	nfi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	return fi.Size(), nfi.Size(), nil
}

// checkCopy opens the compacted copy read-only and runs bbolt's
// consistency check and our identity check on it.
func checkCopy(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: DefaultTimeout})
	if err != nil {
		return fmt.Errorf("store: compact: the copy: %w", err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("store: compact: the copy is inconsistent: %w", err)
		}
		return checkIdentity(path, tx)
	})
}
