package store

import (
	"errors"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// sessionsDB returns a keyed store whose journal holds, in order, the
// entries of sessions A A B C C D E E, then B again and F F, with
// session C open, an advice of D pending and the checkpoint at the head,
// and the journal pruned through the second E (entry 8).
func sessionsDB(t *testing.T) *DB {
	t.Helper()
	db := openKeyed(t, tempPath(t))
	mustUpdate(t, db, func(tx *Tx) error { return tx.IndexSessions(nil) })
	for _, id := range []string{"A", "A", "B", "C", "C", "D", "E", "E", "B", "F", "F"} {
		mustUpdate(t, db, func(tx *Tx) error {
			if err := tx.PutSession(id, []byte(`{"id":"`+id+`"}`)); err != nil {
				return err
			}
			if err := tx.MarkSession(id, id == "C"); err != nil {
				return err
			}
			if id == "D" {
				if _, err := tx.Enqueue("advice", id+":advice", []byte("{}")); err != nil {
					return err
				}
			}
			_, err := tx.AppendJournal(Entry{Kind: "NOTE", SessionID: id})
			return err
		})
	}
	head, err := db.VerifyJournalSince()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetCheckpoint(head); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PruneJournal(8, 0); err != nil {
		t.Fatal(err)
	}
	return db
}

// sessionIDs returns the IDs of the session records in db.
func sessionIDs(t *testing.T, db *DB) []string {
	t.Helper()
	var ids []string
	if err := db.View(func(tx *Tx) error {
		return tx.ForEachSession(func(id string, _ []byte) error { ids = append(ids, id); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestPruneSessions: the records of the sessions whose entries all left
// the live journal go (A, E); a session with an entry still live (B),
// an open one (C) and one with a pending queue item (D) stay, as does
// everything newer (F). A second run removes nothing.
func TestPruneSessions(t *testing.T) {
	db := sessionsDB(t)
	n, err := db.PruneSessions(1) // a transaction per record
	if err != nil || n != 2 {
		t.Fatalf("PruneSessions: %d, %v; want 2", n, err)
	}
	if got, want := sessionIDs(t, db), []string{"B", "C", "D", "F"}; !slices.Equal(got, want) {
		t.Fatalf("sessions %q, want %q", got, want)
	}
	if err := db.View(func(tx *Tx) error { _, err := tx.GetSession("A"); return err }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session A: %v, want ErrNotFound", err)
	}
	if n, err := db.PruneSessions(0); err != nil || n != 0 {
		t.Fatalf("second PruneSessions: %d, %v", n, err)
	}
	if n, err := db.VerifySessions(); err != nil || n != 4 {
		t.Fatalf("VerifySessions: %d, %v", n, err)
	}
	// The open-session index is untouched and still verifies.
	if err := db.View(func(tx *Tx) error {
		open, err := tx.OpenSessions()
		if err == nil && !slices.Equal(open, []string{"C"}) {
			t.Errorf("open sessions %q", open)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPruneSessionsKeepsWhatDoesNotVerify: a record edited in the file is
// never removed, nor is anything in its transaction.
func TestPruneSessionsKeepsWhatDoesNotVerify(t *testing.T) {
	db := sessionsDB(t)
	path := db.Path()
	db.Close()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		v := slices.Clone(b.Get([]byte("E")))
		v[len(v)-2] ^= 1 // the record's last byte before the closing brace
		return b.Put([]byte("E"), v)
	}); err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	db = openKeyed(t, path)
	n, err := db.PruneSessions(0)
	if !errors.Is(err, ErrSessionTampered) || n != 0 {
		t.Fatalf("PruneSessions: %d, %v; want ErrSessionTampered", n, err)
	}
	for _, id := range []string{"A", "B", "C", "D", "F"} {
		if err := db.View(func(tx *Tx) error { _, err := tx.GetSession(id); return err }); err != nil {
			t.Fatalf("session %s after the refused pruning: %v", id, err)
		}
	}
	if err := db.View(func(tx *Tx) error { _, err := tx.GetSession("E"); return err }); !errors.Is(err, ErrSessionTampered) {
		t.Fatalf("session E: %v, want it kept as it is", err)
	}
}

// TestPruneSessionsNeedsTheKey: without the journal key nothing can be
// verified, so nothing is removed.
func TestPruneSessionsNeedsTheKey(t *testing.T) {
	db := sessionsDB(t)
	path := db.Path()
	db.Close()
	db = openAt(t, path, Options{Now: newClock().Now})
	if _, err := db.PruneSessions(0); !errors.Is(err, ErrJournalKeyRequired) {
		t.Fatalf("PruneSessions without the key: %v", err)
	}
}
