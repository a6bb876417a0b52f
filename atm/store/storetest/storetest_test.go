package storetest_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/atm/store/storetest"
)

func TestOpen(t *testing.T) {
	db := storetest.Open(t)
	if err := db.Update(func(tx *store.Tx) error { return tx.PutSession("s", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	other := storetest.Open(t)
	if other.Path() == db.Path() {
		t.Fatal("two stores share a file")
	}
	if err := other.View(func(tx *store.Tx) error { _, err := tx.GetSession("s"); return err }); err == nil {
		t.Fatal("fresh store already holds a session")
	}
}

// recorder is a testing.TB that records Errorf instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// The integrity check at cleanup passes an untouched store and finds an
// edited journal entry.
func TestCheckFindsEditedJournal(t *testing.T) {
	db := storetest.Open(t, storetest.NoIntegrityCheck())
	for _, text := range []string{"first", "second"} {
		if err := db.Update(func(tx *store.Tx) error {
			_, err := tx.AppendJournal(store.Entry{Kind: "NOTE", Text: text})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	storetest.Check(r, path, store.Options{})
	if len(r.errs) != 0 {
		t.Fatalf("untouched store: %q", r.errs)
	}

	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("journal"))
		k, v := b.Cursor().First()
		if k == nil || !bytes.Contains(v, []byte(`"first"`)) {
			return errors.New("first journal entry not found")
		}
		return b.Put(k, bytes.Replace(v, []byte(`"first"`), []byte(`"forged"`), 1))
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	storetest.Check(r, path, store.Options{})
	if len(r.errs) != 1 || !strings.HasPrefix(r.errs[0], "storetest: integrity check: journal: ") {
		t.Fatalf("edited journal: %q, want one journal error", r.errs)
	}
}
