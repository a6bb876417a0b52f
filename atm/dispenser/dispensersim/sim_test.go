package dispensersim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/dispenser"
)

// The simulator satisfies the core's dispenser interface and its optional
// capabilities.
var (
	_ atm.Dispenser       = (*Sim)(nil)
	_ atm.PresentStatuser = (*Sim)(nil)
	_ atm.Resetter        = (*Sim)(nil)
)

var key = []byte("sim test token key 0123456789abc") // test-only

func testUnits() []dispenser.CashUnit {
	return []dispenser.CashUnit{
		{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 50},
		{ID: "CST2", Denomination: 5000, Currency: "CNY", Count: 3},
		{ID: "CST3", Denomination: 2000, Currency: "CNY", Count: 0},
		{ID: "CST4", Denomination: 1000, Currency: "CNY", Count: 100, Status: dispenser.UnitInoperative},
	}
}

func newSim(t *testing.T, file string, f Faults) *Sim {
	t.Helper()
	s, err := New(Config{Units: testUnits(), MaxNotes: 40, LowThreshold: 5, TokenKey: key, Exponent: 2, StateFile: file, Faults: f})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// token gets a nonce from the device and signs a token for amount as the
// host would.
func token(t *testing.T, s *Sim, amount int64) string {
	t.Helper()
	n, err := s.CommandNonce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := dispenser.BuildToken(n, amount, "CNY", 2, dispenser.HMACSHA256(key))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func counters(s *Sim) map[string]UnitCounters {
	m := map[string]UnitCounters{}
	for _, c := range s.Counters() {
		m[c.ID] = c
	}
	return m
}

func checkBalance(t *testing.T, s *Sim) {
	t.Helper()
	for _, c := range s.Counters() {
		if c.Loaded != c.Count+c.Dispensed || c.Rejected+c.Retracted > c.Dispensed {
			t.Fatalf("counters do not balance: %+v", c)
		}
	}
}

func TestHappyPath(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, filepath.Join(t.TempDir(), "state.json"), Faults{})
	st, err := s.Status(ctx)
	if err != nil || !st.Ready() || st.MaxNotes != 40 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	wantStatus := map[string]dispenser.UnitStatus{"CST1": dispenser.UnitOK, "CST2": dispenser.UnitLow, "CST3": dispenser.UnitEmpty, "CST4": dispenser.UnitInoperative}
	for _, u := range st.Units {
		if u.Status != wantStatus[u.ID] {
			t.Errorf("unit %s status %s, want %s", u.ID, u.Status, wantStatus[u.ID])
		}
	}
	mix, err := dispenser.Denominate(35000, st.Units, st.MaxNotes)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Dispense(ctx, mix, token(t, s, 35000))
	if err != nil {
		t.Fatal(err)
	}
	if res.Amount != 35000 || !res.Mix.Equal(dispenser.Mix{"CST1": 3, "CST2": 1}) {
		t.Fatalf("Result = %+v", res)
	}
	if err := s.Present(ctx); err != nil {
		t.Fatal(err)
	}
	taken, err := s.WaitTaken(ctx, time.Second)
	if err != nil || !taken {
		t.Fatalf("WaitTaken = %v, %v", taken, err)
	}
	if taken, err = s.WaitTaken(ctx, time.Second); err != nil || !taken {
		t.Fatalf("second WaitTaken = %v, %v", taken, err)
	}
	ps, err := s.PresentStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps.State != dispenser.PresentTaken || !ps.Taken || !ps.CountKnown || ps.PresentedAmount != 35000 || ps.DispensedAmount != 35000 || ps.PaidAmount() != 35000 || ps.Seq != 1 {
		t.Fatalf("PresentStatus = %+v", ps)
	}
	c := counters(s)
	if c["CST1"].Count != 47 || c["CST1"].Dispensed != 3 || c["CST2"].Count != 2 || c["CST2"].Dispensed != 1 {
		t.Fatalf("counters = %+v", c)
	}
	checkBalance(t, s)
	if _, err := s.Retract(ctx); !errors.Is(err, dispenser.ErrNoItems) {
		t.Fatalf("Retract after taken: %v", err)
	}
	if err := s.Present(ctx); !errors.Is(err, dispenser.ErrSequence) {
		t.Fatalf("Present with nothing stacked: %v", err)
	}
}

func TestTokenRefusals(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, filepath.Join(t.TempDir(), "state.json"), Faults{})
	mix := dispenser.Mix{"CST1": 2} // 200.00 CNY

	refuse := func(name string, tok string, want error) {
		t.Helper()
		before := s.Counters()
		if _, err := s.Dispense(ctx, mix, tok); !errors.Is(err, want) {
			t.Fatalf("%s: err = %v, want %v", name, err, want)
		}
		if after := s.Counters(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("%s: counters changed on refusal: %v -> %v", name, before, after)
		}
	}

	refuse("no nonce ever issued", func() string {
		tok, _ := dispenser.BuildToken("254611E63B2531576314E86527338D61", 20000, "CNY", 2, dispenser.HMACSHA256(key))
		return tok
	}(), dispenser.ErrNoCommandNonce)

	token(t, s, 20000)
	refuse("missing token", "", dispenser.ErrInvalidToken)

	n, _ := s.CommandNonce(ctx)
	forged, _ := dispenser.BuildToken(n, 20000, "CNY", 2, dispenser.HMACSHA256([]byte("black box guess of the key......")))
	refuse("forged HMAC", forged, dispenser.ErrInvalidTokenHMAC)
	refuse("nonce consumed by the forged attempt", forged, dispenser.ErrNoCommandNonce)

	old := token(t, s, 20000)
	token(t, s, 20000) // a newer nonce replaces the old one
	refuse("wrong (old) nonce", old, dispenser.ErrInvalidTokenNonce)

	refuse("too small amount", token(t, s, 19999), dispenser.ErrInvalidToken)

	n, _ = s.CommandNonce(ctx)
	eur, _ := dispenser.BuildToken(n, 20000, "EUR", 2, dispenser.HMACSHA256(key))
	refuse("other currency", eur, dispenser.ErrInvalidToken)

	token(t, s, 20000)
	refuse("bad format", "NONCE=12,HMACSHA256=00", dispenser.ErrInvalidTokenFormat)

	good := token(t, s, 20000)
	if _, err := s.Dispense(ctx, mix, good); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	if _, err := s.Retract(ctx); err != nil { // clear the stacker
		t.Fatal(err)
	}
	refuse("reused token", good, dispenser.ErrNoCommandNonce)
	token(t, s, 20000)
	refuse("reused token with a new nonce issued", good, dispenser.ErrInvalidTokenNonce)

	// Resource checks come after the token.
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST2": 4}, token(t, s, 20000)); !errors.Is(err, dispenser.ErrNotDispensable) {
		t.Fatalf("more notes than the unit holds: %v", err)
	}
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST4": 1}, token(t, s, 1000)); !errors.Is(err, dispenser.ErrNotDispensable) {
		t.Fatalf("inoperative unit: %v", err)
	}
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 41}, token(t, s, 410000)); !errors.Is(err, dispenser.ErrTooManyItems) {
		t.Fatalf("note limit: %v", err)
	}
	if _, err := s.Dispense(ctx, dispenser.Mix{"NOPE": 1}, token(t, s, 10000)); !errors.Is(err, dispenser.ErrNotDispensable) {
		t.Fatalf("unknown unit: %v", err)
	}
	if _, err := s.Dispense(ctx, dispenser.Mix{}, token(t, s, 10000)); !errors.Is(err, dispenser.ErrNotDispensable) {
		t.Fatalf("empty mix: %v", err)
	}
	checkBalance(t, s)
}

