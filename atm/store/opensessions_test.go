package store_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/cardless-atm/cardless/atm/store"
)

// TestOpenSessionIndex: a store without the index says so; once built it
// follows MarkSession exactly, survives a reopen, and a MAC over it makes
// an edit that hides an open session fail.
func TestOpenSessionIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "atm.db")
	open := func(a indexKey) *store.DB {
		t.Helper()
		db, err := store.Open(path, store.Options{JournalAuth: a})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open(indexKey{1})
	defer func() { db.Close() }()
	read := func() ([]string, error) {
		var ids []string
		err := db.View(func(tx *store.Tx) (err error) { ids, err = tx.OpenSessions(); return err })
		return ids, err
	}
	if _, err := read(); !errors.Is(err, store.ErrNoSessionIndex) {
		t.Fatalf("a store without the index: %v, want ErrNoSessionIndex", err)
	}
	update := func(f func(tx *store.Tx) error) {
		t.Helper()
		if err := db.Update(f); err != nil {
			t.Fatal(err)
		}
	}
	// Without an index, marking does nothing (the scan builds it).
	update(func(tx *store.Tx) error { return tx.MarkSession("AA", true) })
	if _, err := read(); !errors.Is(err, store.ErrNoSessionIndex) {
		t.Fatalf("MarkSession created a partial index: %v", err)
	}
	update(func(tx *store.Tx) error { return tx.IndexSessions([]string{"CC", "AA"}) })
	update(func(tx *store.Tx) error {
		for _, m := range []struct {
			id   string
			open bool
		}{{"BB", true}, {"AA", false}, {"DD", false}, {"BB", true}} {
			if err := tx.MarkSession(m.id, m.open); err != nil {
				return err
			}
		}
		return nil
	})
	if ids, err := read(); err != nil || !slices.Equal(ids, []string{"BB", "CC"}) {
		t.Fatalf("index %q, %v; want [BB CC]", ids, err)
	}
	if err := db.Update(func(tx *store.Tx) error { return tx.MarkSession("\x00open", true) }); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("marking the index's own name: %v", err)
	}
	if err := db.Update(func(tx *store.Tx) error { return tx.PutSession("\x00open", []byte("{}")) }); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a session named like the index: %v", err)
	}
	// After a reopen, the same index.
	db.Close()
	db = open(indexKey{1})
	if ids, err := read(); err != nil || !slices.Equal(ids, []string{"BB", "CC"}) {
		t.Fatalf("index after a reopen %q, %v", ids, err)
	}
	// The index as one without the key would change it: hiding CC.
	db.Close()
	edit := func(f func(ix *bolt.Bucket) error) {
		t.Helper()
		bdb, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer bdb.Close()
		if err := bdb.Update(func(tx *bolt.Tx) error {
			// Schema 3: the top-level bucket, beside the sessions.
			ix := tx.Bucket([]byte("open_sessions"))
			if ix == nil || tx.Bucket([]byte("sessions")).Bucket([]byte("\x00open")) != nil {
				return errors.New("the index is not (only) in the top-level bucket open_sessions")
			}
			return f(ix)
		}); err != nil {
			t.Fatal(err)
		}
	}
	var sealed []byte
	edit(func(ix *bolt.Bucket) error {
		sealed = bytes.Clone(ix.Get([]byte("\x00mac")))
		return ix.Delete([]byte("CC"))
	})
	db = open(indexKey{1})
	if _, err := read(); !errors.Is(err, store.ErrSessionTampered) {
		t.Fatalf("an open session deleted from the index: %v, want ErrSessionTampered", err)
	}
	if _, err := db.VerifySessions(); !errors.Is(err, store.ErrSessionTampered) {
		t.Fatalf("VerifySessions: %v, want ErrSessionTampered", err)
	}
	// Put back, the index verifies again: the MAC is exactly over the IDs.
	db.Close()
	edit(func(ix *bolt.Bucket) error { return ix.Put([]byte("CC"), []byte{}) })
	db = open(indexKey{1})
	if ids, err := read(); err != nil || !slices.Equal(ids, []string{"BB", "CC"}) {
		t.Fatalf("index restored: %q, %v", ids, err)
	}
	m := hmac.New(sha256.New, bytes.Repeat([]byte{1}, 32))
	m.Write([]byte("cardless open sessions v1\x00BB\x00CC\x00"))
	if !bytes.Equal(sealed, m.Sum(nil)) {
		t.Fatalf("index MAC %x, want the HMAC of its IDs", sealed)
	}
	// Without its MAC, or under another key: refused.
	db.Close()
	edit(func(ix *bolt.Bucket) error { return ix.Delete([]byte("\x00mac")) })
	db = open(indexKey{1})
	if _, err := read(); !errors.Is(err, store.ErrSessionTampered) {
		t.Fatalf("an index without its MAC: %v, want ErrSessionTampered", err)
	}
	db.Close()
	edit(func(ix *bolt.Bucket) error { return ix.Put([]byte("\x00mac"), sealed) })
	db = open(indexKey{2})
	if _, err := read(); !errors.Is(err, store.ErrSessionTampered) {
		t.Fatalf("an index sealed under another key: %v, want ErrSessionTampered", err)
	}
}

// indexKey is an HMAC-SHA256 journal key made of one repeated byte.
type indexKey [1]byte

func (k indexKey) JournalMAC(data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, bytes.Repeat(k[:], 32))
	m.Write(data)
	return m.Sum(nil), nil
}
