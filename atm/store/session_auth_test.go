package store

import (
	"bytes"
	"errors"
	"os"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestSessionRecordsAuthenticated: with a journal key every session record
// carries a MAC; a record edited in the file (the attack: a paid session
// turned "InDoubt" to be settled again), a MAC removed, or a record moved
// to another ID is refused on every read; without a key nothing is checked.
func TestSessionRecordsAuthenticated(t *testing.T) {
	path := tempPath(t)
	opts := Options{Now: newClock().Now, JournalAuth: testAuth(7)}
	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	paid := []byte(`{"id":"aa","state":"Completed","paid":20000}`)
	mustUpdate(t, db, func(tx *Tx) error {
		if err := tx.PutSession("aa", paid); err != nil {
			return err
		}
		return tx.PutSession("bb", []byte(`{"id":"bb","state":"Expired"}`))
	})
	read := func(db *DB) (getErr, eachErr error, ids []string) {
		_ = db.View(func(tx *Tx) error {
			_, getErr = tx.GetSession("aa")
			eachErr = tx.ForEachSession(func(id string, _ []byte) error { ids = append(ids, id); return nil })
			return nil
		})
		return
	}
	if g, e, ids := read(db); g != nil || e != nil || len(ids) != 2 || ids[0] != "aa" || ids[1] != "bb" {
		t.Fatalf("untouched: %v %v %q", g, e, ids)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, attack := range []struct {
		name string
		edit func(b *bolt.Bucket) error
	}{
		{"state edited", func(b *bolt.Bucket) error {
			return b.Put([]byte("aa"), bytes.Replace(paid, []byte("Completed"), []byte("InDoubt  "), 1))
		}},
		{"MAC removed", func(b *bolt.Bucket) error { return b.Bucket(sessionMACs).Delete([]byte("aa")) }},
		{"record swapped with another's", func(b *bolt.Bucket) error { return b.Put([]byte("aa"), b.Get([]byte("bb"))) }},
	} {
		t.Run(attack.name, func(t *testing.T) {
			p := tempPath(t)
			copyFile(t, path, p)
			bdb, err := bolt.Open(p, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := bdb.Update(func(tx *bolt.Tx) error { return attack.edit(tx.Bucket(bucketSessions)) }); err != nil {
				t.Fatal(err)
			}
			bdb.Close()
			db, err := Open(p, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if g, e, _ := read(db); !errors.Is(g, ErrSessionTampered) || !errors.Is(e, ErrSessionTampered) {
				t.Fatalf("GetSession %v, ForEachSession %v: want ErrSessionTampered", g, e)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
