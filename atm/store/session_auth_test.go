package store

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"os"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestSessionRecordsAuthenticated: with a journal key every session record
// carries a MAC, sealed into its value (schema 3); a record edited in the
// file (the attack: a paid session turned "InDoubt" to be settled again),
// its MAC removed or altered, its seal damaged, or a record moved to
// another ID is refused on every read; without a key nothing is checked.
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
	// What the file holds: the sealed value, exactly, and nothing beside
	// the records in the sessions bucket.
	m := hmac.New(sha256.New, bytes.Repeat([]byte{7}, 32))
	m.Write([]byte("cardless session v1\x00aa\x00"))
	m.Write(paid)
	want := append(append([]byte{sealV1, 32}, m.Sum(nil)...), paid...)
	rawView(t, path, func(b *bolt.Bucket) {
		if got := b.Get([]byte("aa")); !bytes.Equal(got, want) {
			t.Fatalf("stored value %x, want %x", got, want)
		}
		if st := b.Stats(); st.KeyN != 2 || st.BucketN != 1 { // BucketN counts the sessions bucket itself
			t.Fatalf("sessions bucket holds %d keys and %d nested buckets, want the 2 records only", st.KeyN, st.BucketN-1)
		}
	})
	for _, attack := range []struct {
		name string
		edit func(b *bolt.Bucket) error
	}{
		{"state edited", func(b *bolt.Bucket) error {
			return b.Put([]byte("aa"), bytes.Replace(b.Get([]byte("aa")), []byte("Completed"), []byte("InDoubt  "), 1))
		}},
		{"MAC removed", func(b *bolt.Bucket) error { return b.Put([]byte("aa"), paid) }},
		{"MAC altered", func(b *bolt.Bucket) error {
			v := bytes.Clone(b.Get([]byte("aa")))
			v[2] ^= 1
			return b.Put([]byte("aa"), v)
		}},
		{"seal version changed", func(b *bolt.Bucket) error {
			v := bytes.Clone(b.Get([]byte("aa")))
			v[0] = 2
			return b.Put([]byte("aa"), v)
		}},
		{"seal truncated", func(b *bolt.Bucket) error { return b.Put([]byte("aa"), b.Get([]byte("aa"))[:20]) }},
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
			if _, err := db.VerifySessions(); !errors.Is(err, ErrSessionTampered) {
				t.Fatalf("VerifySessions %v: want ErrSessionTampered", err)
			}
		})
	}
}

// TestSessionsWithoutTheKey: a keyed store opened without the journal key
// (a tool) reads the records as they are, unsealed and unchecked, and
// refuses to write a record or the open-session index it cannot seal.
func TestSessionsWithoutTheKey(t *testing.T) {
	path := tempPath(t)
	db := openAt(t, path, Options{JournalAuth: testAuth(7)})
	mustUpdate(t, db, func(tx *Tx) error {
		if err := tx.IndexSessions([]string{"aa"}); err != nil {
			return err
		}
		return tx.PutSession("aa", []byte(`{"id":"aa"}`))
	})
	db.Close()
	before := fileDigest(t, path)
	db = openAt(t, path, Options{})
	defer db.Close()
	err := db.View(func(tx *Tx) error {
		v, err := tx.GetSession("aa")
		if err != nil || string(v) != `{"id":"aa"}` {
			t.Errorf("GetSession %q, %v", v, err)
		}
		ids, err := tx.OpenSessions()
		if err != nil || len(ids) != 1 || ids[0] != "aa" {
			t.Errorf("OpenSessions %q, %v", ids, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func(tx *Tx) error{
		"PutSession":    func(tx *Tx) error { return tx.PutSession("bb", []byte("{}")) },
		"MarkSession":   func(tx *Tx) error { return tx.MarkSession("bb", true) },
		"IndexSessions": func(tx *Tx) error { return tx.IndexSessions(nil) },
	} {
		if err := db.Update(write); !errors.Is(err, ErrJournalKeyRequired) {
			t.Errorf("%s without the key: %v, want ErrJournalKeyRequired", name, err)
		}
	}
	db.Close()
	if !bytes.Equal(before, fileDigest(t, path)) {
		t.Fatal("refused writes changed the file")
	}
}

// rawView shows fn the sessions bucket of the closed store at path.
func rawView(t *testing.T, path string, fn func(b *bolt.Bucket)) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	_ = bdb.View(func(tx *bolt.Tx) error { fn(tx.Bucket(bucketSessions)); return nil })
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
