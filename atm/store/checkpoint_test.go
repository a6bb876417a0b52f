package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// wantJournalError expects a *JournalError with exactly seq and reason.
func wantJournalError(t *testing.T, what string, err error, seq uint64, reason string) {
	t.Helper()
	var je *JournalError
	if !errors.As(err, &je) || je.Seq != seq || je.Reason != reason {
		t.Fatalf("%s: %v; want the journal broken at seq %d: %s", what, err, seq, reason)
	}
}

// editEntry changes the text of entry seq and recomputes its hash, as a
// forger without the key would, leaving the chain link of the next entry
// broken only if that entry is checked.
func editEntry(t *testing.T, path string, seq uint64, rehash bool) {
	t.Helper()
	rawEdit(t, path, func(j, meta *bolt.Bucket) error {
		var e Entry
		if err := json.Unmarshal(j.Get(u64(seq)), &e); err != nil {
			return err
		}
		e.Text = "paid 0.00"
		if rehash {
			e.Hash = entryHash(&e)
		}
		v, _ := json.Marshal(&e)
		return j.Put(u64(seq), v)
	})
}

func openKeyed(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(path, Options{Now: newClock().Now, JournalAuth: testAuth(7)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func appendN(t *testing.T, db *DB, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		mustUpdate(t, db, func(tx *Tx) error {
			_, err := tx.AppendJournal(Entry{Kind: "NOTE", Text: fmt.Sprintf("more %d", i)})
			return err
		})
	}
}

// TestCheckpointVerifiesOnlyWhatFollows: after a checkpoint, start-up
// verification reads only the newer entries (an edited older entry goes
// unnoticed there, by design) while the full verification, plain or in
// chunks, still finds it; an edit after the checkpoint is found by both.
func TestCheckpointVerifiesOnlyWhatFollows(t *testing.T) {
	path := keyedJournalDB(t, 7, 50)
	db := openKeyed(t, path)
	head, err := db.VerifyJournalSince()
	if err != nil || head.Seq != 50 {
		t.Fatalf("VerifyJournalSince = %+v, %v", head, err)
	}
	if err := db.SetCheckpoint(head); err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 10)
	db.Close()

	editEntry(t, path, 5, true) // old entry, hash recomputed: only the chain shows it
	db = openKeyed(t, path)
	if head, err := db.VerifyJournalSince(); err != nil || head.Seq != 60 {
		t.Fatalf("incremental verification after an old edit = %+v, %v; want 60 and no error (entry 5 is before the checkpoint)", head, err)
	}
	wantJournalError(t, "full verification", db.VerifyJournal(), 6, "previous-hash link does not match the preceding entry")
	_, err = db.VerifyJournalChunked(context.Background(), 7, nil)
	wantJournalError(t, "chunked verification", err, 6, "previous-hash link does not match the preceding entry")
	db.Close()

	editEntry(t, path, 55, false) // after the checkpoint
	db = openKeyed(t, path)
	_, err = db.VerifyJournalSince()
	wantJournalError(t, "incremental verification after a new edit", err, 55, "hash mismatch (entry edited)")
}

// TestCheckpointTampering: the checkpoint's entry edited, or the
// checkpoint record moved or its MAC changed, fails every verification.
func TestCheckpointTampering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(t *testing.T, path string)
		seq    uint64
		reason string
	}{
		{"checkpoint entry edited", func(t *testing.T, path string) { editEntry(t, path, 20, true) },
			20, "the checkpoint's entry differs from the one verified (entry edited)"},
		{"checkpoint moved forward", func(t *testing.T, path string) {
			rawEdit(t, path, func(j, meta *bolt.Bucket) error {
				v := append([]byte(nil), meta.Get(keyJournalCheckpoint)...)
				copy(v, u64(30))
				return meta.Put(keyJournalCheckpoint, v)
			})
		}, 30, "journal checkpoint MAC does not verify (rewritten, or the wrong journal key)"},
		{"checkpoint MAC changed", func(t *testing.T, path string) {
			rawEdit(t, path, func(j, meta *bolt.Bucket) error {
				v := append([]byte(nil), meta.Get(keyJournalCheckpoint)...)
				v[len(v)-1] ^= 1
				return meta.Put(keyJournalCheckpoint, v)
			})
		}, 20, "journal checkpoint MAC does not verify (rewritten, or the wrong journal key)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := keyedJournalDB(t, 7, 30)
			db := openKeyed(t, path)
			if err := db.SetCheckpoint(Checkpoint{Seq: 20, Hash: entryAt(t, db, 20).Hash}); err != nil {
				t.Fatal(err)
			}
			db.Close()
			tc.edit(t, path)
			db = openKeyed(t, path)
			_, err := db.VerifyJournalSince()
			wantJournalError(t, "incremental", err, tc.seq, tc.reason)
			wantJournalError(t, "full", db.VerifyJournal(), tc.seq, tc.reason)
		})
	}
}

func entryAt(t *testing.T, db *DB, seq uint64) Entry {
	t.Helper()
	var out Entry
	err := db.View(func(tx *Tx) error {
		return tx.JournalRange(seq, func(e Entry) error {
			if e.Seq == seq {
				out = e
			}
			return nil
		})
	})
	if err != nil || out.Seq != seq {
		t.Fatalf("entry %d: %+v, %v", seq, out, err)
	}
	return out
}

// TestCheckpointRules: a checkpoint must name a stored entry with its
// hash, never moves back, and needs the journal key.
func TestCheckpointRules(t *testing.T) {
	path := keyedJournalDB(t, 7, 10)
	db := openKeyed(t, path)
	err := db.SetCheckpoint(Checkpoint{Seq: 5, Hash: GenesisHash})
	wantJournalError(t, "a wrong hash", err, 5, "checkpoint names an entry that is not stored with that hash")
	if err := db.SetCheckpoint(Checkpoint{Seq: 8, Hash: entryAt(t, db, 8).Hash}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetCheckpoint(Checkpoint{Seq: 3, Hash: entryAt(t, db, 3).Hash}); err != nil {
		t.Fatal(err)
	}
	var cp Checkpoint
	db.View(func(tx *Tx) error { cp, err = tx.checkpoint(); return err })
	if cp.Seq != 8 {
		t.Fatalf("the checkpoint moved back to %d", cp.Seq)
	}
	db.Close()
	plain, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.SetCheckpoint(cp); !errors.Is(err, ErrJournalKeyRequired) {
		t.Fatalf("SetCheckpoint without the key: %v", err)
	}
	// Without the key the whole chain is verified (the checkpoint cannot be trusted).
	if head, err := plain.VerifyJournalSince(); err != nil || head.Seq != 10 {
		t.Fatalf("VerifyJournalSince without the key = %+v, %v", head, err)
	}
}

// TestChunkedSeesAppendsMeanwhile: entries appended while a chunked
// verification pauses are verified too, up to the head.
func TestChunkedSeesAppendsMeanwhile(t *testing.T) {
	db := openKeyed(t, keyedJournalDB(t, 7, 20))
	var pauses []uint64
	head, err := db.VerifyJournalChunked(context.Background(), 8, func(seq uint64) error {
		pauses = append(pauses, seq)
		if seq == 8 {
			appendN(t, db, 3)
		}
		return nil
	})
	if err != nil || head.Seq != 23 || fmt.Sprint(pauses) != "[8 16]" {
		t.Fatalf("VerifyJournalChunked = %+v, %v, pauses %v; want 23, [8 16]", head, err, pauses)
	}
	stop := errors.New("stop")
	if _, err := db.VerifyJournalChunked(context.Background(), 8, func(uint64) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("a stopped verification: %v", err)
	}
}
