//go:build unix

package lcdm_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm/lcdmsim"
)

var (
	ack = []byte{lcdm.ACK}
	nak = []byte{lcdm.NAK}
)

func gold(t *testing.T, up, lo int) []byte {
	t.Helper()
	return mustDispense(t, up, lo)
}

// received waits (bounded) until the device received at least n items
// and returns them all.
func received(t *testing.T, r *rig, n int) [][]byte {
	t.Helper()
	deadline := time.After(5 * time.Second) // a bound, not a sleep
	for {
		ch := r.sim.Changed()
		got := r.sim.Received()
		if len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline:
			return got
		}
	}
}

// clearReceived waits until the device saw the host's ACK that ends the
// last exchange, then forgets what it received.
func clearReceived(t *testing.T, r *rig) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		ch := r.sim.Changed()
		got := r.sim.Received()
		if len(got) == 0 || bytes.Equal(got[len(got)-1], ack) {
			r.sim.ClearReceived()
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("the last exchange did not end with an ACK:\n%s", dump(got))
		}
	}
}

// wantReceived asserts the exact sequence the device received.
func wantReceived(t *testing.T, r *rig, want ...[]byte) {
	t.Helper()
	got := received(t, r, len(want))
	if len(got) != len(want) {
		t.Fatalf("device received %d items:\n%s\nwant %d:\n%s", len(got), dump(got), len(want), dump(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("device received item %d % X, want % X\nall:\n%s", i, got[i], want[i], dump(got))
		}
	}
}

func dump(fs [][]byte) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  % X\n", f)
	}
	return b.String()
}

func status(t *testing.T, r *rig) dispenser.Status {
	t.Helper()
	st, err := r.drv.Status(context.Background())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return st
}

