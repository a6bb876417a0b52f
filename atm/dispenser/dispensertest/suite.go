package dispensertest

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
)

// Currency and exponent of the suite's cash units.
const (
	currency = "CNY"
	exponent = 2
)

// tokenKey is the suite's host token key (test-only).
var tokenKey = []byte("conformance suite token key 0123")

// epoch is where the suite's fake clock starts; nothing depends on today.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Units returns the suite's standard cassettes: two units (serial
// dispensers have two), the second one low.
func Units() []dispenser.CashUnit {
	return []dispenser.CashUnit{
		{ID: "CST1", Denomination: 10000, Currency: currency, Count: 50},
		{ID: "CST2", Denomination: 5000, Currency: currency, Count: 3},
	}
}

// env is one test's device and clock.
type env struct {
	t   *testing.T
	h   Harness
	clk *clock.Fake
	dev *Device
	d   Dispenser
	ctx context.Context
}

func start(t *testing.T, h Harness, units []dispenser.CashUnit) *env {
	t.Helper()
	clk := clock.NewFake(epoch)
	dev := h(t, Setup{Units: units, MaxNotes: 40, LowThreshold: 5, TokenKey: tokenKey, Exponent: exponent,
		TakeDelay: 2 * time.Second, Clock: clk, Dir: t.TempDir()})
	if dev == nil || dev.Dispenser == nil || dev.SetFaults == nil || dev.Remaining == nil || dev.Restart == nil {
		t.Fatal("harness returned an incomplete Device")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return &env{t: t, h: h, clk: clk, dev: dev, d: dev.Dispenser, ctx: ctx}
}

// faults injects f or skips the test when the simulator cannot.
func (e *env) faults(f Faults) {
	e.t.Helper()
	if err := e.dev.SetFaults(f); err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			e.t.Skipf("the simulator cannot inject %+v: %v", f, err)
		}
		e.t.Fatalf("SetFaults(%+v): %v", f, err)
	}
}

// sign returns a host token for the device's next command nonce.
func (e *env) sign(amount int64) (token, nonce string) {
	e.t.Helper()
	nonce, err := e.d.CommandNonce(e.ctx)
	if err != nil {
		e.t.Fatalf("CommandNonce: %v", err)
	}
	token, err = dispenser.BuildToken(nonce, amount, currency, exponent, dispenser.HMACSHA256(tokenKey))
	if err != nil {
		e.t.Fatal(err)
	}
	return token, nonce
}

// remaining reads the ground truth.
func (e *env) remaining() map[string]int { return maps.Clone(e.dev.Remaining()) }

// moved returns before - after per unit (zero entries dropped).
func moved(before, after map[string]int) dispenser.Mix {
	m := dispenser.Mix{}
	for id, n := range before {
		if d := n - after[id]; d != 0 {
			m[id] = d
		}
	}
	return m
}