func TestJam(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, filepath.Join(t.TempDir(), "state.json"), Faults{Jam: true, JamAfter: 2})
	_, err := s.Dispense(ctx, dispenser.Mix{"CST1": 3, "CST2": 1}, token(t, s, 35000))
	var de *dispenser.DispenseError
	if !errors.As(err, &de) || !errors.Is(err, dispenser.ErrJam) || !de.CountKnown || de.Dispensed.Notes() != 2 || !de.Dispensed.Equal(dispenser.Mix{"CST1": 2}) {
		t.Fatalf("err = %v (%+v)", err, de)
	}
	st, _ := s.Status(ctx)
	if st.Device != dispenser.StateHardwareError {
		t.Fatalf("device %s after jam", st.Device)
	}
	if err := s.Present(ctx); !errors.Is(err, dispenser.ErrDeviceNotReady) {
		t.Fatalf("Present after jam: %v", err)
	}
	if _, err := s.CommandNonce(ctx); !errors.Is(err, dispenser.ErrDeviceNotReady) {
		t.Fatalf("CommandNonce after jam: %v", err)
	}
	ps, _ := s.PresentStatus(ctx)
	if ps.State != dispenser.PresentFailed || ps.DispensedAmount != 20000 || ps.PaidAmount() != 0 || ps.ErrorCode != "cashUnitError" {
		t.Fatalf("PresentStatus = %+v", ps)
	}
	s.SetFaults(Faults{})
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	c := counters(s)
	if c["CST1"].Rejected != 2 || c["CST1"].Dispensed != 2 || c["CST1"].Count != 48 {
		t.Fatalf("counters after reset = %+v", c["CST1"])
	}
	if ps, _ = s.PresentStatus(ctx); ps.State != dispenser.PresentRejected {
		t.Fatalf("after reset state %s", ps.State)
	}
	if st, _ = s.Status(ctx); !st.Ready() {
		t.Fatalf("device %s after reset", st.Device)
	}
	checkBalance(t, s)
}