func presentStatus(t *testing.T, r *rig) dispenser.PresentStatus {
	t.Helper()
	ps, err := r.drv.PresentStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func dispenseErr(t *testing.T, err, want error) *dispenser.DispenseError {
	t.Helper()
	var de *dispenser.DispenseError
	if !errors.As(err, &de) || !errors.Is(err, want) {
		t.Fatalf("error %v (%T), want a *DispenseError wrapping %v", err, err, want)
	}
	return de
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func wantRemaining(t *testing.T, r *rig, want map[string]int) {
	t.Helper()
	if got := r.sim.Remaining(); !mapsEqual(got, want) {
		t.Fatalf("cassettes hold %v, want %v", got, want)
	}
}

func TestPurgeAtStart(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	wantReceived(t, r, goldPurge, ack)
	if st := status(t, r); st.Device != dispenser.StateOnline {
		t.Fatalf("device %s", st.Device)
	}
}

func TestNAKRetransmit(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	clearReceived(t, r)
	r.sim.SetFaults(lcdmsim.Faults{NakFrames: 2})
	if st := status(t, r); st.Device != dispenser.StateOnline {
		t.Fatalf("device %s after two NAKs", st.Device)
	}
	wantReceived(t, r, goldStatus, goldStatus, goldStatus, ack)

	// NAKed every time: bounded, then not ready.
	clearReceived(t, r)
	r.sim.SetFaults(lcdmsim.Faults{NakFrames: 10})
	if _, err := r.drv.CommandNonce(context.Background()); !errors.Is(err, dispenser.ErrDeviceNotReady) {
		t.Fatalf("CommandNonce with every frame NAKed: %v", err)
	}
	wantReceived(t, r, goldStatus, goldStatus, goldStatus)
}

func TestBadBCCFromDevice(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	clearReceived(t, r)
	r.sim.SetFaults(lcdmsim.Faults{BadBCC: 1})
	if st := status(t, r); st.Device != dispenser.StateOnline {
		t.Fatalf("device %s", st.Device)
	}
	wantReceived(t, r, goldStatus, nak, ack)

	// Three damaged answers: the driver gives up on that exchange and
	// sends the (repeatable) status command again.
	clearReceived(t, r)
	r.sim.SetFaults(lcdmsim.Faults{BadBCC: 3})
	if st := status(t, r); st.Device != dispenser.StateOnline {
		t.Fatalf("device %s", st.Device)
	}
	wantReceived(t, r, goldStatus, nak, nak, nak, goldStatus, ack)

	// A damaged dispense answer is NAKed and the resend counted.
	tok := r.token(10000)
	clearReceived(t, r)
	r.sim.SetFaults(lcdmsim.Faults{BadBCC: 2})
	res, err := r.drv.Dispense(context.Background(), dispenser.Mix{"CST1": 1}, tok)
	if err != nil || !res.Mix.Equal(dispenser.Mix{"CST1": 1}) {
		t.Fatalf("Dispense = %+v, %v", res, err)
	}
	// The status before the dispense takes both damaged answers.
	wantReceived(t, r, goldStatus, nak, nak, ack, gold(t, 1, 0), ack)
	wantRemaining(t, r, map[string]int{"CST1": 199, "CST2": 200})
}

func TestSilenceBoundedRetries(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	tok := r.token(10000)
	clearReceived(t, r)
	r.sim.SetFaults(lcdmsim.Faults{Offline: true})
	if st := status(t, r); st.Device != dispenser.StateOffline {
		t.Fatalf("device %s, want offline", st.Device)
	}
	wantReceived(t, r, goldStatus, goldStatus, goldStatus)

	r.sim.ClearReceived() // no ACK ends an exchange with a silent device
	_, err := r.drv.Dispense(context.Background(), dispenser.Mix{"CST1": 1}, tok)
	if !errors.Is(err, dispenser.ErrDeviceNotReady) {
		t.Fatalf("Dispense offline: %v, want ErrDeviceNotReady", err)
	}
	var de *dispenser.DispenseError
	if errors.As(err, &de) {
		t.Fatalf("offline before the dispense command is not a DispenseError: %v", err)
	}
	// Only the status check went out, never a dispense command.
	wantReceived(t, r, goldStatus, goldStatus, goldStatus)
	if _, err := r.drv.CommandNonce(context.Background()); !errors.Is(err, dispenser.ErrDeviceNotReady) {
		t.Fatalf("CommandNonce offline: %v", err)
	}
	if ps := presentStatus(t, r); ps.Seq != 0 {
		t.Fatalf("present status after a refused dispense: %+v", ps)
	}
	r.sim.SetFaults(lcdmsim.Faults{})
	if st := status(t, r); st.Device != dispenser.StateOnline {
		t.Fatalf("device %s after coming back", st.Device)
	}
}

// driverFile is the part of the driver's state file the tests read.
type driverFile struct {
	NonceCounter uint64                  `json:"nonceCounter"`
	PurgeNeeded  bool                    `json:"purgeNeeded"`
	Last         dispenser.PresentStatus `json:"last"`
}

func readDriverFile(t *testing.T, r *rig) driverFile {
	t.Helper()
	b, err := os.ReadFile(r.cfg.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	var f driverFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestNoAnswerMidDispense(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	n, err := r.drv.CommandNonce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := dispenser.BuildToken(n, 20000, "CNY", 2, dispenser.HMACSHA256(tokenKey))
	// While the device is silent, the dispense is already on disk as
	// "count unknown" for this nonce (write-ahead).
	var during driverFile
	hook := func() { during = readDriverFile(t, r) }
	r.onSilent.Store(&hook)
	clearReceived(t, r)
	r.sim.SetFaults(lcdmsim.Faults{NoAnswer: true})
	_, err = r.drv.Dispense(context.Background(), dispenser.Mix{"CST1": 2}, tok)
	de := dispenseErr(t, err, dispenser.ErrCountUnknown)
	if de.CountKnown {
		t.Fatal("count reported known")
	}
	// One dispense frame: never sent twice without a NAK.
	wantReceived(t, r, goldStatus, ack, gold(t, 2, 0))
	if during.Last.Nonce != n || during.Last.CountKnown || !during.PurgeNeeded || during.Last.Seq != 1 {
		t.Fatalf("state during the dispense: %+v", during)
	}
	wantRemaining(t, r, map[string]int{"CST1": 198, "CST2": 200}) // the device did pay
	ps := presentStatus(t, r)
	if ps.Nonce != n || ps.CountKnown || ps.State != dispenser.PresentFailed || ps.ErrorCode != "hardwareError" {
		t.Fatalf("present status %+v", ps)
	}
	r.sim.SetFaults(lcdmsim.Faults{})
	if st := status(t, r); st.Device != dispenser.StateHardwareError {
		t.Fatalf("device %s after a lost answer, want hardwareError", st.Device)
	}
	if err := r.drv.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := status(t, r); st.Device != dispenser.StateOnline {
		t.Fatalf("device %s after Reset", st.Device)
	}
	if ps := presentStatus(t, r); ps.CountKnown || ps.Nonce != n {
		t.Fatalf("Reset made an unknown count known: %+v", ps)
	}
}

func TestSplitDispense(t *testing.T) {
	r := newRigOpts(t, defaultUnits(), options{maxNotes: 200})
	mix := dispenser.Mix{"CST1": 130, "CST2": 65}
	tok := r.token(r.amount(mix))
	clearReceived(t, r)
	res, err := r.drv.Dispense(context.Background(), mix, tok)
	if err != nil || !res.Mix.Equal(mix) || res.Amount != 130*10000+65*5000 || res.Rejected != nil {
		t.Fatalf("Dispense = %+v, %v", res, err)
	}
	wantReceived(t, r, goldStatus, ack, gold(t, 60, 60), ack, gold(t, 60, 5), ack, gold(t, 10, 0), ack)
	wantRemaining(t, r, map[string]int{"CST1": 70, "CST2": 135})
	st := status(t, r)
	if st.Units[0].Count != 70 || st.Units[1].Count != 135 {
		t.Fatalf("driver counts %+v", st.Units)
	}
}

func TestSplitLaterCommandFails(t *testing.T) {
	mix := dispenser.Mix{"CST1": 70, "CST2": 5}
	cases := []struct {
		name       string
		faults     lcdmsim.Faults
		want       error
		dispensed  dispenser.Mix // nil: count unknown
		remaining  map[string]int
		deviceNext dispenser.DeviceState
		tail       [][]byte // after the first dispense frame and its ACK
	}{
		{"pickup error", lcdmsim.Faults{AfterCommands: 1, PickupError: true, PickupAfter: 3}, dispenser.ErrShortDispense,
			dispenser.Mix{"CST1": 63, "CST2": 5}, map[string]int{"CST1": 137, "CST2": 195}, dispenser.StateHardwareError, nil},
		{"jam, nothing of the second command out", lcdmsim.Faults{AfterCommands: 1, Jam: true, JamAfter: 0}, dispenser.ErrShortDispense,
			dispenser.Mix{"CST1": 60, "CST2": 5}, map[string]int{"CST1": 139, "CST2": 195}, dispenser.StateHardwareError, nil},
		{"second command NAKed", lcdmsim.Faults{AfterCommands: 1, NakFrames: 5}, dispenser.ErrShortDispense,
			dispenser.Mix{"CST1": 60, "CST2": 5}, map[string]int{"CST1": 140, "CST2": 195}, dispenser.StateOnline, nil},
		{"second command unanswered", lcdmsim.Faults{AfterCommands: 1, NoAnswer: true}, dispenser.ErrCountUnknown,
			nil, map[string]int{"CST1": 130, "CST2": 195}, dispenser.StateHardwareError, nil},
		{"exit jam in the second command", lcdmsim.Faults{AfterCommands: 1, JamAtExit: true, JamAtExitAfter: 4}, dispenser.ErrCountUnknown,
			nil, map[string]int{"CST1": 135, "CST2": 195}, dispenser.StateHardwareError, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRigOpts(t, defaultUnits(), options{maxNotes: 200})
			tok := r.token(r.amount(mix))
			clearReceived(t, r)
			r.sim.SetFaults(c.faults)
			_, err := r.drv.Dispense(context.Background(), mix, tok)
			de := dispenseErr(t, err, c.want)
			if c.dispensed == nil {
				if de.CountKnown {
					t.Fatalf("count known: %v", err)
				}
			} else if !de.CountKnown || !de.Dispensed.Equal(c.dispensed) {
				t.Fatalf("reported %s (known %v), want %s", de.Dispensed, de.CountKnown, c.dispensed)
			}
			if errors.Is(err, dispenser.ErrJam) {
				t.Fatal("ErrJam after notes were delivered: the core would reverse paid notes")
			}
			wantRemaining(t, r, c.remaining)
			got := r.sim.Received()
			if len(got) < 5 || !bytes.Equal(got[2], gold(t, 60, 5)) || !bytes.Equal(got[4], gold(t, 10, 0)) {
				t.Fatalf("frames:\n%s", dump(got))
			}
			r.sim.SetFaults(lcdmsim.Faults{})
			if st := status(t, r); st.Device != c.deviceNext {
				t.Fatalf("device %s, want %s", st.Device, c.deviceNext)
			}
			ps := presentStatus(t, r)
			if c.dispensed != nil && (!ps.Presented.Equal(c.dispensed) || ps.State != dispenser.PresentPresented || !ps.CountKnown) {
				t.Fatalf("present status %+v", ps)
			}
		})
	}
}

// TestErrorCodeMapping drives every error code of the table through the
// simulator: one note delivered, then the code (and again with none).
func TestErrorCodeMapping(t *testing.T) {
	for _, code := range lcdm.ErrorCodes() {
		for _, after := range []int{1, 0} {
			t.Run(fmt.Sprintf("%02X_after_%d", byte(code), after), func(t *testing.T) {
				r := newRig(t, defaultUnits(), lcdmsim.Faults{})
				tok := r.token(30000)
				r.sim.SetFaults(lcdmsim.Faults{Error: byte(code), ErrorAfter: after})
				_, err := r.drv.Dispense(context.Background(), dispenser.Mix{"CST1": 3}, tok)
				r.sim.SetFaults(lcdmsim.Faults{})
				delivered := dispenser.Mix{"CST1": after}.Clone()
				if delivered == nil {
					delivered = dispenser.Mix{}
				}
				st := status(t, r)
				switch code {
				case lcdm.JamExitEJT, lcdm.JamEJT, lcdm.CountingEJTExit:
					if de := dispenseErr(t, err, dispenser.ErrCountUnknown); de.CountKnown {
						t.Fatal("count known")
					}
					if dispenser.Code(err) != "hardwareError" || st.Device != dispenser.StateHardwareError {
						t.Fatalf("code %s, device %s", dispenser.Code(err), st.Device)
					}
				case lcdm.UpperBillEnd, lcdm.LowerBillEnd:
					de := dispenseErr(t, err, dispenser.ErrShortDispense)
					if !de.CountKnown || !de.Dispensed.Equal(delivered) {
						t.Fatalf("reported %s, want %s", de.Dispensed, delivered)
					}
					if st.Device != dispenser.StateOnline {
						t.Fatalf("bill end with a clear transport: device %s, want online", st.Device)
					}
					empty := 0
					if code == lcdm.LowerBillEnd {
						empty = 1
					}
					if st.Units[empty].Status != dispenser.UnitEmpty {
						t.Fatalf("units %+v: unit %d not reported empty", st.Units, empty)
					}
				default:
					de := dispenseErr(t, err, dispenser.ErrShortDispense)
					if !de.CountKnown || !de.Dispensed.Equal(delivered) {
						t.Fatalf("reported %s, want %s", de.Dispensed, delivered)
					}
					if st.Device != dispenser.StateHardwareError {
						t.Fatalf("device %s, want hardwareError", st.Device)
					}
					if _, err := r.drv.CommandNonce(context.Background()); !errors.Is(err, dispenser.ErrDeviceNotReady) {
						t.Fatalf("CommandNonce after a fault: %v", err)
					}
				}
				wantRemaining(t, r, map[string]int{"CST1": 200 - after, "CST2": 200})
			})
		}
	}
}

func TestJamNothingDelivered(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	tok := r.token(30000)
	r.sim.SetFaults(lcdmsim.Faults{Jam: true, JamAfter: 0})
	_, err := r.drv.Dispense(context.Background(), dispenser.Mix{"CST1": 3}, tok)
	de := dispenseErr(t, err, dispenser.ErrJam)
	if !de.CountKnown || !de.Dispensed.Equal(dispenser.Mix{"CST1": 1}) {
		t.Fatalf("jam reported %s", de.Dispensed)
	}
	wantRemaining(t, r, map[string]int{"CST1": 199, "CST2": 200})
	if got := r.sim.Transport(); !mapsEqual(got, map[string]int{"CST1": 1}) {
		t.Fatalf("transport %v", got)
	}
	r.sim.SetFaults(lcdmsim.Faults{})
	tok2, err := r.drv.CommandNonce(context.Background())
	if !errors.Is(err, dispenser.ErrDeviceNotReady) || tok2 != "" {
		t.Fatalf("CommandNonce before Reset: %q, %v", tok2, err)
	}
	clearReceived(t, r)
	if err := r.drv.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantReceived(t, r, goldPurge, ack)
	if got := r.sim.Transport(); len(got) != 0 {
		t.Fatalf("transport after the purge %v", got)
	}
	if got := r.sim.Reject(); !mapsEqual(got, map[string]int{"CST1": 1}) {
		t.Fatalf("reject tray %v", got)
	}
	ps := presentStatus(t, r)
	if ps.State != dispenser.PresentRejected || !ps.Dispensed.Equal(dispenser.Mix{"CST1": 1}) || ps.PaidAmount() != 0 {
		t.Fatalf("present status %+v", ps)
	}
	if st := status(t, r); st.Device != dispenser.StateOnline || st.Units[0].Count != 199 {
		t.Fatalf("status %+v", st)
	}
}

func TestRejects(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	tok := r.token(30000)
	r.sim.SetFaults(lcdmsim.Faults{Rejects: 2})
	res, err := r.drv.Dispense(context.Background(), dispenser.Mix{"CST1": 3}, tok)
	if err != nil || !res.Mix.Equal(dispenser.Mix{"CST1": 3}) || !res.Rejected.Equal(dispenser.Mix{"CST1": 2}) || res.Amount != 30000 {
		t.Fatalf("Dispense = %+v, %v", res, err)
	}
	wantRemaining(t, r, map[string]int{"CST1": 195, "CST2": 200})
	ps := presentStatus(t, r)
	if !ps.Dispensed.Equal(dispenser.Mix{"CST1": 5}) || !ps.Presented.Equal(dispenser.Mix{"CST1": 3}) || ps.PaidAmount() != 30000 {
		t.Fatalf("present status %+v", ps)
	}
	if st := status(t, r); st.Units[0].Count != 195 || st.Device != dispenser.StateOnline {
		t.Fatalf("status %+v", st)
	}

	// Over reject: every pick diverted, nothing delivered.
	tok = r.token(30000)
	r.sim.SetFaults(lcdmsim.Faults{Rejects: 2, Error: byte(lcdm.OverReject), ErrorAfter: 0})
	_, err = r.drv.Dispense(context.Background(), dispenser.Mix{"CST1": 3}, tok)
	de := dispenseErr(t, err, dispenser.ErrJam)
	if !de.Dispensed.Equal(dispenser.Mix{"CST1": 2}) {
		t.Fatalf("over reject reported %s", de.Dispensed)
	}
	wantRemaining(t, r, map[string]int{"CST1": 193, "CST2": 200})
}

func TestPresentTakeRetract(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	ctx := context.Background()
	if err := r.drv.Present(ctx); !errors.Is(err, dispenser.ErrSequence) {
		t.Fatalf("Present before a dispense: %v", err)
	}
	if _, err := r.drv.WaitTaken(ctx, time.Second); !errors.Is(err, dispenser.ErrSequence) {
		t.Fatalf("WaitTaken before a dispense: %v", err)
	}
	if _, err := r.drv.Retract(ctx); !errors.Is(err, dispenser.ErrNoItems) {
		t.Fatalf("Retract: %v", err)
	}
	if _, err := r.dispense(dispenser.Mix{"CST2": 2}); err != nil {
		t.Fatal(err)
	}
	if ps := presentStatus(t, r); ps.State != dispenser.PresentPresented || ps.PresentedAmount != 10000 || ps.Taken {
		t.Fatalf("after the dispense: %+v", ps)
	}
	if err := r.drv.Present(ctx); err != nil {
		t.Fatalf("Present: %v", err)
	}
	taken, err := r.drv.WaitTaken(ctx, 30*time.Second)
	if err != nil || !taken {
		t.Fatalf("WaitTaken = %v, %v", taken, err)
	}
	if ps := presentStatus(t, r); ps.State != dispenser.PresentTaken || !ps.Taken || ps.PaidAmount() != 10000 {
		t.Fatalf("after the take: %+v", ps)
	}
	if err := r.drv.Present(ctx); !errors.Is(err, dispenser.ErrSequence) {
		t.Fatalf("Present after the take: %v", err)
	}
	if _, err := r.drv.Retract(ctx); !errors.Is(err, dispenser.ErrNoItems) {
		t.Fatalf("Retract after the take: %v", err)
	}

	// Retract instead of the take (the core's take timer): still paid.
	if _, err := r.dispense(dispenser.Mix{"CST2": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.drv.Retract(ctx); !errors.Is(err, dispenser.ErrNoItems) {
		t.Fatalf("Retract: %v", err)
	}
	if ps := presentStatus(t, r); ps.State != dispenser.PresentTaken || ps.PaidAmount() != 5000 {
		t.Fatalf("after a retract attempt: %+v", ps)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	ctx := context.Background()
	n1, err := r.drv.CommandNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f := readDriverFile(t, r); f.NonceCounter != 1024 {
		t.Fatalf("nonce counter block end %d, want 1024", f.NonceCounter)
	}
	tok, _ := dispenser.BuildToken(n1, 20000, "CNY", 2, dispenser.HMACSHA256(tokenKey))
	if _, err := r.drv.Dispense(ctx, dispenser.Mix{"CST1": 2}, tok); err != nil {
		t.Fatal(err)
	}
	before := presentStatus(t, r)

	r.restartDriver()
	after := presentStatus(t, r)
	if after.Seq != 1 || after.Nonce != n1 || after.State != dispenser.PresentPresented || !after.Presented.Equal(dispenser.Mix{"CST1": 2}) ||
		after.Currency != "CNY" || !after.Requested.Equal(dispenser.Mix{"CST1": 2}) || after.PresentedAmount != before.PresentedAmount {
		t.Fatalf("present status after a restart %+v, before %+v", after, before)
	}
	if st := status(t, r); st.Units[0].Count != 198 || st.Units[1].Count != 200 {
		t.Fatalf("counts after a restart %+v", st.Units)
	}
	// The old token is dead; a new nonce comes from a new block.
	if _, err := r.drv.Dispense(ctx, dispenser.Mix{"CST1": 1}, tok); !errors.Is(err, dispenser.ErrNoCommandNonce) {
		t.Fatalf("old token after a restart: %v", err)
	}
	n2, err := r.drv.CommandNonce(ctx)
	if err != nil || n2 == n1 {
		t.Fatalf("nonce %q, %v", n2, err)
	}
	if f := readDriverFile(t, r); f.NonceCounter != 2048 {
		t.Fatalf("nonce counter block end %d after a restart, want 2048", f.NonceCounter)
	}

	// A jam, then a restart: the purge at start clears it.
	tok, _ = dispenser.BuildToken(n2, 30000, "CNY", 2, dispenser.HMACSHA256(tokenKey))
	r.sim.SetFaults(lcdmsim.Faults{Jam: true})
	if _, err := r.drv.Dispense(ctx, dispenser.Mix{"CST1": 3}, tok); !errors.Is(err, dispenser.ErrJam) {
		t.Fatalf("jam: %v", err)
	}
	r.sim.SetFaults(lcdmsim.Faults{})
	if f := readDriverFile(t, r); !f.PurgeNeeded || f.Last.State != dispenser.PresentFailed {
		t.Fatalf("state file after a jam %+v", f)
	}
	clearReceived(t, r)
	r.restartDriver()
	wantReceived(t, r, goldPurge, ack)
	ps := presentStatus(t, r)
	if ps.Seq != 2 || ps.State != dispenser.PresentRejected || !ps.Dispensed.Equal(dispenser.Mix{"CST1": 1}) || !ps.CountKnown {
		t.Fatalf("present status after a jam and a restart %+v", ps)
	}
	if st := status(t, r); st.Device != dispenser.StateOnline || st.Units[0].Count != 197 {
		t.Fatalf("status %+v", st)
	}
}

func TestSimRestart(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	if _, err := r.dispense(dispenser.Mix{"CST1": 4}); err != nil {
		t.Fatal(err)
	}
	old := r.sim.Path()
	if err := r.sim.Restart(); err != nil {
		t.Fatal(err)
	}
	wantRemaining(t, r, map[string]int{"CST1": 196, "CST2": 200})
	// The old link is gone; the driver reopened on the new tty works.
	if st, _ := r.drv.Status(context.Background()); st.Device != dispenser.StateOffline && r.sim.Path() == old {
		t.Fatalf("status on a dead link %s", st.Device)
	}
	r.restartDriver()
	if _, err := r.dispense(dispenser.Mix{"CST1": 1}); err != nil {
		t.Fatal(err)
	}
	wantRemaining(t, r, map[string]int{"CST1": 195, "CST2": 200})
}

func TestTokenRefusedBeforeTheWire(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	ctx := context.Background()
	mix := dispenser.Mix{"CST1": 2}
	check := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
		wantReceived(t, r) // nothing at all reached the device
		wantRemaining(t, r, map[string]int{"CST1": 200, "CST2": 200})
	}
	n, err := r.drv.CommandNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := dispenser.BuildToken(n, 20000, "CNY", 2, dispenser.HMACSHA256([]byte("a black box's guess at the key")))
	clearReceived(t, r)
	_, err = r.drv.Dispense(ctx, mix, forged)
	check("forged", err, dispenser.ErrInvalidTokenHMAC)
	good, _ := dispenser.BuildToken(n, 20000, "CNY", 2, dispenser.HMACSHA256(tokenKey))
	_, err = r.drv.Dispense(ctx, mix, good) // the refusal consumed the nonce
	check("after a refusal", err, dispenser.ErrNoCommandNonce)
	_, err = r.drv.Dispense(ctx, mix, "")
	check("no token", err, dispenser.ErrInvalidToken)

	n, _ = r.drv.CommandNonce(ctx)
	small, _ := dispenser.BuildToken(n, 19999, "CNY", 2, dispenser.HMACSHA256(tokenKey))
	clearReceived(t, r)
	_, err = r.drv.Dispense(ctx, mix, small)
	check("too small", err, dispenser.ErrInvalidToken)
}

func TestModelAndConfig(t *testing.T) {
	dir := t.TempDir()
	base := lcdm.Config{Port: "/dev/null", Units: defaultUnits(), TokenKey: tokenKey, Exponent: 2, StateFile: dir + "/s.json"}
	c := base
	c.Model = lcdm.ModelLCDM4000
	if _, err := lcdm.Open(context.Background(), c); !errors.Is(err, lcdm.ErrModelUnsupported) {
		t.Fatalf("lcdm4000: %v", err)
	}
	c = base
	c.Parity = "mark"
	if _, err := lcdm.Open(context.Background(), c); err == nil {
		t.Fatal("parity mark accepted")
	}
	c = base
	c.TokenKey = nil
	if _, err := lcdm.Open(context.Background(), c); err == nil {
		t.Fatal("no token key accepted")
	}
	c = base
	c.Units = append(defaultUnits(), dispenser.CashUnit{ID: "CST3", Denomination: 2000, Currency: "CNY", Count: 1})
	if _, err := lcdm.Open(context.Background(), c); err == nil {
		t.Fatal("three cassettes accepted")
	}
	if _, err := os.Stat(base.StateFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refused configurations wrote a state file: %v", err)
	}

	// Even parity works on the tty.
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	r.drv.Close()
	r.cfg.Parity = "even"
	r.drv = r.open()
	if st := status(t, r); st.Device != dispenser.StateOnline {
		t.Fatalf("device %s with even parity", st.Device)
	}
}

func TestNearEndAndMissingCassette(t *testing.T) {
	units := defaultUnits()
	units[1].Count = 8
	r := newRigOpts(t, units, options{nearEnd: 10})
	st := status(t, r)
	if st.Units[0].Status != dispenser.UnitOK || st.Units[1].Status != dispenser.UnitLow {
		t.Fatalf("units %+v, want CST2 low by its near-end sensor", st.Units)
	}
	r.sim.SetMissing("CST2", true)
	st = status(t, r)
	if st.Device != dispenser.StateOnline || st.Units[1].Status != dispenser.UnitInoperative {
		t.Fatalf("status %+v, want CST2 inoperative", st)
	}
}

func TestConcurrentUse(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 4 {
		wg.Go(func() {
			for range 10 {
				st, err := r.drv.Status(ctx)
				if err != nil || (st.Device != dispenser.StateOnline && st.Device != dispenser.StateBusy) {
					errs <- fmt.Errorf("status %s, %v", st.Device, err)
				}
				if _, err := r.drv.PresentStatus(ctx); err != nil {
					errs <- err
				}
			}
		})
	}
	for range 5 {
		if _, err := r.dispense(dispenser.Mix{"CST1": 1}); err != nil {
			errs <- err
		}
		if _, err := r.drv.WaitTaken(ctx, time.Second); err != nil {
			errs <- err
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantRemaining(t, r, map[string]int{"CST1": 195, "CST2": 200})
}

func TestNoSecretsInLogs(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	h := slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug})
	r := newRigOpts(t, defaultUnits(), options{logger: slog.New(h)})
	ctx := context.Background()
	n, err := r.drv.CommandNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := dispenser.BuildToken(n, 20000, "CNY", 2, dispenser.HMACSHA256(tokenKey))
	if _, err := r.drv.Dispense(ctx, dispenser.Mix{"CST1": 2}, tok); err != nil {
		t.Fatal(err)
	}
	n2, _ := r.drv.CommandNonce(ctx)
	forged, _ := dispenser.BuildToken(n2, 20000, "CNY", 2, dispenser.HMACSHA256([]byte("other key")))
	_, err = r.drv.Dispense(ctx, dispenser.Mix{"CST1": 2}, forged)
	if !errors.Is(err, dispenser.ErrInvalidTokenHMAC) {
		t.Fatal(err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "lcdm dispense") {
		t.Fatalf("nothing logged:\n%s", out)
	}
	mac := tok[strings.LastIndex(tok, "=")+1:]
	for _, secret := range []string{string(tokenKey), hex.EncodeToString(tokenKey), mac, strings.ToLower(mac), forged[strings.LastIndex(forged, "=")+1:]} {
		if strings.Contains(out, secret) {
			t.Fatalf("log holds a secret %q", secret)
		}
	}
	for _, e := range []error{err} {
		if strings.Contains(e.Error(), mac) || strings.Contains(e.Error(), string(tokenKey)) {
			t.Fatalf("error holds a secret: %v", e)
		}
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestOfflineAtStartPurgesLater(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{Offline: true})
	wantReceived(t, r, goldPurge, goldPurge, goldPurge) // Open does not fail
	if st := status(t, r); st.Device != dispenser.StateOffline {
		t.Fatalf("device %s", st.Device)
	}
	r.sim.SetFaults(lcdmsim.Faults{})
	r.sim.ClearReceived()
	if st := status(t, r); st.Device != dispenser.StateOnline {
		t.Fatalf("device %s once it answers", st.Device)
	}
	wantReceived(t, r, goldPurge, ack, goldStatus, ack)
}
