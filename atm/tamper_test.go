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

// TestEditedSessionStopsTheStart is the insider's attack: with the ATM
// stopped, a paid session's state is changed to InDoubt in atm.db (same
// length), so that an operator would be offered to settle it "paid 0" and
// the customer credited for cash taken. The next start refuses the store.
func TestEditedSessionStopsTheStart(t *testing.T) {
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
	if res := core.HandleCommand(context.Background(), cmdFor(s, "000001")); res.ResponseCode != "00" {
		t.Fatalf("withdrawal %+v", res)
	}
	cancel()
	<-done
	db.Close()

	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("sessions"))
		v := b.Get([]byte(s.ID))
		if !bytes.Contains(v, []byte(`"state":"Completed"`)) {
			return errors.New("paid session not found")
		}
		return b.Put([]byte(s.ID), bytes.Replace(v, []byte(`"state":"Completed"`), []byte(`"state":"InDoubt"  `), 1))
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}

	db, err = store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg.Store = db
	core, err = atm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- core.Run(context.Background()) }()
	select {
	case err := <-runErr:
		if !errors.Is(err, store.ErrSessionTampered) {
			t.Fatalf("Run: %v, want ErrSessionTampered", err)
		}
	case <-time.After(10 * time.Second): // a watchdog, not a wait
		t.Fatal("the ATM started on an edited store")
	}
}
