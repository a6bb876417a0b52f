package store

import (
	"bytes"
	"context"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// prunedDB returns the path of a 20-entry store whose checkpoint is at 15
// and whose entries 1..10 were exported (the returned segment) and
// pruned.
func prunedDB(t *testing.T) (string, []byte) {
	t.Helper()
	path := keyedJournalDB(t, 7, 20)
	db, err := Open(path, Options{Now: newClock().Now, JournalAuth: testAuth(7)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.SetCheckpoint(Checkpoint{Seq: 15, Hash: entryAt(t, db, 15).Hash}); err != nil {
		t.Fatal(err)
	}
	var seg bytes.Buffer
	if _, _, err := db.ExportJournal(&seg, "ATM00001", 1, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PruneJournal(15, 3); err == nil || err.Error() != "store: cannot prune the journal through 15: only entries before the verified checkpoint (15) may go" {
		t.Fatalf("prune through the checkpoint: %v", err)
	}
	b, err := db.PruneJournal(10, 3) // four transactions
	if err != nil || b.Seq != 10 || b.Hash != entryAt(t, db, 11).PrevHash {
		t.Fatalf("prune: base %+v, %v", b, err)
	}
	return path, seg.Bytes()
}

func TestPrunedJournalVerifies(t *testing.T) {
	path, seg := prunedDB(t)
	db := openKeyed(t, path)
	err := db.View(func(tx *Tx) error {
		var seqs []uint64
		err := tx.JournalRange(0, func(e Entry) error { seqs = append(seqs, e.Seq); return nil })
		if len(seqs) != 10 || seqs[0] != 11 {
			t.Fatalf("live entries %v", seqs)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.VerifyJournal(); err != nil {
		t.Fatalf("VerifyJournal after pruning: %v", err)
	}
	if head, err := db.VerifyJournalChunked(context.Background(), 4, nil); err != nil || head.Seq != 20 {
		t.Fatalf("VerifyJournalChunked after pruning: %+v %v", head, err)
	}
	if head, err := db.VerifyJournalSince(); err != nil || head.Seq != 20 {
		t.Fatalf("VerifyJournalSince after pruning: %+v %v", head, err)
	}
	// The segment exported before the cut and one exported after it
	// verify as one chain.
	var seg2 bytes.Buffer
	if _, _, err := db.ExportJournal(&seg2, "ATM00001", 11, 0); err != nil {
		t.Fatal(err)
	}
	v := &SegmentVerifier{Auth: testAuth(7)}
	if err := verifyAll(v, seg, seg2.Bytes()); err != nil || v.Entries != 20 {
		t.Fatalf("segments across the cut: %v (%d entries)", err, v.Entries)
	}
	if _, _, err := db.ExportJournal(&bytes.Buffer{}, "ATM00001", 5, 0); err == nil || err.Error() != "store: journal entries up to 10 were moved out of the store (exported earlier)" {
		t.Fatalf("export of pruned entries: %v", err)
	}
}

func TestPrunedJournalTampering(t *testing.T) {
	t.Run("base record rewritten", func(t *testing.T) {
		path, _ := prunedDB(t)
		rawEdit(t, path, func(j, meta *bolt.Bucket) error {
			v := append([]byte(nil), meta.Get(keyJournalBase)...)
			v[7] = 9 // claims entries up to 9 were moved out
			return meta.Put(keyJournalBase, v)
		})
		db := openKeyed(t, path)
		wantJournalError(t, "VerifyJournal", db.VerifyJournal(), 9, "journal base MAC does not verify (rewritten, or the wrong journal key)")
	})
	t.Run("first kept entry edited", func(t *testing.T) {
		path, _ := prunedDB(t)
		editEntry(t, path, 11, true)
		db := openKeyed(t, path)
		wantJournalError(t, "VerifyJournal", db.VerifyJournal(), 12, "previous-hash link does not match the preceding entry")
	})
	t.Run("more entries deleted", func(t *testing.T) {
		path, _ := prunedDB(t)
		rawEdit(t, path, func(j, meta *bolt.Bucket) error { return j.Delete(u64(11)) })
		db := openKeyed(t, path)
		wantJournalError(t, "VerifyJournal", db.VerifyJournal(), 11, "entry missing (next stored entry is 12)")
	})
}
