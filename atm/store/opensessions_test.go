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
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("sessions")).Bucket([]byte("\x00open")).Delete([]byte("CC"))
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	db = open(indexKey{1})
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
