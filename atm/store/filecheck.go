package store

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// OpenJournalTail is how many of the newest journal entries Open with
// Options.DeferFileCheck reads besides those from the checkpoint on: a
// start and the supervisor's screen read the journal's tail.
const OpenJournalTail = 1000

// checkFileAttempts: CheckFile restarts a walk that a commit interrupted
// (between two chunks) this many times, then walks in one transaction.
const checkFileAttempts = 3

// errSnapshotMoved: a commit happened while CheckFile's walk paused.
var errSnapshotMoved = errors.New("store: the file changed while it was checked")

// CheckFile checks the whole file with the page walk of a full Open, on a
// store in use: every page of a snapshot with bounds-checked plain reads
// (page numbers, types, element bounds, cycles, key order within pages and
// across them) and the snapshot's freelist against the pages in use (none
// both, none listed twice, none neither), which is what bbolt's Tx.Check
// checks; Tx.Check itself compares with the live freelist and cannot run
// beside writers. Writers are not blocked: the walk reads the pages of one
// committed state, which a read transaction keeps from being reused.
//
// With chunk > 0 the walk holds its read transaction for chunk pages at a
// time and calls between, with no transaction open, after each chunk (the
// appliance pauses there on its clock; an error from between stops the
// check). A commit in between ends that snapshot: the walk starts over, and
// after checkFileAttempts such restarts it runs in one read transaction.
// (A read transaction kept open only delays a commit that must grow the
// file's memory map, until it ends.)
//
// It returns nil when the file is sound: journal entries that Open left
// unchecked (Options.DeferFileCheck) can be read from then on. A damaged
// file gives an error wrapping ErrCorrupt, and those entries stay
// unreadable (with that error) until a later CheckFile passes. An error
// that says nothing about the file (ctx done, the store closed) changes
// nothing.
func (db *DB) CheckFile(ctx context.Context, chunk int, between func() error) error {
	f, err := os.Open(db.path)
	if err != nil {
		return fmt.Errorf("store: check %s: %w", db.path, err)
	}
	defer f.Close()
	for attempt := 0; ; attempt++ {
		c := chunk
		if attempt >= checkFileAttempts {
			c = 0
		}
		err = db.checkSnapshot(ctx, f, c, between)
		if !errors.Is(err, errSnapshotMoved) {
			break
		}
	}
	switch {
	case err == nil:
		db.fileMu.Lock()
		db.fileChecked, db.fileErr = true, nil
		db.fileMu.Unlock()
	case errors.Is(err, errStructure):
		err = fmt.Errorf("store: check %s: %w: %w", db.path, ErrCorrupt, err)
		db.fileMu.Lock()
		db.fileChecked, db.fileErr = false, err
		db.fileMu.Unlock()
	}
	return err
}

// checkSnapshot walks the committed state a read transaction sees.
func (db *DB) checkSnapshot(ctx context.Context, f *os.File, chunk int, between func() error) error {
	tx, err := db.bolt.Begin(false)
	if err != nil {
		return fmt.Errorf("store: check %s: %w", db.path, err)
	}
	defer func() {
		if tx != nil {
			_ = tx.Rollback()
		}
	}()
	txid := tx.ID()
	m, err := snapshotMeta(f, db.bolt.Info().PageSize, uint64(txid))
	if err != nil {
		return err
	}
	pages := 0
	before := func() error {
		pages++
		if pages%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if chunk <= 0 || pages%chunk != 0 {
			return nil
		}
		_ = tx.Rollback()
		tx = nil
		if between != nil {
			if err := between(); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if tx, err = db.bolt.Begin(false); err != nil {
			return fmt.Errorf("store: check %s: %w", db.path, err)
		}
		if tx.ID() != txid {
			return errSnapshotMoved
		}
		return nil
	}
	_, err = verifyStructure(f, m, walkScope{}, before)
	return err
}

// snapshotMeta reads the meta page of transaction txid from f (bbolt
// writes the meta of transaction n to page n%2). errSnapshotMoved: both
// meta pages were rewritten since the transaction began.
func snapshotMeta(f *os.File, pageSize int, txid uint64) (boltMeta, error) {
	buf := make([]byte, pageHeaderSize+metaSize)
	if _, err := f.ReadAt(buf, int64(txid%2)*int64(pageSize)); err != nil {
		return boltMeta{}, fmt.Errorf("%w: meta page %d unreadable: %v", errStructure, txid%2, err)
	}
	m, err := parseMeta(buf)
	if err != nil {
		return boltMeta{}, fmt.Errorf("%w: meta page %d: %v", errStructure, txid%2, err)
	}
	if m.txid != txid {
		return boltMeta{}, errSnapshotMoved
	}
	st, err := f.Stat()
	if err != nil {
		return boltMeta{}, err
	}
	if err := checkMetaSize(m, st.Size()); err != nil {
		return boltMeta{}, fmt.Errorf("%w: %v", errStructure, err)
	}
	return m, nil
}

// FileChecked reports whether the whole file has passed its check: at
// Open, or (Options.DeferFileCheck) by the last CheckFile.
func (db *DB) FileChecked() bool {
	db.fileMu.Lock()
	defer db.fileMu.Unlock()
	return db.fileChecked
}

// journalReadable says whether journal entry seq may be read: always when
// Open read its pages or the whole file passed its check; otherwise
// ErrFileUnchecked, or the check's failure (ErrCorrupt).
func (db *DB) journalReadable(seq uint64) error {
	if seq >= db.journalFrom {
		return nil
	}
	db.fileMu.Lock()
	ok, ferr := db.fileChecked, db.fileErr
	db.fileMu.Unlock()
	switch {
	case ok:
		return nil
	case ferr != nil:
		return fmt.Errorf("store: journal entries before %d cannot be read: %w", db.journalFrom, ferr)
	}
	return fmt.Errorf("store: journal entries before %d: %w (the store is checked in the background after a start; try again shortly)", db.journalFrom, ErrFileUnchecked)
}