func TestShortDispense(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, filepath.Join(t.TempDir(), "state.json"), Faults{ShortDispense: 1})
	_, err := s.Dispense(ctx, dispenser.Mix{"CST1": 3, "CST2": 1}, token(t, s, 35000))
	var de *dispenser.DispenseError
	if !errors.As(err, &de) || !errors.Is(err, dispenser.ErrShortDispense) || !de.CountKnown || !de.Dispensed.Equal(dispenser.Mix{"CST1": 3}) {
		t.Fatalf("err = %v (%+v)", err, de)
	}
	// The partial amount can be presented and taken.
	if err := s.Present(ctx); err != nil {
		t.Fatal(err)
	}
	if taken, err := s.WaitTaken(ctx, time.Second); !taken || err != nil {
		t.Fatalf("WaitTaken = %v, %v", taken, err)
	}
	ps, _ := s.PresentStatus(ctx)
	if ps.PaidAmount() != 30000 || !ps.Requested.Equal(dispenser.Mix{"CST1": 3, "CST2": 1}) {
		t.Fatalf("PresentStatus = %+v", ps)
	}
	checkBalance(t, s)
}

func TestCountUnknown(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, filepath.Join(t.TempDir(), "state.json"), Faults{CountUnknown: true})
	_, err := s.Dispense(ctx, dispenser.Mix{"CST1": 2}, token(t, s, 20000))
	var de *dispenser.DispenseError
	if !errors.As(err, &de) || !errors.Is(err, dispenser.ErrCountUnknown) || de.CountKnown {
		t.Fatalf("err = %v (%+v)", err, de)
	}
	ps, _ := s.PresentStatus(ctx)
	if ps.CountKnown || ps.Dispensed != nil || ps.State != dispenser.PresentFailed {
		t.Fatalf("PresentStatus = %+v", ps)
	}
	if stacker, _ := s.Stacked(); !stacker.Equal(dispenser.Mix{"CST1": 2}) {
		t.Fatalf("true stacker = %v", stacker)
	}
	if st, _ := s.Status(ctx); st.Device != dispenser.StateHardwareError {
		t.Fatalf("device %s", st.Device)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if c := counters(s)["CST1"]; c.Rejected != 2 {
		t.Fatalf("counters %+v", c)
	}
	checkBalance(t, s)
}

func TestNotesNotTakenAndRetract(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, filepath.Join(t.TempDir(), "state.json"), Faults{NotesNotTaken: true})
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 1, "CST2": 1}, token(t, s, 15000)); err != nil {
		t.Fatal(err)
	}
	if err := s.Present(ctx); err != nil {
		t.Fatal(err)
	}
	if taken, err := s.WaitTaken(ctx, 5*time.Millisecond); taken || err != nil {
		t.Fatalf("WaitTaken = %v, %v", taken, err)
	}
	// Notes at the exit block the next dispense.
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 1}, token(t, s, 10000)); !errors.Is(err, dispenser.ErrSequence) {
		t.Fatalf("Dispense with notes at the exit: %v", err)
	}
	res, err := s.Retract(ctx)
	if err != nil || res.Amount != 15000 || !res.Mix.Equal(dispenser.Mix{"CST1": 1, "CST2": 1}) {
		t.Fatalf("Retract = %+v, %v", res, err)
	}
	ps, _ := s.PresentStatus(ctx)
	if ps.State != dispenser.PresentRetracted || ps.Taken || ps.RetractedAmount != 15000 || ps.PaidAmount() != 0 {
		t.Fatalf("PresentStatus = %+v", ps)
	}
	if c := counters(s); c["CST1"].Retracted != 1 || c["CST2"].Retracted != 1 {
		t.Fatalf("counters %+v", c)
	}
	checkBalance(t, s)
}

