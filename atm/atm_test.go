package atm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/cardless-atm/cardless/atm/host"
	"github.com/cardless-atm/cardless/atm/host/hostfake"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/qr"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/atm/store/storetest"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
)

var tokenKey = []byte("development token key 0123456789") // 32 bytes, tests only

type rig struct {
	t      *testing.T
	runErr chan error // what Run returned
	cancel context.CancelFunc
	core   *atm.ATM
	host   *hostfake.Host
	sim    *dispensersim.Sim
	db     *store.DB
	clk    clock.Clock
	fake   *clock.Fake // nil when the rig runs on the real clock
	take   time.Duration
	ttl    time.Duration
	retry  time.Duration // the longest store-and-forward backoff
	// refusal is the core's refusal counting window.
	refusal time.Duration
	start   time.Time  // the clock's reading when the rig started
	logs    *logBuffer // the core's log (JSON lines)
}

// logBuffer collects log output written on the core's goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// errors returns the messages of the ERROR lines, in order.
func (l *logBuffer) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var e struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Level == "ERROR" {
			out = append(out, e.Msg)
		}
	}
	return out
}

// ClockEnv chooses the rig's clock: unset, a fake clock starting at
// defaultStart; an RFC 3339 instant, a fake clock starting there; "real",
// the system clock (timeouts shortened so the suite stays quick).
// TestFlowsAtOtherInstants runs the suite again under several of them.
const ClockEnv = "CARDLESS_TEST_CLOCK"

var defaultStart = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

func rigClock(t *testing.T) (clock.Clock, *clock.Fake) {
	switch v := os.Getenv(ClockEnv); v {
	case "":
		f := clock.NewFake(defaultStart)
		return f, f
	case "real":
		return clock.Real{}, nil
	default:
		start, err := time.Parse(time.RFC3339, v)
		if err != nil {
			t.Fatalf("%s=%q: %v", ClockEnv, v, err)
		}
		f := clock.NewFake(start)
		return f, f
	}
}

// advance lets d pass: the fake clock jumps, the real one is waited for.
func (r *rig) advance(d time.Duration) {
	if r.fake != nil {
		r.fake.Advance(d)
		return
	}
	time.Sleep(d)
}

func newRig(t *testing.T, faults dispensersim.Faults) *rig {
	t.Helper()
	clk, fake := rigClock(t)
	return newRigOn(t, faults, clk, fake)
}

