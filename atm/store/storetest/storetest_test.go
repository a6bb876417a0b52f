package storetest_test

import (
	"testing"

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
