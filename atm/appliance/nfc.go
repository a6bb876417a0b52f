package appliance

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/backoff"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/nfc"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/ui"
)

// noSessionNotice is how long the idle screen says that a tap needs a
// withdrawal on the screen first.
const noSessionNotice = 5 * time.Second

// tapRetry is the wait after the reader failed (atm/backoff): from 1 s,
// doubling with each consecutive failure, up to 30 s.
var tapRetry = backoff.Policy{Min: time.Second, Max: 30 * time.Second}

// tapper runs the contactless reader in its own goroutine: while the QR is
// shown, a phone held to the reader gets the session payload over NFC
// (docs/nfc.md). It only reads the core's view; the phone then sends the
// withdrawal request online as after a scan, and the core accepts only
// its own waiting session.
type tapper struct {
	r     nfc.Reader
	aid   []byte
	view  func() atm.View
	db    *store.DB
	clk   clock.Clock
	log   *slog.Logger
	state func(st ui.TapState, session string) // what the screen shows
	retry backoff.Backoff                      // after a reader failure
}

// run waits for a card, taps it, and waits for the next, until ctx is
// done. A reader that fails is tried again after the backoff (the QR
// code works meanwhile): every failure is logged; the first of a run of
// failures, and the first after the session waiting for the phone
// changed, is journaled and shown (on the QR screen of the waiting
// session, or for a few seconds on the idle screen).
func (t *tapper) run(ctx context.Context) error {
	failures := 0
	shownFor := "" // the session the current run of failures was shown for
	for {
		card, err := t.r.WaitCard(ctx)
		if ctx.Err() != nil {
			if card != nil {
				card.Close()
			}
			return nil
		}
		if err != nil {
			failures++
			wait := t.retry.Next()
			session := t.waiting()
			t.log.Error("contactless reader failed; the QR code still works", "err", err, "failures", failures, "retry_in", wait)
			if failures == 1 || session != shownFor {
				t.record(session, ui.TapFailed, err)
				shownFor = session
			}
			if !clock.Sleep(t.clk, wait, ctx.Done()) {
				return nil
			}
			continue
		}
		if failures > 0 {
			t.log.Info("contactless reader works again", "failures", failures)
			failures, shownFor = 0, ""
			t.retry.Reset()
		}
		t.tap(card)
	}
}

// waiting returns the ID of the session waiting for the phone ("" none).
func (t *tapper) waiting() string {
	if s := t.view().Session; s != nil && s.State == atm.StateAwaitingPhone {
		return s.ID
	}
	return ""
}

// tap hands card the waiting session, if any, and records the outcome.
func (t *tapper) tap(card nfc.Card) {
	defer card.Close()
	s := t.view().Session
	if s == nil || s.State != atm.StateAwaitingPhone {
		t.log.Warn("tap", "outcome", tapKinds[ui.TapNoSession])
		t.record("", ui.TapNoSession, nil)
		return
	}
	err := nfc.Tap(card, t.aid, s.QR)
	st := ui.TapDetected
	switch {
	case err == nil:
	case errors.Is(err, nfc.ErrRemoved):
		st = ui.TapRemoved
	case errors.Is(err, nfc.ErrNoApp):
		st = ui.TapNoApp
	case errors.Is(err, nfc.ErrRefused):
		st = ui.TapRefused
	default:
		st = ui.TapFailed
	}
	lvl := slog.LevelInfo
	if st != ui.TapDetected {
		lvl = slog.LevelWarn
	}
	t.log.Log(context.Background(), lvl, "tap", "outcome", tapKinds[st], "session", s.ID, "err", err)
	t.record(s.ID, st, err)
}

// tapKinds are the journal kinds of the tap outcomes.
var tapKinds = map[ui.TapState]string{
	ui.TapDetected: "NFC TAP", ui.TapNoApp: "NFC NO APP", ui.TapRefused: "NFC REFUSED",
	ui.TapRemoved: "NFC REMOVED", ui.TapFailed: "NFC READER FAILED", ui.TapNoSession: "NFC NO SESSION",
}

// record journals a tap's outcome (or the reader's failure) and shows it;
// the caller logs it.
func (t *tapper) record(session string, st ui.TapState, err error) {
	e := store.Entry{Kind: tapKinds[st], SessionID: session, Text: tapTexts[st]}
	if err != nil {
		e.Data = map[string]string{"error": err.Error()}
	}
	if jerr := t.db.UpdateLabeled("nfc", func(tx *store.Tx) error {
		_, err := tx.AppendJournal(e)
		return err
	}); jerr != nil {
		t.log.Error("a tap was not journaled", "kind", e.Kind, "err", jerr)
	}
	t.state(st, session)
}

var tapTexts = map[ui.TapState]string{
	ui.TapDetected:  "phone detected; the session was handed to it",
	ui.TapNoApp:     "the phone did not select the bank's app (no app with the AID, or no answer)",
	ui.TapRefused:   "the bank's app refused the session",
	ui.TapRemoved:   "the phone left the reader before the exchange finished",
	ui.TapFailed:    "the contactless reader failed",
	ui.TapNoSession: "a tap with no withdrawal waiting for a phone",
}

// tapNotice is the last tap's outcome the screen shows: for its session
// only, or (session "") on the idle screen for a few seconds.
type tapNotice struct {
	state   ui.TapState
	session string
	seq     int
}

// setTap shows st (called from the tapper's goroutine).
func (b *Backend) setTap(st ui.TapState, session string, clk clock.Clock) {
	b.mu.Lock()
	b.tap.seq++
	b.tap.state, b.tap.session = st, session
	seq := b.tap.seq
	b.mu.Unlock()
	if session == "" {
		clk.AfterFunc(noSessionNotice, func() {
			b.mu.Lock()
			cleared := b.tap.seq == seq
			if cleared {
				b.tap = tapNotice{seq: seq}
			}
			b.mu.Unlock()
			if cleared {
				b.notify()
			}
		})
	}
	b.notify()
}

// tapFor returns the tap state to show for session ("" idle).
func (b *Backend) tapFor(session string) ui.TapState {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tap.session != session {
		return ui.TapNone
	}
	if session == "" && b.tap.state != ui.TapNoSession && b.tap.state != ui.TapFailed {
		return ui.TapNone
	}
	return b.tap.state
}

// tapperWith returns the tapper of reader r: the configured AID (without
// an nfc section, for a reader set in Appliance.NFCReader, the
// development AID nfc.DefaultAID).
func (a *Appliance) tapperWith(r nfc.Reader) *tapper {
	aid := nfc.DefaultAID
	if a.Config.NFC != nil {
		aid = a.Config.NFC.AIDBytes()
	}
	return &tapper{r: r, aid: aid, view: a.Core.View, db: a.Store, clk: a.Clock,
		log:   a.Log.With("part", "nfc"),
		state: func(st ui.TapState, session string) { a.Backend.setTap(st, session, a.Clock) },
		retry: backoff.Backoff{Policy: tapRetry}}
}