func TestTakeDelayLongerThanTimeout(t *testing.T) {
	ctx := context.Background()
	s, err := New(Config{Units: testUnits(), TokenKey: key, Exponent: 2, TakeDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 1}, token(t, s, 10000)); err != nil {
		t.Fatal(err)
	}
	if err := s.Present(ctx); err != nil {
		t.Fatal(err)
	}
	if taken, err := s.WaitTaken(ctx, time.Millisecond); taken || err != nil {
		t.Fatalf("WaitTaken = %v, %v", taken, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.WaitTaken(cctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitTaken canceled: %v", err)
	}
}

func TestShutterFailure(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, filepath.Join(t.TempDir(), "state.json"), Faults{ShutterFailure: true})
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 2}, token(t, s, 20000)); err != nil {
		t.Fatal(err)
	}
	err := s.Present(ctx)
	var de *dispenser.DispenseError
	if !errors.As(err, &de) || !errors.Is(err, dispenser.ErrShutter) || de.Dispensed.Notes() != 0 || !de.CountKnown {
		t.Fatalf("Present = %v", err)
	}
	ps, _ := s.PresentStatus(ctx)
	if ps.State != dispenser.PresentStacked || ps.PaidAmount() != 0 {
		t.Fatalf("PresentStatus = %+v", ps)
	}
	res, err := s.Retract(ctx)
	if err != nil || res.Amount != 20000 {
		t.Fatalf("Retract = %+v, %v", res, err)
	}
	if c := counters(s)["CST1"]; c.Rejected != 2 || c.Retracted != 0 {
		t.Fatalf("never-presented notes should go to the reject bin: %+v", c)
	}
	if ps, _ = s.PresentStatus(ctx); ps.State != dispenser.PresentRejected {
		t.Fatalf("state %s", ps.State)
	}
}

func TestOffline(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, "", Faults{})
	tok := token(t, s, 10000)
	s.SetFaults(Faults{Offline: true})
	if st, err := s.Status(ctx); err != nil || st.Device != dispenser.StateOffline || st.Ready() {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if _, err := s.CommandNonce(ctx); !errors.Is(err, dispenser.ErrDeviceNotReady) {
		t.Fatalf("CommandNonce: %v", err)
	}
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 1}, tok); !errors.Is(err, dispenser.ErrDeviceNotReady) {
		t.Fatalf("Dispense: %v", err)
	}
	for name, err := range map[string]error{
		"Present": s.Present(ctx), "Reset": s.Reset(ctx),
		"Retract":       func() error { _, err := s.Retract(ctx); return err }(),
		"PresentStatus": func() error { _, err := s.PresentStatus(ctx); return err }(),
		"WaitTaken":     func() error { _, err := s.WaitTaken(ctx, time.Millisecond); return err }(),
	} {
		if !errors.Is(err, dispenser.ErrDeviceNotReady) {
			t.Errorf("%s offline: %v", name, err)
		}
	}
	s.SetFaults(Faults{})
	// One token, one attempt: the refused attempt used it up.
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 1}, tok); !errors.Is(err, dispenser.ErrNoCommandNonce) {
		t.Fatalf("back online, the refused token: %v", err)
	}
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 1}, token(t, s, 10000)); err != nil {
		t.Fatalf("back online, a fresh token: %v", err)
	}
}

func TestRestartKeepsStateAndRefusesOldToken(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "state.json")
	s := newSim(t, file, Faults{NotesNotTaken: true})
	tok := token(t, s, 20000)
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 2}, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.Present(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := s.PresentStatus(ctx)
	pending := token(t, s, 10000) // issued, never used before the "crash"

	// Restart: a new Sim on the same file (the old one is abandoned).
	r := newSim(t, file, Faults{})
	after, err := r.PresentStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", after) != fmt.Sprintf("%+v", before) || after.State != dispenser.PresentPresented || after.PresentedAmount != 20000 {
		t.Fatalf("PresentStatus after restart = %+v, before %+v", after, before)
	}
	if c := counters(r)["CST1"]; c.Count != 48 || c.Dispensed != 2 {
		t.Fatalf("counters after restart: %+v", c)
	}
	if _, err := r.Retract(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Dispense(ctx, dispenser.Mix{"CST1": 1}, pending); !errors.Is(err, dispenser.ErrNoCommandNonce) {
		t.Fatalf("pre-restart token: %v", err)
	}
	n, _ := r.CommandNonce(ctx)
	if n == before.Nonce {
		t.Fatal("nonce reused after restart")
	}
	if _, err := r.Dispense(ctx, dispenser.Mix{"CST1": 1}, pending); !errors.Is(err, dispenser.ErrInvalidTokenNonce) {
		t.Fatalf("pre-restart token after new nonce: %v", err)
	}
	raw, _ := os.ReadFile(file)
	if bytes.Contains(raw, key) {
		t.Fatal("state file contains the token key")
	}
	checkBalance(t, r)
}

