package appliance

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/backoff"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/nfc"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/ui"
)

// nfcEntries returns the journal's NFC entries as kind, session and error.
func nfcEntries(t *testing.T, db *store.DB) [][3]string {
	t.Helper()
	var got [][3]string
	err := db.View(func(tx *store.Tx) error {
		return tx.JournalRange(0, func(e store.Entry) error {
			if strings.HasPrefix(e.Kind, "NFC ") {
				if e.Text != tapTexts[tapStateOf(e.Kind)] {
					t.Errorf("entry %d %s: text %q", e.Seq, e.Kind, e.Text)
				}
				got = append(got, [3]string{e.Kind, e.SessionID, e.Data["error"]})
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func tapStateOf(kind string) ui.TapState {
	for st, k := range tapKinds {
		if k == kind {
			return st
		}
	}
	return ui.TapNone
}

// TestTapperRetriesAfterReaderFailure: a failing reader is tried again
// after the backoff on the appliance's clock (1 s, 2 s, then the 4 s cap
// here), every failure logged; the first failure of a run is journaled
// and shown on the idle screen, and again once a session waits for the
// phone (on its QR screen); a card after the failures is tapped and the
// backoff starts again from its minimum.
func TestTapperRetriesAfterReaderFailure(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	db := journalStore(t, 0, 0, 0)
	var logs syncBuffer
	var mu sync.Mutex
	var session *atm.Session
	b := &Backend{}
	r := nfc.NewFakeReader()
	tp := &tapper{r: r, aid: nfc.DefaultAID, db: db, clk: clk, log: textLog(&logs),
		view: func() atm.View {
			mu.Lock()
			defer mu.Unlock()
			return atm.View{Session: session, InService: true}
		},
		state: func(st ui.TapState, s string) { b.setTap(st, s, clk) },
		// The delay is its step's ceiling: Min, 2 Min, ... up to Max.
		retry: backoff.Backoff{Policy: backoff.Policy{Min: time.Second, Max: 4 * time.Second, Rand: func(n int64) int64 { return n - 1 }}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tp.run(ctx) }()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	defer stop()

	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	waiting := func(n int) {
		t.Helper()
		if err := r.Waiting(wctx, n); err != nil {
			t.Fatal(err)
		}
	}
	// pending waits until the tapper has armed its retry: n timers.
	pending := func(n int) {
		t.Helper()
		for range 4000 {
			if clk.Pending() == n {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("%d timers armed, want %d", clk.Pending(), n)
	}
	fail := func(msg string) {
		t.Helper()
		if err := r.Fail(wctx, errors.New(msg)); err != nil {
			t.Fatal(err)
		}
	}
	// notYet advances to just before the retry: no new WaitCard.
	notYet := func(d time.Duration, calls int) {
		t.Helper()
		clk.Advance(d - time.Millisecond)
		time.Sleep(20 * time.Millisecond) // a wrong early retry would show here
		if got := r.Calls(); got != calls {
			t.Fatalf("WaitCard called %d times %v before the retry, want %d", got, d, calls)
		}
		clk.Advance(time.Millisecond)
	}

	// Idle: the first failure is journaled without a session and shown on
	// the idle screen; the retry comes 1 s later.
	waiting(1)
	fail("pcsc: no service")
	pending(2) // the idle notice's 5 s and the retry
	if got := b.tapFor(""); got != ui.TapFailed {
		t.Fatalf("idle screen shows %v after the failure", got)
	}
	notYet(time.Second, 1)
	waiting(2)
	// The second failure of the run: logged, not journaled again; 2 s.
	fail("pcsc: no service")
	pending(2)
	notYet(2*time.Second, 2)
	waiting(3)

	// A session waits for the phone: the failure is journaled for it and
	// its QR screen says the reader is not working; 4 s (the cap).
	mu.Lock()
	session = &atm.Session{ID: "0123456789ABCDEF0123456789ABCDEF", State: atm.StateAwaitingPhone,
		QR: "CLW1:ATM00001:30000:156:0123456789ABCDEF0123456789ABCDEF:1767225600:0011223344556677"}
	mu.Unlock()
	fail("pcsc: no service")
	pending(2)
	if got := b.tapFor(session.ID); got != ui.TapFailed {
		t.Fatalf("QR screen shows %v after the failure", got)
	}
	clk.Advance(2 * time.Second) // t = 5 s: the idle notice's time is up; the QR screen keeps its line
	if got, gotQR := b.tapFor(""), b.tapFor(session.ID); got != ui.TapNone || gotQR != ui.TapFailed {
		t.Fatalf("after 5 s: idle %v, QR %v", got, gotQR)
	}
	notYet(2*time.Second, 3)
	waiting(4)
	fail("pcsc: no service")
	pending(1)
	notYet(4*time.Second, 4)
	waiting(5)

	// The reader works again: the phone gets the session.
	sel, _ := nfc.SelectAPDU(nfc.DefaultAID)
	sess, _ := nfc.SessionAPDU(session.QR)
	card := nfc.NewFakeCard(nfc.Exchange{Command: sel, Response: []byte{0x90, 0}}, nfc.Exchange{Command: sess, Response: []byte{0x90, 0}})
	if err := r.Give(wctx, card); err != nil {
		t.Fatal(err)
	}
	waiting(6)
	if err := card.Check(); err != nil || !card.Closed() {
		t.Fatalf("card: %v, closed %v", err, card.Closed())
	}
	if got := b.tapFor(session.ID); got != ui.TapDetected {
		t.Fatalf("QR screen shows %v after the tap", got)
	}
	// A new failure starts a new run: journaled, 1 s again.
	fail("pcsc: reader unplugged")
	pending(1)
	notYet(time.Second, 6)
	waiting(7)

	want := [][3]string{
		{"NFC READER FAILED", "", "pcsc: no service"},
		{"NFC READER FAILED", session.ID, "pcsc: no service"},
		{"NFC TAP", session.ID, ""},
		{"NFC READER FAILED", session.ID, "pcsc: reader unplugged"},
	}
	if got := nfcEntries(t, db); !reflect.DeepEqual(got, want) {
		t.Fatalf("journal:\n%q\nwant\n%q", got, want)
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	const failed = `level=ERROR msg="contactless reader failed; the QR code still works" `
	wantLog := failed + `err="pcsc: no service" failures=1 retry_in=1s` + "\n" +
		failed + `err="pcsc: no service" failures=2 retry_in=2s` + "\n" +
		failed + `err="pcsc: no service" failures=3 retry_in=4s` + "\n" +
		failed + `err="pcsc: no service" failures=4 retry_in=4s` + "\n" +
		`level=INFO msg="contactless reader works again" failures=4` + "\n" +
		`level=INFO msg=tap outcome="NFC TAP" session=` + session.ID + ` err=<nil>` + "\n" +
		failed + `err="pcsc: reader unplugged" failures=1 retry_in=1s` + "\n"
	if got := logs.String(); got != wantLog {
		t.Fatalf("log:\n%s\nwant\n%s", got, wantLog)
	}
}
