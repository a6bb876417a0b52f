//go:build linux && cgo

package appliance_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/nfc"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/internal/pcscdtest"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
	"github.com/cardless-atm/cardless/ui"
)

// TestE2ETapPaysOut pays a withdrawal out through a tap: a real pcscd with
// a vpcd virtual reader, the appliance's PC/SC reader, and the phone
// simulator's app as the card. Before that, a tap with no session and a
// tap of a phone without the bank's app are refused and journaled.
func TestE2ETapPaysOut(t *testing.T) {
	if testing.Short() {
		t.Skip("pcscd")
	}
	d := pcscdtest.Start(t)
	s := startSystem(t, func(cfg *appliance.Config) {
		cfg.NFC = &appliance.NFC{Reader: "Virtual PCD", AID: "F0434C57310001"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// No session on the screen: the phone gets nothing.
	if _, err := phonesim.Tap(ctx, d.VPCDAddr, nfc.DefaultAID, 3*time.Second); !errors.Is(err, phonesim.ErrNoTap) {
		t.Fatalf("tap without a session: %v", err)
	}
	s.waitJournal("NFC NO SESSION", "")

	qr := s.qr(30000)
	sess := s.app.Core.View().Session
	// A phone without the bank's app (another AID) is refused.
	if _, err := phonesim.Tap(ctx, d.VPCDAddr, []byte{0xA0, 0, 0, 0, 3, 0x10, 0x10}, 3*time.Second); !errors.Is(err, phonesim.ErrNoTap) {
		t.Fatalf("tap of another app: %v", err)
	}
	s.waitJournal("NFC NO APP", sess.ID)
	if got := s.app.Backend.Snapshot(); got.Tap != ui.TapNoApp || !got.Contactless || got.Phase != ui.AwaitingPhone {
		t.Fatalf("screen after a wrong app: tap %v contactless %v phase %v", got.Tap, got.Contactless, got.Phase)
	}

	payload, err := phonesim.Tap(ctx, d.VPCDAddr, nfc.DefaultAID, 20*time.Second)
	if err != nil {
		t.Fatalf("tap: %v\npcscd:\n%s", err, d.Log())
	}
	if payload != qr {
		t.Fatalf("the phone got %q, the screen shows %q", payload, qr)
	}
	s.waitJournal("NFC TAP", sess.ID)
	if got := s.app.Backend.Snapshot(); got.Tap != ui.TapDetected {
		t.Fatalf("screen after the tap: %v", got.Tap)
	}
	before := s.balance(zhang)
	out := s.withdraw(payload, zhang, "123456")
	if out.ResponseCode != "00" || !out.PaidInFull() || out.Dispensed != 30000 {
		t.Fatalf("outcome %+v", out)
	}
	s.settled()
	if got := s.balance(zhang); got != before-30000 {
		t.Fatalf("balance %d, want %d", got, before-30000)
	}
	if v := s.app.Core.View(); v.Session.ID != sess.ID || v.Session.State != atm.StateCompleted || v.Session.Paid != 30000 {
		t.Fatalf("session %+v", v.Session)
	}
}

// waitJournal waits until the journal holds an entry of kind for session.
func (s *system) waitJournal(kind, session string) {
	s.t.Helper()
	for range 200 {
		found := false
		s.app.Store.View(func(tx *store.Tx) error {
			return tx.JournalRange(0, func(e store.Entry) error {
				found = found || e.Kind == kind && e.SessionID == session
				return nil
			})
		})
		if found {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("journal has no %q entry for session %q", kind, session)
}