func TestNoncesUnique(t *testing.T) {
	s := newSim(t, filepath.Join(t.TempDir(), "state.json"), Faults{})
	seen := map[string]bool{}
	for range 200 {
		n, err := s.CommandNonce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(n) != 32 || seen[n] {
			t.Fatalf("nonce %q bad or repeated", n)
		}
		seen[n] = true
	}
}

// TestTokenExponent: Dispense reads a token with the configured currency
// exponent. A token for 500 XPF (no minor unit) covers 500 minor units, not
// the 50000 a guessed exponent of 2 would allow.
func TestTokenExponent(t *testing.T) {
	ctx := context.Background()
	s, err := New(Config{Units: []dispenser.CashUnit{{ID: "A", Denomination: 500, Currency: "XPF", Count: 200}}, TokenKey: key, MaxNotes: 200})
	if err != nil {
		t.Fatal(err)
	}
	sign := func() string {
		n, err := s.CommandNonce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := dispenser.BuildToken(n, 500, "XPF", 0, dispenser.HMACSHA256(key))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if _, err := s.Dispense(ctx, dispenser.Mix{"A": 100}, sign()); !errors.Is(err, dispenser.ErrInvalidToken) {
		t.Fatalf("100 notes of 500 XPF on a 500 XPF token: err = %v, want ErrInvalidToken", err)
	}
	if c := counters(s)["A"]; c.Count != 200 || c.Dispensed != 0 {
		t.Fatalf("counters changed on refusal: %+v", c)
	}
	res, err := s.Dispense(ctx, dispenser.Mix{"A": 1}, sign())
	if err != nil {
		t.Fatalf("1 note of 500 XPF on a 500 XPF token: %v", err)
	}
	if res.Mix["A"] != 1 || res.Amount != 500 {
		t.Fatalf("result %+v", res)
	}
}

func TestNewErrors(t *testing.T) {
	bad := []Config{
		{Units: testUnits()}, // no key
		{Units: []dispenser.CashUnit{{ID: "A", Denomination: 100, Currency: "CNY"}, {ID: "A", Denomination: 100, Currency: "CNY"}}, TokenKey: key},
		{Units: []dispenser.CashUnit{{ID: "A", Denomination: 0, Currency: "CNY"}}, TokenKey: key},
		{Units: testUnits(), TokenKey: key, MaxNotes: -1},
		{Units: testUnits(), TokenKey: key, Exponent: -1},
		{Units: testUnits(), TokenKey: key, Exponent: 4},
	}
	for i, c := range bad {
		if _, err := New(c); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
	corrupt := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(corrupt, []byte("{not json"), 0o600)
	if _, err := New(Config{TokenKey: key, StateFile: corrupt}); err == nil {
		t.Error("corrupt state file accepted")
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, filepath.Join(t.TempDir(), "state.json"), Faults{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				if _, err := s.Status(ctx); err != nil {
					t.Error(err)
				}
				s.PresentStatus(ctx)
				s.Counters()
			}
		})
	}
	for range 5 {
		if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 1}, token(t, s, 10000)); err != nil {
			t.Fatal(err)
		}
		if err := s.Present(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.WaitTaken(ctx, time.Second); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	wg.Wait()
	if c := counters(s)["CST1"]; c.Dispensed != 5 {
		t.Fatalf("%+v", c)
	}
}

