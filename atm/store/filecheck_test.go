package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/atm/store/storetest"
)

var fileCheckKey = hmacKey(bytes.Repeat([]byte{7}, 32))

// agedFile writes a closed keyed store of n journal entries (and as many
// session records) whose checkpoint is the head.
func agedFile(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "atm.db")
	db, err := store.Open(path, store.Options{JournalAuth: fileCheckKey})
	if err != nil {
		t.Fatal(err)
	}
	for w := 0; w < n; w += 500 {
		if err := db.Update(func(tx *store.Tx) error {
			for i := w + 1; i <= w+500 && i <= n; i++ {
				id := fmt.Sprintf("%032X", i)
				if err := tx.PutSession(id, []byte(`{"state":"Completed","amount":35000}`)); err != nil {
					return err
				}
				if _, err := tx.AppendJournal(store.Entry{Kind: "NOTE", SessionID: id, Text: "amount 350.00 CNY, customer *******0001"}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	head, err := db.VerifyJournalSince()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetCheckpoint(head); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func openDeferred(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, store.Options{JournalAuth: fileCheckKey, DeferFileCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// oldReads tries every way of reading journal entry 1, which an open with
// DeferFileCheck leaves to CheckFile, and returns their errors.
func oldReads(db *store.DB) []error {
	var errs []error
	errs = append(errs, db.View(func(tx *store.Tx) error {
		return tx.JournalRange(1, func(store.Entry) error { return nil })
	}))
	errs = append(errs, db.View(func(tx *store.Tx) error { _, err := tx.JournalTail(3000); return err }))
	errs = append(errs, db.View(func(tx *store.Tx) error {
		_, err := tx.FindJournal(store.JournalQuery{Session: "x"})
		return err
	}))
	errs = append(errs, db.VerifyJournal())
	_, err := db.VerifyJournalChunked(context.Background(), 100, nil)
	errs = append(errs, err)
	_, _, err = db.ExportJournal(io.Discard, "ATM00001", 1, 10)
	errs = append(errs, err)
	_, err = db.PruneJournal(10, 0)
	errs = append(errs, err)
	return errs
}

// TestDeferredOpenFindsDamageInTheBackground: a journal leaf before the
// checkpoint is damaged. A full Open refuses the file; an Open with
// DeferFileCheck does not read that page, so it opens, the start's
// verification passes and new entries can be appended, but nothing reads
// the old entries until CheckFile has run: before, ErrFileUnchecked;
// CheckFile finds the damage (ErrCorrupt, the page named), and from then
// on reading them fails with that error.
func TestDeferredOpenFindsDamageInTheBackground(t *testing.T) {
	path := agedFile(t, 3000)
	page := storetest.DamageJournalLeaf(t, path, 1)
	fault := fmt.Sprintf("bbolt structure damaged: page %d element 0: key/value out of bounds", page)

	_, err := store.Open(path, store.Options{JournalAuth: fileCheckKey})
	if want := "store: open " + path + ": store: database file is corrupt: " + fault + ": invalid database"; err == nil || err.Error() != want {
		t.Fatalf("full Open = %v\nwant %s", err, want)
	}

	db := openDeferred(t, path)
	if db.FileChecked() {
		t.Fatal("FileChecked before CheckFile")
	}
	if head, err := db.VerifyJournalSince(); err != nil || head.Seq != 3000 {
		t.Fatalf("start verification: %+v, %v", head, err)
	}
	tail, err := func() (tail []store.Entry, err error) {
		err = db.View(func(tx *store.Tx) error { tail, err = tx.JournalTail(12); return err })
		return
	}()
	if err != nil || len(tail) != 12 || tail[0].Seq != 2989 {
		t.Fatalf("supervisor's tail: %d entries, %v", len(tail), err)
	}
	unchecked := "store: journal entries before 2000: store: that part of the file has not been checked yet (the store is checked in the background after a start; try again shortly)"
	for i, err := range oldReads(db) {
		if !errors.Is(err, store.ErrFileUnchecked) || err.Error() != unchecked {
			t.Errorf("read %d before CheckFile: %v", i, err)
		}
	}

	err = db.CheckFile(context.Background(), 0, nil)
	checkErr := "store: check " + path + ": store: database file is corrupt: " + fault
	if !errors.Is(err, store.ErrCorrupt) || err.Error() != checkErr {
		t.Fatalf("CheckFile = %v\nwant %s", err, checkErr)
	}
	if db.FileChecked() {
		t.Fatal("FileChecked after a failed check")
	}
	for i, err := range oldReads(db) {
		if !errors.Is(err, store.ErrCorrupt) || err.Error() != "store: journal entries before 2000 cannot be read: "+checkErr {
			t.Errorf("read %d after CheckFile: %v", i, err)
		}
	}
	// The ATM keeps its journal: appends and the checks since the
	// checkpoint go on.
	if err := db.Update(func(tx *store.Tx) error {
		_, err := tx.AppendJournal(store.Entry{Kind: "ALARM RAISED", Text: "journal"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if head, err := db.VerifyJournalSince(); err != nil || head.Seq != 3001 {
		t.Fatalf("after the alarm: %+v, %v", head, err)
	}
}

// TestDeferredOpenSoundFile: on a sound file the old entries become
// readable once CheckFile has passed, and the whole chain verifies.
func TestDeferredOpenSoundFile(t *testing.T) {
	db := openDeferred(t, agedFile(t, 3000))
	if err := db.VerifyJournal(); !errors.Is(err, store.ErrFileUnchecked) {
		t.Fatalf("VerifyJournal before CheckFile = %v", err)
	}
	if err := db.CheckFile(context.Background(), 0, nil); err != nil {
		t.Fatal(err)
	}
	if !db.FileChecked() {
		t.Fatal("FileChecked false after a pass")
	}
	for i, err := range oldReads(db) {
		if err != nil {
			t.Errorf("read %d after CheckFile: %v", i, err)
		}
	}
	if err := db.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
}

// TestDeferredOpenReadsSmallFilesWhole: without a journal key, or with a
// journal shorter than OpenJournalTail, Open reads the whole file and the
// store counts as checked at once.
func TestDeferredOpenReadsSmallFilesWhole(t *testing.T) {
	path := agedFile(t, 600)
	for _, opts := range []store.Options{{DeferFileCheck: true}, {DeferFileCheck: true, JournalAuth: fileCheckKey}} {
		db, err := store.Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !db.FileChecked() {
			t.Errorf("keyed %v: not checked", opts.JournalAuth != nil)
		}
		if err := db.VerifyJournal(); err != nil {
			t.Error(err)
		}
		db.Close()
	}
}

// TestCheckFileBesideCommits: CheckFile pauses between chunks without a
// transaction open. A commit during a pause ends the snapshot; the walk
// starts over, and after three such restarts it runs in one transaction
// and passes. Without commits it passes in chunks.
func TestCheckFileBesideCommits(t *testing.T) {
	db := openDeferred(t, agedFile(t, 3000))
	pauses := 0
	commit := func() error {
		pauses++
		return db.Update(func(tx *store.Tx) error {
			_, err := tx.AppendJournal(store.Entry{Kind: "NOTE", Text: fmt.Sprint("during the check ", pauses)})
			return err
		})
	}
	if err := db.CheckFile(context.Background(), 50, commit); err != nil {
		t.Fatal(err)
	}
	if pauses != 3 || !db.FileChecked() {
		t.Fatalf("pauses %d, checked %v; want 3 (one per interrupted attempt), true", pauses, db.FileChecked())
	}
	if err := db.VerifyJournal(); err != nil {
		t.Fatal(err)
	}

	quiet := 0
	if err := db.CheckFile(context.Background(), 50, func() error { quiet++; return nil }); err != nil || quiet < 5 {
		t.Fatalf("chunked check without commits: %v after %d pauses", err, quiet)
	}
}

// TestCheckFileStopped: a check stopped by its context (or by an error
// from between) reports that error and changes nothing: the old entries
// stay unchecked, not damaged.
func TestCheckFileStopped(t *testing.T) {
	db := openDeferred(t, agedFile(t, 3000))
	ctx, cancel := context.WithCancel(context.Background())
	err := db.CheckFile(ctx, 20, func() error { cancel(); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CheckFile = %v, want context.Canceled", err)
	}
	stop := errors.New("shutting down")
	if err := db.CheckFile(context.Background(), 20, func() error { return stop }); err != stop {
		t.Fatalf("CheckFile = %v, want %v", err, stop)
	}
	if err := db.VerifyJournal(); !errors.Is(err, store.ErrFileUnchecked) {
		t.Fatalf("after stopped checks: %v", err)
	}
}