// amount is the value of mix in the suite's units.
func amount(t *testing.T, mix dispenser.Mix) int64 {
	t.Helper()
	a, err := mix.Amount(Units())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// waitTaken runs WaitTaken and advances the fake clock until it returns
// (bounded: the clock moves at most 100 steps of step).
func (e *env) waitTaken(timeout, step time.Duration) (bool, error) {
	e.t.Helper()
	type res struct {
		taken bool
		err   error
	}
	done := make(chan res, 1)
	go func() {
		taken, err := e.d.WaitTaken(e.ctx, timeout)
		done <- res{taken, err}
	}()
	for range 100 {
		select {
		case r := <-done:
			return r.taken, r.err
		case <-e.clk.Armed():
		case <-time.After(10 * time.Millisecond):
		}
		e.clk.Advance(step)
	}
	e.t.Fatal("WaitTaken did not return after 100 clock steps")
	return false, nil
}

// status reads Status and fails the test on an error.
func (e *env) status() dispenser.Status {
	e.t.Helper()
	st, err := e.d.Status(e.ctx)
	if err != nil {
		e.t.Fatalf("Status: %v", err)
	}
	return st
}

// reset calls Reset, which the device must have after a fault.
func (e *env) reset() {
	e.t.Helper()
	r, ok := e.d.(Resetter)
	if !ok {
		e.t.Fatal("the device latched a fault but has no Reset")
	}
	if err := r.Reset(e.ctx); err != nil {
		e.t.Fatalf("Reset: %v", err)
	}
}

// presentStatus reads the last dispense's status when the driver has the
// capability (ok false otherwise).
func (e *env) presentStatus() (dispenser.PresentStatus, bool) {
	e.t.Helper()
	p, ok := e.d.(PresentStatuser)
	if !ok {
		return dispenser.PresentStatus{}, false
	}
	ps, err := p.PresentStatus(e.ctx)
	if err != nil {
		e.t.Fatalf("PresentStatus: %v", err)
	}
	return ps, true
}

// deliver runs Present and WaitTaken after a dispense, as the core does,
// and checks they agree with the device's capabilities.
func (e *env) deliver() {
	e.t.Helper()
	if err := e.d.Present(e.ctx); err != nil {
		e.t.Fatalf("Present: %v", err)
	}
	taken, err := e.waitTaken(30*time.Second, time.Second)
	if err != nil || !taken {
		e.t.Fatalf("WaitTaken = %v, %v; want taken", taken, err)
	}
}

// Run runs the conformance suite against the devices h starts.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"StatusAndUnits", testStatusAndUnits},
		{"EmptyUnit", testEmptyUnit},
		{"NoncesFresh", testNoncesFresh},
		{"TokenRefused", testTokenRefused},
		{"DispensePresentTake", testDispensePresentTake},
		{"NotTakenRetracted", testNotTakenRetracted},
		{"Refusals", testRefusals},
		{"Jam", testJam},
		{"ShortDispense", testShortDispense},
		{"CountUnknown", testCountUnknown},
		{"ShutterFailure", testShutterFailure},
		{"Offline", testOffline},
		{"Restart", testRestart},
		{"LinkLostMidDispense", testLinkLost},
		{"PresentStatusNamesEachDispense", testPresentStatusPerDispense},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

func testStatusAndUnits(t *testing.T, h Harness) {
	e := start(t, h, Units())
	st := e.status()
	if st.Device != dispenser.StateOnline {
		t.Fatalf("device %s, want online", st.Device)
	}
	if st.MaxNotes != 40 {
		t.Errorf("MaxNotes %d, want 40", st.MaxNotes)
	}
	want := []dispenser.CashUnit{
		{ID: "CST1", Denomination: 10000, Currency: currency, Count: 50, Status: dispenser.UnitOK},
		{ID: "CST2", Denomination: 5000, Currency: currency, Count: 3, Status: dispenser.UnitLow},
	}
	if !slices.Equal(st.Units, want) {
		t.Fatalf("units\n got %+v\nwant %+v", st.Units, want)
	}
	if got := e.remaining(); !maps.Equal(got, map[string]int{"CST1": 50, "CST2": 3}) {
		t.Fatalf("simulator holds %v", got)
	}
}

func testEmptyUnit(t *testing.T, h Harness) {
	units := Units()
	units[1].Count = 0
	e := start(t, h, units)
	st := e.status()
	if len(st.Units) != 2 || st.Units[1].Status != dispenser.UnitEmpty || st.Units[1].Count != 0 {
		t.Fatalf("units %+v, want CST2 empty", st.Units)
	}
	before := e.remaining()
	tok, _ := e.sign(5000)
	_, err := e.d.Dispense(e.ctx, dispenser.Mix{"CST2": 1}, tok)
	if !errors.Is(err, dispenser.ErrNotDispensable) {
		t.Fatalf("dispense from an empty unit: %v, want ErrNotDispensable", err)
	}
	if m := moved(before, e.remaining()); len(m) != 0 {
		t.Fatalf("refused dispense moved %s", m)
	}
}

var nonceRE = regexp.MustCompile(`^[0-9A-F]{32}$`)

func testNoncesFresh(t *testing.T, h Harness) {
	e := start(t, h, Units())
	seen := map[string]bool{}
	take := func(n int) {
		for range n {
			nonce, err := e.d.CommandNonce(e.ctx)
			if err != nil {
				t.Fatalf("CommandNonce: %v", err)
			}
			if !nonceRE.MatchString(nonce) {
				t.Fatalf("nonce %q is not 32 upper-case hex digits", nonce)
			}
			if seen[nonce] {
				t.Fatalf("nonce %s issued twice", nonce)
			}
			seen[nonce] = true
		}
	}
	take(50)
	e.d = e.dev.Restart(t)
	e.reconnected()
	take(50)
}

// reconnected waits (advancing the clock, bounded) until the driver talks
// to the device again after a restart.
func (e *env) reconnected() {
	e.t.Helper()
	var err error
	for range 100 {
		ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
		var st dispenser.Status
		st, err = e.d.Status(ctx)
		cancel()
		if err == nil && st.Device == dispenser.StateOnline {
			return
		}
		e.clk.Advance(time.Second)
	}
	e.t.Fatalf("driver not back online after a restart: %v", err)
}

func testTokenRefused(t *testing.T, h Harness) {
	e := start(t, h, Units())
	mix := dispenser.Mix{"CST1": 2}
	before := e.remaining()
	check := func(what string, err error, want error) {
		t.Helper()
		if !errors.Is(err, want) || !dispenser.IsTokenError(err) {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
		if m := moved(before, e.remaining()); len(m) != 0 {
			t.Fatalf("%s moved %s", what, m)
		}
	}

	// No token at all.
	e.sign(20000)
	_, err := e.d.Dispense(e.ctx, mix, "")
	check("no token", err, dispenser.ErrInvalidToken)

	// Signed with another key.
	nonce, err := e.d.CommandNonce(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := dispenser.BuildToken(nonce, 20000, currency, exponent, dispenser.HMACSHA256([]byte("not the device's key 0123456789")))
	_, err = e.d.Dispense(e.ctx, mix, forged)
	check("forged", err, dispenser.ErrInvalidTokenHMAC)

	// Too small for the mix.
	small, _ := e.sign(19999)
	_, err = e.d.Dispense(e.ctx, mix, small)
	check("too small", err, dispenser.ErrInvalidToken)

	// Another currency.
	nonce, err = e.d.CommandNonce(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	eur, _ := dispenser.BuildToken(nonce, 20000, "EUR", exponent, dispenser.HMACSHA256(tokenKey))
	_, err = e.d.Dispense(e.ctx, mix, eur)
	check("other currency", err, dispenser.ErrInvalidToken)

	// Malformed.
	e.sign(20000)
	_, err = e.d.Dispense(e.ctx, mix, "NONCE=00,TOKENFORMAT=1")
	check("malformed", err, dispenser.ErrInvalidTokenFormat)

	// For a nonce that a newer one replaced.
	stale, _ := e.sign(20000)
	e.sign(20000)
	_, err = e.d.Dispense(e.ctx, mix, stale)
	check("stale nonce", err, dispenser.ErrInvalidTokenNonce)

	// A good token pays once; replayed it is refused.
	good, _ := e.sign(20000)
	res, err := e.d.Dispense(e.ctx, mix, good)
	if err != nil || !res.Mix.Equal(mix) {
		t.Fatalf("good token: %+v, %v", res, err)
	}
	e.deliver()
	before = e.remaining()
	_, err = e.d.Dispense(e.ctx, mix, good)
	check("replayed (no nonce)", err, dispenser.ErrNoCommandNonce)
	e.sign(20000)
	_, err = e.d.Dispense(e.ctx, mix, good)
	check("replayed (new nonce)", err, dispenser.ErrInvalidTokenNonce)

	// A refused token used up the nonce: even a good token for it no
	// longer pays.
	tok, _ := e.sign(20000)
	if _, err := e.d.Dispense(e.ctx, dispenser.Mix{"CST1": 3}, tok); !errors.Is(err, dispenser.ErrInvalidToken) {
		t.Fatalf("over the token: %v", err)
	}
	_, err = e.d.Dispense(e.ctx, mix, tok)
	check("after a refusal", err, dispenser.ErrNoCommandNonce)
}

func testDispensePresentTake(t *testing.T, h Harness) {
	e := start(t, h, Units())
	mix := dispenser.Mix{"CST1": 2, "CST2": 1}
	before := e.remaining()
	tok, nonce := e.sign(25000)
	res, err := e.d.Dispense(e.ctx, mix, tok)
	if err != nil {
		t.Fatalf("Dispense: %v", err)
	}
	if !res.Mix.Equal(mix) || res.Amount != 25000 {
		t.Fatalf("result %+v, want %s for 250.00", res, mix)
	}
	if m := moved(before, e.remaining()); !m.Equal(mix.Plus(res.Rejected)) {
		t.Fatalf("cassettes gave %s, want %s plus rejects %s", m, mix, res.Rejected)
	}
	if e.dev.Caps.Present {
		// Notes are stacked: a second dispense is out of sequence.
		tok2, _ := e.sign(10000)
		if _, err := e.d.Dispense(e.ctx, dispenser.Mix{"CST1": 1}, tok2); !errors.Is(err, dispenser.ErrSequence) {
			t.Fatalf("dispense with notes stacked: %v, want ErrSequence", err)
		}
	}
	// What recovery would read at each step: the dispense is this
	// session's (by nonce or token), and where its notes are.
	wantState := func(step string, want dispenser.PresentState) dispenser.PresentStatus {
		t.Helper()
		ps, ok := e.presentStatus()
		if !ok {
			return ps
		}
		if !ps.Of(nonce, tok) || ps.Seq == 0 || ps.State != want || !ps.CountKnown || !ps.Dispensed.Equal(mix) {
			t.Fatalf("present status %s: %+v, want %s of this dispense", step, ps, want)
		}
		return ps
	}
	if e.dev.Caps.Present {
		wantState("after the dispense", dispenser.PresentStacked)
		if err := e.d.Present(e.ctx); err != nil {
			t.Fatalf("Present: %v", err)
		}
		if e.dev.Caps.Take {
			wantState("with the notes at the exit", dispenser.PresentPresented)
		}
		taken, err := e.waitTaken(30*time.Second, time.Second)
		if err != nil || !taken {
			t.Fatalf("WaitTaken = %v, %v; want taken", taken, err)
		}
	} else {
		e.deliver()
	}
	if _, err := e.d.Retract(e.ctx); !errors.Is(err, dispenser.ErrNoItems) {
		t.Fatalf("Retract after the take: %v, want ErrNoItems", err)
	}
	if ps, ok := e.presentStatus(); ok {
		if !ps.Of(nonce, tok) || ps.Currency != currency || !ps.CountKnown || !ps.Dispensed.Equal(mix) ||
			ps.DispensedAmount != 25000 || ps.PresentedAmount != 25000 || ps.PaidAmount() != 25000 {
			t.Fatalf("present status %+v", ps)
		}
		if e.dev.Caps.Take && (ps.State != dispenser.PresentTaken || !ps.Taken) {
			t.Fatalf("present status %s taken=%v, want taken", ps.State, ps.Taken)
		}
	}
	st := e.status()
	if st.Units[0].Count != 48 || st.Units[1].Count != 2 {
		t.Fatalf("counts after the dispense: %+v", st.Units)
	}
	// Present with nothing dispensed since is out of sequence.
	if e.dev.Caps.Present {
		if err := e.d.Present(e.ctx); !errors.Is(err, dispenser.ErrSequence) {
			t.Fatalf("Present with nothing stacked: %v, want ErrSequence", err)
		}
	}
}

func testNotTakenRetracted(t *testing.T, h Harness) {
	e := start(t, h, Units())
	if !e.dev.Caps.Take || !e.dev.Caps.Retract {
		t.Skip("the device cannot sense taking or retract")
	}
	e.faults(Faults{NotesNotTaken: true})
	mix := dispenser.Mix{"CST1": 1}
	tok, _ := e.sign(10000)
	if _, err := e.d.Dispense(e.ctx, mix, tok); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Present(e.ctx); err != nil {
		t.Fatal(err)
	}
	taken, err := e.waitTaken(10*time.Second, time.Second)
	if err != nil || taken {
		t.Fatalf("WaitTaken = %v, %v; want not taken", taken, err)
	}
	res, err := e.d.Retract(e.ctx)
	if err != nil || !res.Mix.Equal(mix) || res.Amount != 10000 {
		t.Fatalf("Retract = %+v, %v; want %s", res, err, mix)
	}
	if ps, ok := e.presentStatus(); ok {
		if ps.State != dispenser.PresentRetracted || !ps.Retracted.Equal(mix) || ps.PaidAmount() != 0 {
			t.Fatalf("present status %+v, want retracted", ps)
		}
	}
	if _, err := e.d.Retract(e.ctx); !errors.Is(err, dispenser.ErrNoItems) {
		t.Fatalf("second Retract: %v, want ErrNoItems", err)
	}
}

func testRefusals(t *testing.T, h Harness) {
	e := start(t, h, Units())
	before := e.remaining()
	cases := []struct {
		what string
		mix  dispenser.Mix
		want error
	}{
		{"too many notes", dispenser.Mix{"CST1": 41}, dispenser.ErrTooManyItems},
		{"more than the unit holds", dispenser.Mix{"CST2": 4}, dispenser.ErrNotDispensable},
		{"unknown unit", dispenser.Mix{"CST9": 1}, dispenser.ErrNotDispensable},
		{"empty mix", dispenser.Mix{}, dispenser.ErrNotDispensable},
	}
	for _, c := range cases {
		tok, _ := e.sign(1000000)
		if _, err := e.d.Dispense(e.ctx, c.mix, tok); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.what, err, c.want)
		}
	}
	if m := moved(before, e.remaining()); len(m) != 0 {
		t.Fatalf("refusals moved %s", m)
	}
	if e.dev.Caps.Present {
		if err := e.d.Present(e.ctx); !errors.Is(err, dispenser.ErrSequence) {
			t.Fatalf("Present before any dispense: %v, want ErrSequence", err)
		}
	}
	// The device still works.
	tok, _ := e.sign(10000)
	if _, err := e.d.Dispense(e.ctx, dispenser.Mix{"CST1": 1}, tok); err != nil {
		t.Fatalf("dispense after refusals: %v", err)
	}
}

// dispenseError asserts err is a *DispenseError wrapping want.
func dispenseError(t *testing.T, err, want error) *dispenser.DispenseError {
	t.Helper()
	var de *dispenser.DispenseError
	if !errors.As(err, &de) || !errors.Is(err, want) {
		t.Fatalf("error %v (%T), want a *DispenseError wrapping %v", err, err, want)
	}
	return de
}

// recovers checks the device reports a fault, then Reset brings it back.
func (e *env) recovers() {
	e.t.Helper()
	if st := e.status(); st.Device == dispenser.StateOnline {
		e.t.Fatal("device online after a hardware fault, before Reset")
	}
	if _, err := e.d.CommandNonce(e.ctx); !errors.Is(err, dispenser.ErrDeviceNotReady) {
		e.t.Fatalf("CommandNonce with a latched fault: %v, want ErrDeviceNotReady", err)
	}
	e.reset()
	if st := e.status(); st.Device != dispenser.StateOnline {
		e.t.Fatalf("device %s after Reset", st.Device)
	}
}

func testJam(t *testing.T, h Harness) {
	e := start(t, h, Units())
	e.faults(Faults{Jam: true, JamAfter: 2})
	mix := dispenser.Mix{"CST1": 3, "CST2": 1}
	before := e.remaining()
	tok, _ := e.sign(35000)
	_, err := e.d.Dispense(e.ctx, mix, tok)
	var de *dispenser.DispenseError
	if e.dev.Caps.Present {
		// The picked notes are stuck inside: nothing reached the customer.
		de = dispenseError(t, err, dispenser.ErrJam)
	} else {
		// No shutter: the notes that passed the exit are paid.
		de = dispenseError(t, err, dispenser.ErrShortDispense)
	}
	if !de.CountKnown || de.Dispensed.Notes() != 2 {
		t.Fatalf("jam after 2 notes reported %s (count known %v)", de.Dispensed, de.CountKnown)
	}
	m := moved(before, e.remaining())
	for id, n := range de.Dispensed {
		if n > mix[id] || m[id] < n {
			t.Fatalf("reported %s, cassettes gave %s, mix %s", de.Dispensed, m, mix)
		}
	}
	if e.dev.Caps.Present && !m.Equal(de.Dispensed) {
		t.Fatalf("reported %s, cassettes gave %s", de.Dispensed, m)
	}
	e.faults(Faults{})
	e.recovers()
	if ps, ok := e.presentStatus(); ok && e.dev.Caps.Present {
		if ps.State != dispenser.PresentRejected || ps.PaidAmount() != 0 {
			t.Fatalf("present status after the jam and reset: %+v", ps)
		}
	}
}

func testShortDispense(t *testing.T, h Harness) {
	e := start(t, h, Units())
	e.faults(Faults{ShortDispense: 1})
	mix := dispenser.Mix{"CST1": 3}
	before := e.remaining()
	tok, _ := e.sign(30000)
	_, err := e.d.Dispense(e.ctx, mix, tok)
	de := dispenseError(t, err, dispenser.ErrShortDispense)
	if !de.CountKnown || !de.Dispensed.Equal(dispenser.Mix{"CST1": 2}) {
		t.Fatalf("short dispense reported %s (count known %v), want CST1:2", de.Dispensed, de.CountKnown)
	}
	if m := moved(before, e.remaining()); !m.Equal(de.Dispensed) {
		t.Fatalf("cassettes gave %s, reported %s", m, de.Dispensed)
	}
	e.faults(Faults{})
	if e.dev.Caps.Present {
		// What was dispensed can be presented and taken.
		e.deliver()
		if ps, ok := e.presentStatus(); ok && ps.PaidAmount() != 20000 {
			t.Fatalf("paid %d after a short dispense, want 20000", ps.PaidAmount())
		}
	}
}

func testCountUnknown(t *testing.T, h Harness) {
	e := start(t, h, Units())
	e.faults(Faults{CountUnknown: true})
	tok, nonce := e.sign(20000)
	_, err := e.d.Dispense(e.ctx, dispenser.Mix{"CST1": 2}, tok)
	if !errors.Is(err, dispenser.ErrCountUnknown) {
		t.Fatalf("count unknown: %v, want ErrCountUnknown", err)
	}
	var de *dispenser.DispenseError
	if errors.As(err, &de) && de.CountKnown {
		t.Fatalf("count unknown reported as known: %v", err)
	}
	if ps, ok := e.presentStatus(); ok && (!ps.Of(nonce, tok) || ps.CountKnown) {
		t.Fatalf("present status %+v, want this dispense with its count unknown", ps)
	}
	e.faults(Faults{})
	e.recovers()
}

func testShutterFailure(t *testing.T, h Harness) {
	e := start(t, h, Units())
	if !e.dev.Caps.Present {
		t.Skip("the device has no shutter")
	}
	e.faults(Faults{ShutterFailure: true})
	mix := dispenser.Mix{"CST1": 1, "CST2": 1}
	tok, _ := e.sign(15000)
	if _, err := e.d.Dispense(e.ctx, mix, tok); err != nil {
		t.Fatal(err)
	}
	de := dispenseError(t, e.d.Present(e.ctx), dispenser.ErrShutter)
	if !de.CountKnown || de.Dispensed.Notes() != 0 {
		t.Fatalf("shutter failure reported %s reaching the customer", de.Dispensed)
	}
	e.faults(Faults{})
	res, err := e.d.Retract(e.ctx)
	if err != nil || !res.Mix.Equal(mix) {
		t.Fatalf("Retract after a shutter failure = %+v, %v; want %s", res, err, mix)
	}
	if ps, ok := e.presentStatus(); ok && ps.PaidAmount() != 0 {
		t.Fatalf("paid %d after a shutter failure", ps.PaidAmount())
	}
}

func testOffline(t *testing.T, h Harness) {
	e := start(t, h, Units())
	e.faults(Faults{Offline: true})
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if st, err := e.d.Status(ctx); err == nil && st.Device == dispenser.StateOnline {
		t.Fatal("offline device reported online")
	}
	before := e.remaining()
	if _, err := e.d.CommandNonce(ctx); !errors.Is(err, dispenser.ErrDeviceNotReady) {
		t.Fatalf("CommandNonce offline: %v, want ErrDeviceNotReady", err)
	}
	if m := moved(before, e.remaining()); len(m) != 0 {
		t.Fatalf("offline device moved %s", m)
	}
	e.faults(Faults{})
	e.reconnected()
	tok, _ := e.sign(10000)
	if _, err := e.d.Dispense(e.ctx, dispenser.Mix{"CST1": 1}, tok); err != nil {
		t.Fatalf("dispense after coming back online: %v", err)
	}
}

func testRestart(t *testing.T, h Harness) {
	e := start(t, h, Units())
	mix := dispenser.Mix{"CST1": 2}
	tok, nonce := e.sign(20000)
	if _, err := e.d.Dispense(e.ctx, mix, tok); err != nil {
		t.Fatal(err)
	}
	if e.dev.Caps.Present {
		if err := e.d.Present(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	stale, _ := e.sign(10000) // issued before the power cycle
	e.d = e.dev.Restart(t)
	e.reconnected()
	if ps, ok := e.presentStatus(); ok {
		if !ps.Of(nonce, tok) || !ps.Dispensed.Equal(mix) {
			t.Fatalf("present status after a restart: %+v, want the dispense of nonce %s", ps, nonce)
		}
	}
	if got := e.remaining(); got["CST1"] != 48 {
		t.Fatalf("CST1 holds %d after a restart, want 48", got["CST1"])
	}
	// A nonce issued before the restart is dead.
	if _, err := e.d.Dispense(e.ctx, dispenser.Mix{"CST1": 1}, stale); !dispenser.IsTokenError(err) && !errors.Is(err, dispenser.ErrSequence) {
		t.Fatalf("token of a nonce from before the restart: %v, want a refusal", err)
	}
	if e.dev.Caps.Retract {
		res, err := e.d.Retract(e.ctx)
		if err != nil || !res.Mix.Equal(mix) {
			t.Fatalf("Retract after a restart = %+v, %v; want %s", res, err, mix)
		}
	}
	tok, _ = e.sign(10000)
	if _, err := e.d.Dispense(e.ctx, dispenser.Mix{"CST1": 1}, tok); err != nil {
		t.Fatalf("dispense after a restart: %v", err)
	}
}

func testLinkLost(t *testing.T, h Harness) {
	e := start(t, h, Units())
	e.faults(Faults{LinkLost: true})
	mix := dispenser.Mix{"CST1": 2}
	before := e.remaining()
	tok, nonce := e.sign(20000)
	_, err := e.d.Dispense(e.ctx, mix, tok)
	var de *dispenser.DispenseError
	if !errors.As(err, &de) || de.CountKnown || !errors.Is(err, dispenser.ErrCountUnknown) {
		t.Fatalf("answer lost mid-dispense: %v, want count unknown (never \"nothing moved\")", err)
	}
	if m := moved(before, e.remaining()); !m.Equal(mix) {
		t.Fatalf("the device gave %s, want %s (it acted)", m, mix)
	}
	e.faults(Faults{})
	// A device that cannot say what it did latches a fault until an
	// operator resets it (a serial dispenser keeps no record).
	for range 100 {
		ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
		st, err := e.d.Status(ctx)
		cancel()
		if err == nil && st.Device == dispenser.StateOnline {
			break
		}
		if err == nil && st.Device == dispenser.StateHardwareError {
			e.reset()
			continue
		}
		e.clk.Advance(time.Second)
	}
	e.reconnected()
	// Its account names this dispense, and a count it gives is the truth;
	// "unknown" is an honest answer, a wrong count is not.
	if ps, ok := e.presentStatus(); ok && (!ps.Of(nonce, tok) || ps.CountKnown && !ps.Dispensed.Equal(mix)) {
		t.Fatalf("present status after the link came back: %+v, want this dispense of %s (or its count unknown)", ps, mix)
	}
}

func testPresentStatusPerDispense(t *testing.T, h Harness) {
	e := start(t, h, Units())
	if _, ok := e.d.(PresentStatuser); !ok {
		t.Skip("no present status")
	}
	if ps, _ := e.presentStatus(); ps.Seq != 0 {
		t.Fatalf("a fresh device reports dispense %d", ps.Seq)
	}
	var seqs []uint64
	for i := range 2 {
		tok, nonce := e.sign(10000)
		if _, err := e.d.Dispense(e.ctx, dispenser.Mix{"CST1": 1}, tok); err != nil {
			t.Fatalf("dispense %d: %v", i, err)
		}
		e.deliver()
		ps, _ := e.presentStatus()
		if !ps.Of(nonce, tok) || ps.Seq == 0 || slices.Contains(seqs, ps.Seq) {
			t.Fatalf("dispense %d reported as %+v (earlier: %v)", i, ps, seqs)
		}
		other, _ := dispenser.BuildToken(nonce, 20000, currency, exponent, dispenser.HMACSHA256(tokenKey))
		if ps.Nonce == "" && ps.Of(nonce, other) {
			t.Fatalf("dispense %d matched another token of its nonce", i)
		}
		seqs = append(seqs, ps.Seq)
	}
}
