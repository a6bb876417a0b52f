package appliance_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/nfc"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/ui"
)

// tapEntry is a journal entry of the tap: its kind, session and error.
type tapEntry struct{ kind, session, err string }

// tapEntries returns the journal's NFC entries in order.
func (s *system) tapEntries() []tapEntry {
	s.t.Helper()
	var got []tapEntry
	err := s.app.Store.View(func(tx *store.Tx) error {
		return tx.JournalRange(0, func(e store.Entry) error {
			if strings.HasPrefix(e.Kind, "NFC ") {
				got = append(got, tapEntry{e.Kind, e.SessionID, e.Data["error"]})
			}
			return nil
		})
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return got
}

// TestTapOutcomes drives the appliance's reader goroutine with a fake
// reader and fake phones, against the real core, store, host and proxy:
// every outcome of a tap is journaled once with its session and error, and
// the screen says it; a failing reader is tried again; a good tap then
// pays out.
func TestTapOutcomes(t *testing.T) {
	r := nfc.NewFakeReader()
	s := newSystem(t, systemOptions{logLevel: slog.LevelDebug, wire: func(a *appliance.Appliance, _ *slog.Logger) { a.NFCReader = r }})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	calls := 1
	// tap holds a phone following script to the reader and waits until
	// the appliance is done with it (it waits for the next card).
	tap := func(script ...nfc.Exchange) {
		t.Helper()
		if err := r.Waiting(ctx, calls); err != nil {
			t.Fatal(err)
		}
		card := nfc.NewFakeCard(script...)
		if err := r.Give(ctx, card); err != nil {
			t.Fatal(err)
		}
		calls++
		if err := r.Waiting(ctx, calls); err != nil {
			t.Fatal(err)
		}
		if err := card.Check(); err != nil || !card.Closed() {
			t.Fatalf("phone: %v; connection closed: %v", err, card.Closed())
		}
	}
	screen := func(what string, phase ui.Phase, tap ui.TapState) {
		t.Helper()
		if got := s.app.Backend.Snapshot(); got.Phase != phase || got.Tap != tap || !got.Contactless {
			t.Fatalf("%s: screen %v tap %v contactless %v; want %v %v", what, got.Phase, got.Tap, got.Contactless, phase, tap)
		}
	}
	var want []tapEntry
	journal := func(what string, e tapEntry) {
		t.Helper()
		want = append(want, e)
		if got := s.tapEntries(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: journal\n%q\nwant\n%q", what, got, want)
		}
	}

	// No withdrawal on the screen: the phone gets nothing (no APDU).
	tap()
	screen("no session", ui.Idle, ui.TapNoSession)
	journal("no session", tapEntry{"NFC NO SESSION", "", ""})

	qr := s.qr(30000)
	id := s.app.Core.View().Session.ID
	sel, err := nfc.SelectAPDU(nfc.DefaultAID)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := nfc.SessionAPDU(qr)
	if err != nil {
		t.Fatal(err)
	}
	ok := []byte{0x90, 0x00}

	tap(nfc.Exchange{Command: sel, Response: []byte{0x6A, 0x82}}) // another app, or no app with the AID
	screen("wrong AID", ui.AwaitingPhone, ui.TapNoApp)
	journal("wrong AID", tapEntry{"NFC NO APP", id, "SELECT answered 6A82: nfc: the phone has no app with the AID"})

	tap(nfc.Exchange{Command: sel, Err: errors.New("no answer from the card")})
	screen("SELECT unanswered", ui.AwaitingPhone, ui.TapNoApp)
	journal("SELECT unanswered", tapEntry{"NFC NO APP", id, "SELECT: nfc: the phone has no app with the AID: no answer from the card"})

	tap(nfc.Exchange{Command: sel, Response: ok}, nfc.Exchange{Command: sess, Response: []byte{0x6A, 0x80}})
	screen("refused", ui.AwaitingPhone, ui.TapRefused)
	journal("refused", tapEntry{"NFC REFUSED", id, "SESSION answered 6A80: nfc: the app refused the session"})

	tap(nfc.Exchange{Command: sel, Response: ok}, nfc.Exchange{Command: sess, Err: fmt.Errorf("%w: the field is empty", nfc.ErrRemoved)})
	screen("removed", ui.AwaitingPhone, ui.TapRemoved)
	journal("removed", tapEntry{"NFC REMOVED", id, "SESSION: nfc: the card was removed: the field is empty"})

	// The reader fails while the QR is shown: its screen says so, and the
	// reader is tried again (after the backoff, 0.5-1 s on the real clock).
	if err := r.Waiting(ctx, calls); err != nil {
		t.Fatal(err)
	}
	if err := r.Fail(ctx, errors.New("pcsc: the service is gone")); err != nil {
		t.Fatal(err)
	}
	calls++
	if err := r.Waiting(ctx, calls); err != nil {
		t.Fatalf("the reader was not tried again: %v", err)
	}
	screen("reader failed", ui.AwaitingPhone, ui.TapFailed)
	journal("reader failed", tapEntry{"NFC READER FAILED", id, "pcsc: the service is gone"})

	tap(nfc.Exchange{Command: sel, Response: ok}, nfc.Exchange{Command: sess, Response: ok})
	screen("detected", ui.AwaitingPhone, ui.TapDetected)
	journal("detected", tapEntry{"NFC TAP", id, ""})

	before := s.balance(zhang)
	out := s.withdraw(qr, zhang, "123456")
	if out.ResponseCode != "00" || !out.PaidInFull() || out.Dispensed != 30000 {
		t.Fatalf("outcome %+v", out)
	}
	s.settled()
	if got := s.balance(zhang); got != before-30000 {
		t.Fatalf("balance %d, want %d", got, before-30000)
	}
	if v := s.app.Core.View(); v.Session.ID != id || v.Session.State != atm.StateCompleted || v.Session.Paid != 30000 {
		t.Fatalf("session %+v", v.Session)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
}