// newRigOn starts a rig on clk; wrap, if given, puts something between the
// core and the simulated dispenser (a slow device, say).
func newRigOn(t *testing.T, faults dispensersim.Faults, clk clock.Clock, fake *clock.Fake, wrap ...func(*dispensersim.Sim) atm.Dispenser) *rig {
	t.Helper()
	m := hsm.NewSoft()
	t.Cleanup(func() { m.Close() })
	if _, err := m.ImportClearKey(hsm.QRMAC, []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}); err != nil {
		t.Fatal(err)
	}
	sim, err := dispensersim.New(dispensersim.Config{
		Units: []dispenser.CashUnit{
			{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 50},
			{ID: "CST2", Denomination: 5000, Currency: "CNY", Count: 50},
		},
		Exponent: 2, MaxNotes: 40, TokenKey: tokenKey, TakeDelay: 10 * time.Millisecond,
		StateFile: t.TempDir() + "/sim.json", Faults: faults,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, logs: &logBuffer{}, host: hostfake.New(tokenKey, "CNY", 2), sim: sim, clk: clk, fake: fake, start: clk.Now(),
		db: storetest.OpenOptions(t, store.Options{Now: clk.Now})}
	// On the fake clock the timeouts are the production defaults and only
	// the test moves time; on the real clock they are short.
	retryMin := time.Second
	r.take, r.ttl, r.retry, r.refusal = 30*time.Second, 120*time.Second, 8*time.Second, atm.DefaultRefusalWindow
	if fake == nil {
		retryMin = 20 * time.Millisecond
		r.take, r.ttl, r.retry, r.refusal = 300*time.Millisecond, 3*time.Second, 100*time.Millisecond, 300*time.Millisecond
	}
	var dev atm.Dispenser = sim
	for _, w := range wrap {
		dev = w(sim)
	}
	r.core, err = atm.New(atm.Config{
		TerminalID: "ATM00001", Currency: "156", CurrencyAlpha: "CNY", Exponent: 2,
		TakeTimeout: r.take, SessionTTL: r.ttl,
		Limits: atm.Limits{Min: 5000, Max: 300000, Multiple: 5000, Daily: 1000000},
		Store:  r.db, HSM: m, Dispenser: dev, Host: r.host, Clock: clk,
		SAFRetryMin: retryMin, SAFRetryMax: r.retry, RefusalWindow: r.refusal,
		Logger: slog.New(slog.NewJSONHandler(r.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.runErr = make(chan error, 1)
	done := make(chan struct{})
	go func() { r.runErr <- r.core.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func (r *rig) session(amount int64) *atm.Session {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := r.core.RequestWithdrawal(ctx, amount)
	if err != nil {
		r.t.Fatalf("RequestWithdrawal(%d): %v", amount, err)
	}
	return s
}

func (r *rig) command(s *atm.Session, stan string) atm.Result {
	r.t.Helper()
	return r.send(atm.Command{STAN: stan, TerminalID: "ATM00001", Amount: s.Amount, Currency: "156",
		QRPayload: s.QR, CustomerID: "6222020000001234", PINBlock: []byte{1, 2, 3, 4, 5, 6, 7, 8}})
}

// commandAsync sends the command in the background; the result arrives on
// the channel.
func (r *rig) commandAsync(s *atm.Session, stan string) <-chan atm.Result {
	out := make(chan atm.Result, 1)
	go func() {
		out <- r.send(atm.Command{STAN: stan, TerminalID: "ATM00001", Amount: s.Amount, Currency: "156",
			QRPayload: s.QR, CustomerID: "6222020000001234", PINBlock: []byte{1, 2, 3, 4, 5, 6, 7, 8}})
	}()
	return out
}

// waitState waits (bounded) until the screen shows the session in want.
func (r *rig) waitState(want atm.State) {
	r.t.Helper()
	for i := 0; i < 1000; i++ {
		if v := r.core.View(); v.Session != nil && v.Session.State == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.t.Fatalf("session never reached %s (now %+v)", want, r.core.View().Session)
}

func (r *rig) send(c atm.Command) atm.Result {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.core.HandleCommand(ctx, c)
}

// settle waits (bounded) until the store-and-forward queue is empty.
func (r *rig) settle() {
	r.t.Helper()
	for i := 0; i < 200; i++ {
		if n, err := r.core.PendingSAF(); err == nil && n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	n, _ := r.core.PendingSAF()
	r.t.Fatalf("store-and-forward queue still holds %d items", n)
}

func (r *rig) verify() {
	r.t.Helper()
	if err := r.db.VerifyJournal(); err != nil {
		r.t.Fatalf("journal: %v", err)
	}
	if r.fake == nil {
		return
	}
	// Every journal entry is stamped by the rig's one clock: a store on
	// another clock (the system's) would stamp today's date.
	now := r.fake.Now()
	r.db.View(func(tx *store.Tx) error {
		return tx.JournalRange(0, func(e store.Entry) error {
			if e.Time.Before(r.start) || e.Time.After(now) {
				r.t.Errorf("journal entry %d (%s) stamped %v, outside the clock's %v .. %v", e.Seq, e.Kind, e.Time, r.start, now)
			}
			return nil
		})
	})
}

// journalKinds returns the kinds of the journal's entries, in order.
func (r *rig) journalKinds() []string {
	var kinds []string
	r.db.View(func(tx *store.Tx) error {
		return tx.JournalRange(0, func(e store.Entry) error { kinds = append(kinds, e.Kind); return nil })
	})
	return kinds
}

// closeRefusals lets the refusal windows end and waits (bounded) until the
// core has journaled the counts: repeated entries, one per response code.
func (r *rig) closeRefusals(codes ...string) {
	r.t.Helper()
	r.advance(r.refusal)
	for range 400 {
		var got []string
		r.db.View(func(tx *store.Tx) error {
			return tx.JournalRange(0, func(e store.Entry) error {
				if e.Kind == "COMMAND REFUSED (REPEATED)" {
					got = append(got, e.Data["rc"]+"x"+e.Data["count"])
				}
				return nil
			})
		})
		if slices.Equal(got, codes) {
			return
		}
		r.advance(time.Second / 10)
		time.Sleep(5 * time.Millisecond)
	}
	r.t.Fatalf("refusal counts never journaled as %q", codes)
}

// wantJournal fails unless the journal holds exactly the entries of these
// kinds, in this order (the rig's store starts empty).
func (r *rig) wantJournal(want ...string) {
	r.t.Helper()
	if got := r.journalKinds(); !slices.Equal(got, want) {
		r.t.Errorf("journal kinds:\n  got  %q\n  want %q", got, want)
	}
}

func TestApprovedAndPaid(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	r.host.Expect(t, hostfake.Authorize, hostfake.Advise)
	s := r.session(35000)
	res := r.command(s, "000001")
	if res.ResponseCode != "00" || res.Dispensed != 35000 || res.AuthCode != "A12345" {
		t.Fatalf("result %+v", res)
	}
	r.settle()
	if a, adv, rev := r.host.Counts(); a != 1 || adv != 1 || rev != 0 {
		t.Fatalf("host saw %d auths, %d advices, %d reversals", a, adv, rev)
	}
	if got := r.host.Advices()[0]; got.Amount != 35000 || got.Original.STAN != r.host.Authorizations()[0].STAN {
		t.Errorf("advice %+v", got)
	}
	c := r.sim.Counters()
	if c[0].Dispensed*10000+c[1].Dispensed*5000 != 35000 {
		t.Errorf("dispenser counters %+v", c)
	}
	r.verify()
	r.wantJournal("SESSION CREATED", "COMMAND ACCEPTED", "APPROVED", "CASH DISPENSED", "CASH PRESENTED", "CASH TAKEN", "QUEUED ADVICE", "HOST ACK ADVICE")
	// The PIN block and the customer ID never reach the journal or the session.
	r.db.View(func(tx *store.Tx) error {
		b, _ := tx.GetSession(s.ID)
		if strings.Contains(string(b), "6222020000001234") {
			t.Error("session stores the customer ID in clear")
		}
		return tx.JournalRange(0, func(e store.Entry) error {
			if j, _ := json.Marshal(e); strings.Contains(string(j), "6222020000001234") {
				t.Errorf("journal entry %d holds the customer ID in clear", e.Seq)
			}
			return nil
		})
	})
}

func TestReplayedCommandPaysOnce(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	s := r.session(20000)
	first := r.command(s, "000001")
	second := r.command(s, "000002") // same session, new STAN: a replay
	if first.ResponseCode != "00" || second != first {
		t.Fatalf("first %+v, second %+v", first, second)
	}
	if a, _, _ := r.host.Counts(); a != 1 {
		t.Fatalf("host saw %d authorizations, want 1", a)
	}
	if c := r.sim.Counters(); c[0].Dispensed*10000+c[1].Dispensed*5000 != 20000 {
		t.Fatalf("dispensed %+v, want 20000 once", c)
	}
}

func TestConcurrentDuplicateCommandsPayOnce(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	s := r.session(20000)
	var wg sync.WaitGroup
	results := make([]atm.Result, 4)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = r.command(s, "00000"+string(rune('1'+i))) }()
	}
	wg.Wait()
	for _, res := range results {
		if res != results[0] || res.ResponseCode != "00" {
			t.Fatalf("results %+v", results)
		}
	}
	if a, _, _ := r.host.Counts(); a != 1 {
		t.Fatalf("host saw %d authorizations", a)
	}
}

func TestDeclined(t *testing.T) {
	for _, rc := range []string{"51", "55", "61", "05"} {
		t.Run(rc, func(t *testing.T) {
			r := newRig(t, dispensersim.Faults{})
			r.host.Expect(t, hostfake.Authorize)
			r.host.SetFaults(hostfake.Faults{ResponseCode: rc})
			res := r.command(r.session(10000), "000001")
			if want := (atm.Result{ResponseCode: rc, RRN: hostfake.DeclineRRN}); res != want {
				t.Fatalf("result %+v, want %+v", res, want)
			}
			if c := r.sim.Counters(); c[0].Dispensed+c[1].Dispensed != 0 {
				t.Fatal("cash moved on a decline")
			}
			r.settle()
			if _, adv, rev := r.host.Counts(); adv+rev != 0 {
				t.Fatal("advice or reversal sent for a decline")
			}
			r.wantJournal("SESSION CREATED", "COMMAND ACCEPTED", "DECLINED")
		})
	}
}

func TestHostOutcomeUnknownReverses(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	r.host.Expect(t, hostfake.Authorize, hostfake.Reverse)
	r.host.SetFaults(hostfake.Faults{AuthErr: host.ErrOutcomeUnknown})
	res := r.command(r.session(10000), "000001")
	if res.ResponseCode != "91" {
		t.Fatalf("result %+v", res)
	}
	r.settle()
	if _, _, rev := r.host.Counts(); rev != 1 || r.host.Reversals()[0].Dispensed != 0 || r.host.Reversals()[0].Reason != wire.ReasonLateResponse {
		t.Fatalf("reversals %+v", r.host.Reversals())
	}
	r.wantJournal("SESSION CREATED", "COMMAND ACCEPTED", "HOST NO ANSWER", "QUEUED REVERSAL", "HOST ACK REVERSAL")
}

func TestHostUnavailableNoReversal(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	r.host.Expect(t, hostfake.Authorize)
	r.host.SetFaults(hostfake.Faults{AuthErr: host.ErrUnavailable})
	if res := r.command(r.session(10000), "000001"); res.ResponseCode != "91" {
		t.Fatalf("result %+v", res)
	}
	// Let every store-and-forward retry come due, then wait until the
	// queue is empty: a reversal wrongly queued has then reached the host.
	r.advance(r.retry)
	r.settle()
	if a, adv, rev := r.host.Counts(); a != 1 || adv != 0 || rev != 0 {
		t.Fatalf("host saw %d authorizations, %d advices, %d reversals; want the one authorization that never left, nothing else", a, adv, rev)
	}
	r.wantJournal("SESSION CREATED", "COMMAND ACCEPTED", "HOST UNAVAILABLE")
}

func TestDispenserFaults(t *testing.T) {
	tests := []struct {
		name      string
		faults    dispensersim.Faults
		wantRC    string
		wantPaid  int64
		wantState atm.State
		notTaken  bool   // the take-cash timer must run out
		reason    string // of the reversal (docs/protocol.md §6), chosen by cause
		journal   []string
		host      []hostfake.Kind // the calls the host must see, in order
	}{
		{"short dispense", dispensersim.Faults{ShortDispense: 1}, "00", 20000, atm.StateCompleted, false, wire.ReasonPartialDispense,
			[]string{"SESSION CREATED", "COMMAND ACCEPTED", "APPROVED", "PARTIAL DISPENSE", "CASH PRESENTED", "CASH TAKEN", "QUEUED REVERSAL", "HOST ACK REVERSAL"},
			[]hostfake.Kind{hostfake.Authorize, hostfake.Reverse}},
		{"jam", dispensersim.Faults{Jam: true, JamAfter: 1}, "96", 0, atm.StateFailed, false, wire.ReasonMalfunction,
			[]string{"SESSION CREATED", "COMMAND ACCEPTED", "APPROVED", "DISPENSE JAMMED", "QUEUED REVERSAL", "HOST ACK REVERSAL"},
			[]hostfake.Kind{hostfake.Authorize, hostfake.Reverse}},
		{"notes not taken", dispensersim.Faults{NotesNotTaken: true}, "96", 0, atm.StateRetracted, true, wire.ReasonCustomerCancel,
			[]string{"SESSION CREATED", "COMMAND ACCEPTED", "APPROVED", "CASH DISPENSED", "CASH PRESENTED", "CASH NOT TAKEN", "CASH RETRACTED", "QUEUED REVERSAL", "HOST ACK REVERSAL"},
			[]hostfake.Kind{hostfake.Authorize, hostfake.Reverse}},
		{"short dispense not taken", dispensersim.Faults{ShortDispense: 1, NotesNotTaken: true}, "96", 0, atm.StateRetracted, true, wire.ReasonCustomerCancel,
			[]string{"SESSION CREATED", "COMMAND ACCEPTED", "APPROVED", "PARTIAL DISPENSE", "CASH PRESENTED", "CASH NOT TAKEN", "CASH RETRACTED", "QUEUED REVERSAL", "HOST ACK REVERSAL"},
			[]hostfake.Kind{hostfake.Authorize, hostfake.Reverse}},
		{"shutter failure", dispensersim.Faults{ShutterFailure: true}, "96", 0, atm.StateRetracted, false, wire.ReasonMalfunction,
			[]string{"SESSION CREATED", "COMMAND ACCEPTED", "APPROVED", "CASH DISPENSED", "PRESENT FAILED", "CASH REJECTED", "QUEUED REVERSAL", "HOST ACK REVERSAL"},
			[]hostfake.Kind{hostfake.Authorize, hostfake.Reverse}},
		{"count unknown", dispensersim.Faults{CountUnknown: true}, "96", 0, atm.StateInDoubt, false, "",
			[]string{"SESSION CREATED", "COMMAND ACCEPTED", "APPROVED", "IN DOUBT"},
			[]hostfake.Kind{hostfake.Authorize}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.faults)
			r.host.Expect(t, tt.host...)
			s := r.session(30000)
			out := r.commandAsync(s, "000001")
			var res atm.Result
			if tt.notTaken {
				r.waitState(atm.StateAwaitingTake)
				// The take-cash timer is armed just after the state is
				// published: keep moving the clock until the outcome comes
				// (bounded), rather than once at a moment that may precede it.
			wait:
				for range 200 {
					r.advance(r.take)
					select {
					case res = <-out:
						break wait
					case <-time.After(20 * time.Millisecond):
					}
				}
			} else {
				res = <-out
			}
			if res.ResponseCode != tt.wantRC || res.Dispensed != tt.wantPaid {
				t.Fatalf("result %+v, want rc %s paid %d", res, tt.wantRC, tt.wantPaid)
			}
			if v := r.core.View(); v.Session.State != tt.wantState {
				t.Fatalf("state %s, want %s", v.Session.State, tt.wantState)
			}
			r.settle()
			_, adv, rev := r.host.Counts()
			switch tt.wantState {
			case atm.StateInDoubt:
				if adv+rev != 0 {
					t.Fatal("in-doubt session must wait for the operator, not reverse")
				}
				want := []string{"ALARM session in doubt: the ATM cannot tell what the customer was paid; an operator must count the cash and settle it"}
				if got := r.logs.errors(); !slices.Equal(got, want) {
					t.Fatalf("errors logged %q, want %q", got, want)
				}
			default:
				if adv != 0 || rev != 1 || r.host.Reversals()[0].Dispensed != tt.wantPaid || r.host.Reversals()[0].Amount != 30000 ||
					r.host.Reversals()[0].Reason != tt.reason {
					t.Fatalf("advices %d, reversals %+v, want one of 30000 with %d paid, reason %s", adv, r.host.Reversals(), tt.wantPaid, tt.reason)
				}
			}
			r.verify()
			r.wantJournal(tt.journal...)
		})
	}
}

func TestForgedTokenRefusedByDispenser(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	r.host.Expect(t, hostfake.Authorize, hostfake.Reverse)
	r.host.SetFaults(hostfake.Faults{ForgedToken: true})
	res := r.command(r.session(10000), "000001")
	if res.ResponseCode == "00" || res.Dispensed != 0 {
		t.Fatalf("result %+v", res)
	}
	if c := r.sim.Counters(); c[0].Dispensed+c[1].Dispensed != 0 {
		t.Fatal("dispenser paid on a forged token")
	}
	r.settle()
	if _, _, rev := r.host.Counts(); rev != 1 {
		t.Fatal("no reversal after the dispenser refused the token")
	}
	r.wantJournal("SESSION CREATED", "COMMAND ACCEPTED", "APPROVED", "DISPENSE FAILED", "QUEUED REVERSAL", "HOST ACK REVERSAL")
}

// The dispenser itself refuses a missing token, a token covering less than
// the dispense, and a token replayed from an earlier session; the core
// then reverses the approval.
func TestDispenserRefusesBadTokens(t *testing.T) {
	for _, mode := range []string{hostfake.TokenNone, hostfake.TokenSmall, hostfake.TokenReuse} {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, dispensersim.Faults{})
			r.host.SetFaults(hostfake.Faults{Token: mode})
			if mode == hostfake.TokenReuse { // a first, genuine withdrawal yields the token to replay
				r.host.SetFaults(hostfake.Faults{})
				res := r.command(r.session(10000), "000001")
				if res.ResponseCode != "00" {
					t.Fatal(res)
				}
				// The next approval records its genuine token; the one after
				// gets it again.
				r.host.SetFaults(hostfake.Faults{Token: hostfake.TokenReuse})
				r.core.Dismiss(context.Background())
				if res := r.command(r.session(10000), "000002"); res.ResponseCode != "00" {
					t.Fatal(res) // this one records its token
				}
				r.core.Dismiss(context.Background())
			}
			before := r.sim.Counters()
			res := r.command(r.session(10000), "000003")
			if res.ResponseCode == "00" || res.Dispensed != 0 {
				t.Fatalf("result %+v", res)
			}
			after := r.sim.Counters()
			for i := range after {
				if after[i].Dispensed != before[i].Dispensed {
					t.Fatalf("dispenser paid on a %s token", mode)
				}
			}
			r.settle()
			if _, _, rev := r.host.Counts(); rev != 1 {
				t.Fatalf("%d reversals, want 1", rev)
			}
		})
	}
}

func TestCommandRefusals(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	r.host.Expect(t, hostfake.Authorize, hostfake.Advise)
	s := r.session(10000)
	p, _ := qr.Parse(s.QR)
	tamperedAmount := strings.Replace(s.QR, ":10000:", ":90000:", 1)
	otherTerminal := strings.Replace(s.QR, "ATM00001", "ATM00002", 1)
	forged := p
	forged.MAC = "0000000000000000"
	base := atm.Command{STAN: "000009", TerminalID: "ATM00001", Amount: 10000, Currency: "156", QRPayload: s.QR}
	with := func(f func(*atm.Command)) atm.Command { c := base; f(&c); return c }
	tests := []struct {
		name string
		cmd  atm.Command
		rc   string
	}{
		{"garbage QR", with(func(c *atm.Command) { c.QRPayload = "hello" }), "12"},
		{"amount tampered in QR", with(func(c *atm.Command) { c.QRPayload = tamperedAmount; c.Amount = 90000 }), "13"},
		{"amount tampered in field 4", with(func(c *atm.Command) { c.Amount = 90000 }), "13"},
		{"wrong currency", with(func(c *atm.Command) { c.Currency = "840" }), "13"},
		{"wrong terminal in QR", with(func(c *atm.Command) { c.QRPayload = otherTerminal }), "12"},
		{"wrong terminal in field 41", with(func(c *atm.Command) { c.TerminalID = "ATM00002" }), "12"},
		{"forged MAC", with(func(c *atm.Command) { c.QRPayload = forged.String() }), "12"},
		{"unknown nonce", with(func(c *atm.Command) {
			q := p
			q.Nonce = "00000000000000000000000000000000"
			c.QRPayload = q.String()
		}), "12"},
	}
	for _, tt := range tests {
		if res := r.send(tt.cmd); res.ResponseCode != tt.rc {
			t.Errorf("%s: rc %s, want %s", tt.name, res.ResponseCode, tt.rc)
		}
	}
	if a, _, _ := r.host.Counts(); a != 0 {
		t.Fatal("a refused command reached the host")
	}
	// The genuine command still works afterwards.
	if res := r.command(s, "000010"); res.ResponseCode != "00" {
		t.Fatalf("genuine command after refusals: %+v", res)
	}
	r.settle()
	// The first refusal of each code in full; the others counted, then
	// journaled as one entry per code when the window ends.
	r.wantJournal("SESSION CREATED", "COMMAND REFUSED", "COMMAND REFUSED",
		"COMMAND ACCEPTED", "APPROVED", "CASH DISPENSED", "CASH PRESENTED", "CASH TAKEN", "QUEUED ADVICE", "HOST ACK ADVICE")
	r.closeRefusals("12x4", "13x2")
	r.wantJournal("SESSION CREATED", "COMMAND REFUSED", "COMMAND REFUSED",
		"COMMAND ACCEPTED", "APPROVED", "CASH DISPENSED", "CASH PRESENTED", "CASH TAKEN", "QUEUED ADVICE", "HOST ACK ADVICE",
		"COMMAND REFUSED (REPEATED)", "COMMAND REFUSED (REPEATED)")
}

func TestExpiredQR(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	r.host.Expect(t)
	s := r.session(10000)
	r.advance(r.ttl + time.Second)
	if res := r.command(s, "000001"); res.ResponseCode != "54" {
		t.Fatalf("result %+v", res)
	}
	if a, _, _ := r.host.Counts(); a != 0 {
		t.Fatal("expired session reached the host")
	}
	r.wantJournal("SESSION CREATED", "SESSION EXPIRED", "COMMAND REFUSED")
}

func TestCancelEndsSession(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	r.host.Expect(t)
	s := r.session(10000)
	if err := r.core.Cancel(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res := r.command(s, "000001"); res.ResponseCode != "12" {
		t.Fatalf("result %+v", res)
	}
	r.wantJournal("SESSION CREATED", "CUSTOMER CANCELLED", "COMMAND REFUSED")
}

func TestCannotPay(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	ctx := context.Background()
	for _, tt := range []struct {
		amount int64
		reason string
	}{{1000, "limit"}, {400000, "limit"}, {12345, "multiple"}} {
		_, err := r.core.RequestWithdrawal(ctx, tt.amount)
		var cp *atm.CannotPayError
		if !errors.As(err, &cp) || cp.Reason != tt.reason {
			t.Errorf("RequestWithdrawal(%d) = %v, want reason %s", tt.amount, err, tt.reason)
		}
	}
	// More notes than the dispenser may pay at once: 40 notes max, 300000
	// is payable (30 x 100), but not with CST1 inoperative... use the limit
	// of notes instead: an amount needing 41+ notes of 50 is impossible.
	r2 := newRig(t, dispensersim.Faults{Offline: true})
	_, err := r2.core.RequestWithdrawal(ctx, 10000)
	var cp *atm.CannotPayError
	if !errors.As(err, &cp) || cp.Reason != "dispenser" {
		t.Errorf("offline dispenser: %v", err)
	}
}

func TestBusy(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	r.session(10000)
	if _, err := r.core.RequestWithdrawal(context.Background(), 10000); !errors.Is(err, atm.ErrBusy) {
		t.Fatalf("second session: %v", err)
	}
}

func TestSAFSurvivesHostOutage(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	r.host.SetFaults(hostfake.Faults{SAFErr: host.ErrUnavailable})
	if res := r.command(r.session(10000), "000001"); res.ResponseCode != "00" {
		t.Fatal(res)
	}
	for i := 0; i < 1000 && r.host.Unacknowledged() < 2; i++ {
		r.advance(r.retry) // let the backoff run out, so it tries again
		time.Sleep(5 * time.Millisecond)
	}
	if n := r.host.Unacknowledged(); n < 2 {
		t.Fatalf("%d tries to send the advice, want it resent", n)
	}
	if n, _ := r.core.PendingSAF(); n != 1 {
		t.Fatalf("pending %d, want the advice waiting", n)
	}
	r.host.SetFaults(hostfake.Faults{})
	// The failed try in flight may arm its backoff after any one advance:
	// keep letting the backoff run out until the queue is empty.
	for i := 0; i < 1000; i++ {
		if n, err := r.core.PendingSAF(); err == nil && n == 0 {
			break
		}
		r.advance(r.retry)
		time.Sleep(5 * time.Millisecond)
	}
	r.settle()
	if _, adv, _ := r.host.Counts(); adv != 1 {
		t.Fatalf("advices %d", adv)
	}
}

func TestOperatorSettlesInDoubt(t *testing.T) {
	for _, tt := range []struct {
		name      string
		paid      int64
		state     atm.State
		advices   int
		reversals int
		reason    string
		journal   []string
		host      []hostfake.Kind
	}{
		{"nothing paid", 0, atm.StateFailed, 0, 1, wire.ReasonMalfunction,
			[]string{"SESSION CREATED", "COMMAND ACCEPTED", "APPROVED", "IN DOUBT", "OPERATOR SETTLED", "QUEUED REVERSAL", "HOST ACK REVERSAL"},
			[]hostfake.Kind{hostfake.Authorize, hostfake.Reverse}},
		{"part paid", 20000, atm.StateCompleted, 0, 1, wire.ReasonPartialDispense,
			[]string{"SESSION CREATED", "COMMAND ACCEPTED", "APPROVED", "IN DOUBT", "OPERATOR SETTLED", "QUEUED REVERSAL", "HOST ACK REVERSAL"},
			[]hostfake.Kind{hostfake.Authorize, hostfake.Reverse}},
		{"all paid", 30000, atm.StateCompleted, 1, 0, "",
			[]string{"SESSION CREATED", "COMMAND ACCEPTED", "APPROVED", "IN DOUBT", "OPERATOR SETTLED", "QUEUED ADVICE", "HOST ACK ADVICE"},
			[]hostfake.Kind{hostfake.Authorize, hostfake.Advise}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, dispensersim.Faults{CountUnknown: true})
			r.host.Expect(t, tt.host...)
			s := r.session(30000)
			r.command(s, "000001")
			ctx := context.Background()
			list, err := r.core.InDoubt()
			if err != nil || len(list) != 1 || list[0].ID != s.ID {
				t.Fatalf("in doubt: %v %v", list, err)
			}
			if _, err := r.core.Settle(ctx, s.ID, 40000, "op1"); err == nil {
				t.Fatal("settled for more than was authorized")
			}
			got, err := r.core.Settle(ctx, s.ID, tt.paid, "op1")
			if err != nil || got.State != tt.state || got.Paid != tt.paid {
				t.Fatalf("settle: %+v %v", got, err)
			}
			if _, err := r.core.Settle(ctx, s.ID, tt.paid, "op1"); !errors.Is(err, atm.ErrNotInDoubt) {
				t.Fatalf("second settle: %v", err)
			}
			r.settle()
			_, adv, rev := r.host.Counts()
			if adv != tt.advices || rev != tt.reversals {
				t.Fatalf("advices %d reversals %d", adv, rev)
			}
			if rev == 1 && (r.host.Reversals()[0].Dispensed != tt.paid || r.host.Reversals()[0].Reason != tt.reason) {
				t.Fatalf("reversal %+v", r.host.Reversals()[0])
			}
			r.wantJournal(tt.journal...)
			r.verify()
		})
	}
}