// TestSurvivesSIGKILL runs a dispense in a child process that kills itself
// with SIGKILL right after Present, then asks a new Sim what was paid.
func TestSurvivesSIGKILL(t *testing.T) {
	if file := os.Getenv("DISPENSERSIM_CHILD_STATE"); file != "" {
		ctx := context.Background()
		s := newSim(t, file, Faults{})
		if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 3}, token(t, s, 30000)); err != nil {
			t.Fatal(err)
		}
		if err := s.Present(ctx); err != nil {
			t.Fatal(err)
		}
		p, _ := os.FindProcess(os.Getpid())
		_ = p.Kill() // SIGKILL on Unix, TerminateProcess on Windows
		select {}    // not reached
	}
	file := filepath.Join(t.TempDir(), "state.json")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSurvivesSIGKILL$", "-test.count=1")
	cmd.Env = append(os.Environ(), "DISPENSERSIM_CHILD_STATE="+file)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("child did not die by signal: %v\n%s", err, out)
	}
	s := newSim(t, file, Faults{})
	ps, err := s.PresentStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ps.State != dispenser.PresentPresented || ps.PresentedAmount != 30000 || !ps.Presented.Equal(dispenser.Mix{"CST1": 3}) || ps.Nonce == "" {
		t.Fatalf("PresentStatus after SIGKILL = %+v", ps)
	}
	if c := counters(s)["CST1"]; c.Count != 47 || c.Dispensed != 3 {
		t.Fatalf("counters after SIGKILL = %+v", c)
	}
}

func BenchmarkDispenseCycle(b *testing.B) {
	ctx := context.Background()
	s, err := New(Config{Units: []dispenser.CashUnit{{ID: "A", Denomination: 100, Currency: "CNY", Count: 1 << 30}}, TokenKey: key, Exponent: 2, StateFile: filepath.Join(b.TempDir(), "s.json")})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		n, _ := s.CommandNonce(ctx)
		tok, _ := dispenser.BuildToken(n, 100, "CNY", 2, dispenser.HMACSHA256(key))
		if _, err := s.Dispense(ctx, dispenser.Mix{"A": 1}, tok); err != nil {
			b.Fatal(err)
		}
		s.Present(ctx)
		s.WaitTaken(ctx, time.Second)
	}
}

// A token refused for any reason is used up: after the device is cleared it
// still cannot pay (the anti-jackpotting rule: one token, one attempt).
func TestRefusedTokenIsUsedUp(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, "", Faults{})
	// Leave notes at the exit so the next Dispense is refused with a
	// sequence error before any note moves.
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 1}, token(t, s, 10000)); err != nil {
		t.Fatal(err)
	}
	if err := s.Present(ctx); err != nil {
		t.Fatal(err)
	}
	tok := token(t, s, 10000)
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 1}, tok); !errors.Is(err, dispenser.ErrSequence) {
		t.Fatalf("dispense with notes left: %v", err)
	}
	if _, err := s.Retract(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 1}, tok); !errors.Is(err, dispenser.ErrNoCommandNonce) {
		t.Fatalf("refused token paid after the retract: %v", err)
	}
	// Retract and Reset clear a nonce that was issued but not yet used.
	tok = token(t, s, 10000)
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 1}, tok); !errors.Is(err, dispenser.ErrNoCommandNonce) {
		t.Fatalf("token issued before a reset paid: %v", err)
	}
}

// TestAfterSave: the hook sees each action once the device's memory holds
// it, in order, and the memory is on disk when it is called.
func TestAfterSave(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "state.json")
	var got []string
	s, err := New(Config{Units: testUnits(), MaxNotes: 40, TokenKey: key, Exponent: 2, StateFile: file, TakeDelay: time.Millisecond,
		AfterSave: func(action string) {
			st, err := loadState(file)
			if err != nil {
				t.Errorf("%s: %v", action, err)
				return
			}
			got = append(got, fmt.Sprintf("%s:%s", action, st.Last.State))
		}})
	if err != nil {
		t.Fatal(err)
	}
	// Two withdrawals: one taken, one left and retracted; then a reset.
	for _, take := range []bool{true, false} {
		if !take {
			s.SetFaults(Faults{NotesNotTaken: true})
		}
		if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 1}, token(t, s, 10000)); err != nil {
			t.Fatal(err)
		}
		if err := s.Present(ctx); err != nil {
			t.Fatal(err)
		}
		if taken, err := s.WaitTaken(ctx, 50*time.Millisecond); taken != take || err != nil {
			t.Fatalf("WaitTaken = %v, %v", taken, err)
		}
	}
	if _, err := s.Retract(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"nonce:none", "Dispense:stacked", "Present:presented", "Taken:taken",
		"Dispense:stacked", "Present:presented", "Retract:retracted", "Reset:retracted"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("AfterSave saw\n%q\nwant\n%q", got, want)
	}
}
