package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// journalDB returns a closed store file holding n journal entries.
func journalDB(t *testing.T, n int) string {
	t.Helper()
	path := tempPath(t)
	db, err := Open(path, Options{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		mustUpdate(t, db, func(tx *Tx) error {
			_, err := tx.AppendJournal(Entry{Kind: "NOTE", SessionID: fmt.Sprintf("s%d", i),
				Text: fmt.Sprintf("entry %d", i), Data: map[string]string{"amount": fmt.Sprint(i * 100), "cur": "EUR"}})
			return err
		})
	}
	if err := db.VerifyJournal(); err != nil {
		t.Fatalf("fresh journal does not verify: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawEdit changes the file with plain bbolt, as an attacker or a bad tool would.
func rawEdit(t *testing.T, path string, fn func(j, meta *bolt.Bucket) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if err := bdb.Update(func(tx *bolt.Tx) error {
		return fn(tx.Bucket(bucketJournal), tx.Bucket(bucketMeta))
	}); err != nil {
		t.Fatal(err)
	}
}

func TestJournalAppendTailRange(t *testing.T) {
	path := journalDB(t, 5)
	db := openAt(t, path, Options{})
	_ = db.View(func(tx *Tx) error {
		tail, err := tx.JournalTail(2)
		if err != nil {
			t.Fatal(err)
		}
		if len(tail) != 2 || tail[0].Seq != 4 || tail[1].Seq != 5 {
			t.Fatalf("JournalTail(2) = %+v", tail)
		}
		if tail[1].PrevHash != tail[0].Hash || tail[1].Data["amount"] != "500" || tail[1].Text != "entry 5" {
			t.Errorf("tail entry wrong: %+v", tail[1])
		}
		if all, _ := tx.JournalTail(100); len(all) != 5 || all[0].PrevHash != GenesisHash {
			t.Errorf("JournalTail(100) = %d entries", len(all))
		}
		var seqs []uint64
		if err := tx.JournalRange(3, func(e Entry) error { seqs = append(seqs, e.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(seqs) != "[3 4 5]" {
			t.Errorf("JournalRange(3) = %v", seqs)
		}
		return nil
	})
	if err := db.Update(func(tx *Tx) error { _, err := tx.AppendJournal(Entry{}); return err }); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty kind: %v", err)
	}
}

func TestJournalVerifyDetectsTampering(t *testing.T) {
	edit := func(seq uint64, change func(e *Entry)) func(j, meta *bolt.Bucket) error {
		return func(j, meta *bolt.Bucket) error {
			var e Entry
			if err := json.Unmarshal(j.Get(u64(seq)), &e); err != nil {
				return err
			}
			change(&e)
			v, _ := json.Marshal(e)
			return j.Put(u64(seq), v)
		}
	}
	cases := []struct {
		name    string
		edit    func(j, meta *bolt.Bucket) error
		wantSeq uint64
	}{
		{"edited text", edit(3, func(e *Entry) { e.Text = "entry 3 (amount changed)" }), 3},
		{"edited data", edit(2, func(e *Entry) { e.Data["amount"] = "999999" }), 2},
		{"edited and rehashed", edit(3, func(e *Entry) { e.Text = "forged"; e.Hash = entryHash(e) }), 4},
		{"removed middle", func(j, _ *bolt.Bucket) error { return j.Delete(u64(3)) }, 3},
		{"removed first", func(j, _ *bolt.Bucket) error { return j.Delete(u64(1)) }, 1},
		{"removed last", func(j, _ *bolt.Bucket) error { return j.Delete(u64(5)) }, 5},
		{"removed last two", func(j, _ *bolt.Bucket) error {
			if err := j.Delete(u64(5)); err != nil {
				return err
			}
			return j.Delete(u64(4))
		}, 4},
		{"reordered", func(j, _ *bolt.Bucket) error {
			a, b := append([]byte(nil), j.Get(u64(2))...), append([]byte(nil), j.Get(u64(3))...)
			if err := j.Put(u64(2), b); err != nil {
				return err
			}
			return j.Put(u64(3), a)
		}, 2},
		{"appended without head", func(j, _ *bolt.Bucket) error {
			return j.Put(u64(6), j.Get(u64(5)))
		}, 6},
		{"head hash changed", func(_, meta *bolt.Bucket) error {
			return meta.Put(keyJournalHash, []byte(GenesisHash))
		}, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := journalDB(t, 5)
			rawEdit(t, path, tc.edit)
			db := openAt(t, path, Options{})
			err := db.VerifyJournal()
			if !errors.Is(err, ErrJournalBroken) {
				t.Fatalf("VerifyJournal = %v, want ErrJournalBroken", err)
			}
			var je *JournalError
			if !errors.As(err, &je) || je.Seq != tc.wantSeq {
				t.Fatalf("VerifyJournal = %v, want JournalError at seq %d", err, tc.wantSeq)
			}
			t.Logf("detected: %v", err)
		})
	}
}

func TestJournalEmptyVerifies(t *testing.T) {
	db := openAt(t, tempPath(t), Options{})
	if err := db.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
}
