package store_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cardless-atm/cardless/atm/store"
)

func Example() {
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	clock := func() time.Time { return time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC) }
	db, err := store.Open(filepath.Join(dir, "atm.db"), store.Options{Now: clock})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	// One state change = one transaction: session, journal, queue, counters.
	err = db.Update(func(tx *store.Tx) error {
		if err := tx.PutSession("s-1", []byte(`{"state":"dispensed"}`)); err != nil {
			return err
		}
		stan, err := tx.NextSTAN()
		if err != nil {
			return err
		}
		e, err := tx.AppendJournal(store.Entry{Kind: "CASH TAKEN", SessionID: "s-1", Text: "2 x 50.00 EUR"})
		if err != nil {
			return err
		}
		it, err := tx.Enqueue("advice", "s-1/advice", []byte("0220..."))
		if err != nil {
			return err
		}
		total, err := tx.AddDailyTotal("2025-03-01", 10000)
		if err != nil {
			return err
		}
		fmt.Println("stan", stan, "journal seq", e.Seq, "queue id", it.ID, "daily total", total)
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// Enqueueing the same idempotency key again returns the pending item.
	_ = db.Update(func(tx *store.Tx) error {
		it, err := tx.Enqueue("advice", "s-1/advice", []byte("0220..."))
		fmt.Println("same item:", it.ID, err)
		items, _ := tx.QueueItems()
		fmt.Println("pending:", len(items))
		return nil
	})

	fmt.Println("journal verifies:", db.VerifyJournal() == nil)
	// Output:
	// stan 000001 journal seq 1 queue id 1 daily total 10000
	// same item: 1 <nil>
	// pending: 1
	// journal verifies: true
}

// hmacKey authenticates the journal head with HMAC-SHA256. The appliance
// computes the same inside its security module (hsm.JournalKey).
type hmacKey []byte

func (k hmacKey) JournalMAC(data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, k)
	m.Write(data)
	return m.Sum(nil), nil
}

func ExampleOptions_journalAuth() {
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "atm.db")

	key := hmacKey("example journal key, 32 bytes!!")
	db, err := store.Open(path, store.Options{JournalAuth: key})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = db.Update(func(tx *store.Tx) error {
		_, err := tx.AppendJournal(store.Entry{Kind: "CASH TAKEN", Text: "2 x 50.00 EUR"})
		return err
	})
	fmt.Println("verifies with the key:", db.VerifyJournal())
	db.Close()

	// Someone holding another key (or none) cannot produce a valid head.
	db, err = store.Open(path, store.Options{JournalAuth: hmacKey("a different key, also 32 bytes!!")})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("with another key:", db.VerifyJournal())
	db.Close()
	// Output:
	// verifies with the key: <nil>
	// with another key: store: journal broken at seq 0: journal head MAC does not verify (journal or head rewritten, or the wrong journal key)
}
