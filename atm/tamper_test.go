package atm_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/store"
)

type journalKey []byte

func (k journalKey) JournalMAC(data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, k)
	m.Write(data)
	return m.Sum(nil), nil
}

// tamperedStart runs a withdrawal (paid, or left waiting for the phone
// when pay is false) on a store with a journal key, stops, lets edit
// change atm.db with the ATM stopped, and starts a new core on it. It
// returns the new core's Run outcome (nil: still running after the
// watchdog) and the store.
func tamperedStart(t *testing.T, pay bool, edit func(tx *bolt.Tx, id string) error) (error, *atm.ATM, *store.DB) {
	t.Helper()
	fake := clock.NewFake(defaultStart)
	r := newRigOn(t, dispensersim.Faults{}, fake, fake)
	stopRig(r)
	opts := store.Options{Now: fake.Now, JournalAuth: journalKey(bytes.Repeat([]byte{7}, 32))}
	path := t.TempDir() + "/atm.db"
	db, err := store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.core.Config()
	cfg.Store, cfg.Dispenser = db, r.sim
	core, err := atm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	s := sessionOn(t, core, 20000)
	if pay {
		if res := core.HandleCommand(context.Background(), cmdFor(s, "000001")); res.ResponseCode != "00" {
			t.Fatalf("withdrawal %+v", res)
		}
	}
	cancel()
	<-done
	db.Close()

	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error { return edit(tx, s.ID) })
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}

	db, err = store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg.Store = db
	core, err = atm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- core.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-runErr })
	select {
	case err := <-runErr:
		runErr <- err // for the cleanup
		return err, core, db
	case <-time.After(2 * time.Second): // a watchdog: a refused start ends at once
		return nil, core, db
	}
}

// TestEditedSessionFoundByTheFullCheck is the insider's attack: with the
// ATM stopped, a paid session's state is changed to InDoubt in atm.db
// (same length), so that an operator would be offered to settle it "paid
// 0" and the customer credited for cash taken. The start reads only the
// open sessions (constant time however many the terminal had), so it
// goes on; the edited session is not offered for settlement (the
// authenticated open-session index says it is finished); and the full
// verification (the appliance runs it in the background, with an ALARM)
// finds the record that does not verify.
func TestEditedSessionFoundByTheFullCheck(t *testing.T) {
	err, core, db := tamperedStart(t, true, func(tx *bolt.Tx, id string) error {
		// The record's bytes inside its stored value (schema 3: the MAC
		// sealed before them, kept as it was).
		b := tx.Bucket([]byte("sessions"))
		v := b.Get([]byte(id))
		if !bytes.Contains(v, []byte(`"state":"Completed"`)) {
			return errors.New("paid session not found")
		}
		return b.Put([]byte(id), bytes.Replace(v, []byte(`"state":"Completed"`), []byte(`"state":"InDoubt"  `), 1))
	})
	if err != nil {
		t.Fatalf("Run: %v; the start reads only the open sessions", err)
	}
	if list, err := core.InDoubt(); err != nil || len(list) != 0 {
		t.Fatalf("in doubt: %v, %v; the edited session must not be offered", list, err)
	}
	if _, err := db.VerifySessions(); !errors.Is(err, store.ErrSessionTampered) {
		t.Fatalf("VerifySessions: %v, want ErrSessionTampered", err)
	}
}

// TestHiddenOpenSessionStopsTheStart: deleting a session in flight from
// the open-session index (so that recovery would never settle it) breaks
// the index's MAC, and the start refuses the store.
func TestHiddenOpenSessionStopsTheStart(t *testing.T) {
	err, _, _ := tamperedStart(t, false, func(tx *bolt.Tx, id string) error {
		// The store's schema 3 keeps the index in a top-level bucket.
		ix := tx.Bucket([]byte("open_sessions"))
		if ix == nil || ix.Get([]byte(id)) == nil {
			return errors.New("the waiting session is not in the open-session index")
		}
		return ix.Delete([]byte(id))
	})
	if !errors.Is(err, store.ErrSessionTampered) {
		t.Fatalf("Run: %v, want ErrSessionTampered", err)
	}
}