// gatedHost holds every authorization until release is closed.
type gatedHost struct {
	*hostfake.Host
	entered chan struct{}
	release chan struct{}
}

func (g *gatedHost) Authorize(ctx context.Context, r host.AuthRequest) (host.AuthResponse, error) {
	close(g.entered)
	<-g.release
	return g.Host.Authorize(ctx, r)
}

// A state change that cannot be committed stops the core (ErrStorage) so
// the appliance restarts and recovery settles the session; nothing is done
// past the last committed state.
func TestCommitFailureStopsCore(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	g := &gatedHost{Host: r.host, entered: make(chan struct{}), release: make(chan struct{})}
	core, err := atm.New(func() atm.Config { c := r.core.Config(); c.Host = g; return c }())
	if err != nil {
		t.Fatal(err)
	}
	r.cancel() // stop the rig's core; run ours on the same store
	<-r.runErr
	errc := make(chan error, 1)
	go func() { errc <- core.Run(context.Background()) }()
	s, err := core.RequestWithdrawal(context.Background(), 10000)
	if err != nil {
		t.Fatal(err)
	}
	go core.HandleCommand(context.Background(), atm.Command{STAN: "000001", TerminalID: "ATM00001", Amount: 10000, Currency: "156", QRPayload: s.QR})
	<-g.entered
	r.db.Close() // the disk goes away while the host is deciding
	close(g.release)
	select {
	case err := <-errc:
		if !errors.Is(err, atm.ErrStorage) {
			t.Fatalf("Run returned %v, want ErrStorage", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("core kept running after a failed commit")
	}
	if c := r.sim.Counters(); c[0].Dispensed+c[1].Dispensed != 0 {
		t.Fatal("cash moved past a state that was never committed")
	}
}

// Shutdown in the middle of a device step leaves the session in its
// committed state for recovery; the cut-short call is not taken as a fault.
func TestShutdownLeavesSessionForRecovery(t *testing.T) {
	r := newRig(t, dispensersim.Faults{NotesNotTaken: true})
	s := r.session(10000)
	go r.command(s, "000001")
	for i := 0; i < 400; i++ {
		if v := r.core.View(); v.Session != nil && v.Session.State == atm.StateAwaitingTake {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.cancel()
	<-r.runErr
	time.Sleep(50 * time.Millisecond) // let a (wrongly) posted result land, if any
	var got atm.Session
	r.db.View(func(tx *store.Tx) error {
		b, err := tx.GetSession(s.ID)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &got)
	})
	if got.State != atm.StateAwaitingTake {
		t.Fatalf("state after shutdown %s, want AwaitingTake (for recovery)", got.State)
	}
}

// TestUsedQRAnsweredOnlyToItsRequest: once a session is paid, a retry of
// the same request (same customer field and PIN block, a new STAN) gets
// its outcome again, but the same QR with another customer or another PIN
// gets 94 and learns nothing of the first outcome.
func TestUsedQRAnsweredOnlyToItsRequest(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	r.host.Expect(t, hostfake.Authorize, hostfake.Advise)
	s := r.session(20000)
	first := r.command(s, "000001")
	if first.ResponseCode != "00" || first.Dispensed != 20000 {
		t.Fatalf("first %+v", first)
	}
	if again := r.command(s, "000002"); again != first {
		t.Fatalf("retry of the same request: %+v, want %+v", again, first)
	}
	r.settle()
	other := func(customer string, pin []byte) atm.Command {
		return atm.Command{STAN: "000003", TerminalID: "ATM00001", Amount: s.Amount, Currency: "156",
			QRPayload: s.QR, CustomerID: customer, PINBlock: pin}
	}
	for name, c := range map[string]atm.Command{
		"another customer": other("6222020000009999", []byte{1, 2, 3, 4, 5, 6, 7, 8}),
		"another PIN":      other("6222020000001234", []byte{8, 7, 6, 5, 4, 3, 2, 1}),
		"no credentials":   other("", nil),
	} {
		if res := r.send(c); res != (atm.Result{ResponseCode: wire.RCDuplicate}) {
			t.Errorf("%s: %+v, want only 94", name, res)
		}
	}
	r.closeRefusals("94x2")
	r.wantJournal("SESSION CREATED", "COMMAND ACCEPTED", "APPROVED", "CASH DISPENSED", "CASH PRESENTED", "CASH TAKEN",
		"QUEUED ADVICE", "HOST ACK ADVICE", "COMMAND REFUSED", "COMMAND REFUSED (REPEATED)")
}

// TestDeviceIDGoesToTheHost: the phone's device ID reaches the host's
// authorization (which checks the phone's binding), and is part of what
// makes a request "the same request": a retry from the same phone gets
// the outcome, the same customer field and PIN block from another phone,
// or from none, get 94.
func TestDeviceIDGoesToTheHost(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	r.host.Expect(t, hostfake.Authorize, hostfake.Advise)
	s := r.session(20000)
	cmd := func(stan, device string) atm.Command {
		return atm.Command{STAN: stan, TerminalID: "ATM00001", Amount: s.Amount, Currency: "156",
			QRPayload: s.QR, CustomerID: "6222020000001234", PINBlock: []byte{1, 2, 3, 4, 5, 6, 7, 8}, DeviceID: device}
	}
	const phone = "A5DF01FC21E4290E59699A870ABD8CEF"
	first := r.send(cmd("000001", phone))
	if first.ResponseCode != "00" || first.Dispensed != 20000 {
		t.Fatalf("first %+v", first)
	}
	if auths := r.host.Authorizations(); len(auths) != 1 || auths[0].DeviceID != phone {
		t.Fatalf("the host was asked %+v, want one authorization with the device ID", auths)
	}
	if again := r.send(cmd("000002", phone)); again != first {
		t.Fatalf("retry from the same phone: %+v, want %+v", again, first)
	}
	r.settle()
	for name, c := range map[string]atm.Command{
		"another phone": cmd("000003", "0000000000000000000000000000000F"),
		"no device ID":  cmd("000004", ""),
	} {
		if res := r.send(c); res != (atm.Result{ResponseCode: wire.RCDuplicate}) {
			t.Errorf("%s: %+v, want only 94", name, res)
		}
	}
}

// TestRefusalFloodJournalsBounded: 300 forged commands in a burst (the
// penetration test's flood) write two journal entries, not 300: the first
// in full and the count when the window ends.
func TestRefusalFloodJournalsBounded(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	r.host.Expect(t)
	forged := atm.Command{STAN: "000001", TerminalID: "ATM00001", Amount: 10000, Currency: "156", QRPayload: "forged"}
	for range 300 {
		if res := r.send(forged); res != (atm.Result{ResponseCode: "12"}) {
			t.Fatalf("forged command: %+v", res)
		}
	}
	r.wantJournal("COMMAND REFUSED")
	r.closeRefusals("12x299")
	r.wantJournal("COMMAND REFUSED", "COMMAND REFUSED (REPEATED)")
}
