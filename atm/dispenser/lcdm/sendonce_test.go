//go:build unix

package lcdm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm/lcdmsim"
)

// Error-only answers (SOH 50 STX CMD ERR ETX BCC) to a dispense command
// carry no counts; a dispense frame is never sent twice.

// wantCountUnknown asserts a count-unknown outcome: the error, the present
// status, the purge latch.
func wantCountUnknown(t *testing.T, r *rig, err error) {
	t.Helper()
	de := dispenseErr(t, err, dispenser.ErrCountUnknown)
	if de.CountKnown || de.Dispensed != nil {
		t.Fatalf("count reported known: %v", err)
	}
	if dispenser.Code(err) != "hardwareError" {
		t.Fatalf("code %s", dispenser.Code(err))
	}
	if ps := presentStatus(t, r); ps.CountKnown || ps.State != dispenser.PresentFailed || ps.Presented != nil {
		t.Fatalf("present status %+v", ps)
	}
}

func TestErrorOnlyAnswerIsCountUnknown(t *testing.T) {
	codes := append(lcdm.ErrorCodes(), 0x99) // and a code outside the table
	for _, code := range codes {
		if code.BeforeNotesMove() || code == lcdm.Good {
			continue // TestErrorOnlyUndefinedCommand; the simulator stops with a code other than 0x30
		}
		for _, after := range []int{1, 0} {
			t.Run(fmt.Sprintf("%02X_after_%d", byte(code), after), func(t *testing.T) {
				r := newRig(t, defaultUnits(), lcdmsim.Faults{})
				tok := r.token(30000)
				clearReceived(t, r)
				r.sim.SetFaults(lcdmsim.Faults{Error: byte(code), ErrorAfter: after, ErrorOnly: true})
				_, err := r.drv.Dispense(context.Background(), dispenser.Mix{"CST1": 3}, tok)
				// The device moved `after` notes and said nothing about them.
				wantCountUnknown(t, r, err)
				wantReceived(t, r, goldStatus, ack, gold(t, 3, 0), ack)
				wantRemaining(t, r, map[string]int{"CST1": 200 - after, "CST2": 200})
				r.sim.SetFaults(lcdmsim.Faults{})
				st := status(t, r)
				if st.Device != dispenser.StateHardwareError {
					t.Fatalf("device %s, want hardwareError (purge latched)", st.Device)
				}
				// The driver assumes the command took all it asked for.
				if st.Units[0].Count != 197 || st.Units[1].Count != 200 {
					t.Fatalf("driver counts %+v", st.Units)
				}
				if err := r.drv.Reset(context.Background()); err != nil {
					t.Fatal(err)
				}
				if ps := presentStatus(t, r); ps.CountKnown {
					t.Fatalf("Reset made the unknown count known: %+v", ps)
				}
			})
		}
	}
}

func TestErrorOnlyUndefinedCommand(t *testing.T) {
	if !lcdm.UndefinedCommand.BeforeNotesMove() {
		t.Fatal("0x37 must mean nothing moved")
	}
	for _, c := range lcdm.ErrorCodes() {
		if c != lcdm.UndefinedCommand && c.BeforeNotesMove() {
			t.Errorf("%s taken as raised before any note moves", c)
		}
	}
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	tok := r.token(30000)
	clearReceived(t, r)
	r.sim.SetFaults(lcdmsim.Faults{Error: byte(lcdm.UndefinedCommand), ErrorOnly: true})
	_, err := r.drv.Dispense(context.Background(), dispenser.Mix{"CST1": 3}, tok)
	de := dispenseErr(t, err, dispenser.ErrShortDispense)
	if !de.CountKnown || de.Dispensed.Notes() != 0 {
		t.Fatalf("0x37 error-only: %v, want nothing dispensed, count known", err)
	}
	wantReceived(t, r, goldStatus, ack, gold(t, 3, 0), ack)
	wantRemaining(t, r, map[string]int{"CST1": 200, "CST2": 200})
	r.sim.SetFaults(lcdmsim.Faults{})
	if st := status(t, r); st.Device != dispenser.StateHardwareError || st.Units[0].Count != 200 {
		t.Fatalf("status %+v", st)
	}
}

// TestSplitErrorOnlyLaterCommand: the second command of a split dispense
// gets an error-only answer. The first command's 65 notes are known, the
// second's are not: the whole dispense is count unknown, and the driver's
// cassette counts take the first command exactly and the second as asked.
func TestSplitErrorOnlyLaterCommand(t *testing.T) {
	mix := dispenser.Mix{"CST1": 70, "CST2": 5}
	r := newRigOpts(t, defaultUnits(), options{maxNotes: 200})
	tok := r.token(r.amount(mix))
	clearReceived(t, r)
	r.sim.SetFaults(lcdmsim.Faults{AfterCommands: 1, Error: byte(lcdm.MotorStop), ErrorAfter: 3, ErrorOnly: true})
	_, err := r.drv.Dispense(context.Background(), mix, tok)
	wantCountUnknown(t, r, err)
	if !strings.Contains(err.Error(), "earlier commands delivered CST1:60 CST2:5") {
		t.Fatalf("error does not name the known part: %v", err)
	}
	wantReceived(t, r, goldStatus, ack, gold(t, 60, 5), ack, gold(t, 10, 0), ack)
	wantRemaining(t, r, map[string]int{"CST1": 137, "CST2": 195}) // 63 + 5 really went out
	r.sim.SetFaults(lcdmsim.Faults{})
	st := status(t, r)
	if st.Device != dispenser.StateHardwareError || st.Units[0].Count != 130 || st.Units[1].Count != 195 {
		t.Fatalf("status %+v: want hardwareError, CST1 130 (60 counted + 10 assumed), CST2 195", st)
	}

	// 0x37 to the second command: it did not run; the first is exact.
	r = newRigOpts(t, defaultUnits(), options{maxNotes: 200})
	tok = r.token(r.amount(mix))
	clearReceived(t, r)
	r.sim.SetFaults(lcdmsim.Faults{AfterCommands: 1, Error: byte(lcdm.UndefinedCommand), ErrorOnly: true})
	_, err = r.drv.Dispense(context.Background(), mix, tok)
	de := dispenseErr(t, err, dispenser.ErrShortDispense)
	if !de.CountKnown || !de.Dispensed.Equal(dispenser.Mix{"CST1": 60, "CST2": 5}) {
		t.Fatalf("reported %s (known %v)", de.Dispensed, de.CountKnown)
	}
	wantReceived(t, r, goldStatus, ack, gold(t, 60, 5), ack, gold(t, 10, 0), ack)
	wantRemaining(t, r, map[string]int{"CST1": 140, "CST2": 195})
}

// TestDispenseNAKIsARefusal: a NAK as the very first byte after a dispense
// frame, then quiet: the device refused the frame. It is not sent again;
// nothing moved, the core gets ErrDeviceNotReady and the next customer a
// fresh attempt.
func TestDispenseNAKIsARefusal(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	tok := r.token(20000)
	clearReceived(t, r)
	r.sim.SetFaults(lcdmsim.Faults{NakDispense: 1})
	_, err := r.drv.Dispense(context.Background(), dispenser.Mix{"CST1": 2}, tok)
	if !errors.Is(err, dispenser.ErrDeviceNotReady) || !strings.Contains(err.Error(), "NAK") {
		t.Fatalf("Dispense NAKed: %v, want ErrDeviceNotReady naming the NAK", err)
	}
	var de *dispenser.DispenseError
	if errors.As(err, &de) {
		t.Fatalf("a refused frame is not a DispenseError: %v", err)
	}
	wantReceived(t, r, goldStatus, ack, gold(t, 2, 0)) // once, never again
	wantRemaining(t, r, map[string]int{"CST1": 200, "CST2": 200})
	if ps := presentStatus(t, r); ps.Seq != 0 {
		t.Fatalf("present status after a refused frame: %+v", ps)
	}
	if st := status(t, r); st.Device != dispenser.StateOnline || st.Units[0].Count != 200 {
		t.Fatalf("status %+v", st)
	}
	if _, err := r.drv.Dispense(context.Background(), dispenser.Mix{"CST1": 2}, tok); !errors.Is(err, dispenser.ErrNoCommandNonce) {
		t.Fatalf("the refused attempt's token again: %v", err)
	}
	if res, err := r.dispense(dispenser.Mix{"CST1": 2}); err != nil || !res.Mix.Equal(dispenser.Mix{"CST1": 2}) {
		t.Fatalf("next attempt: %+v, %v", res, err)
	}
	wantRemaining(t, r, map[string]int{"CST1": 198, "CST2": 200})

	// The second command of a split dispense refused: the first one's
	// notes, exactly; the refused frame is not sent again.
	mix := dispenser.Mix{"CST1": 70, "CST2": 5}
	r = newRigOpts(t, defaultUnits(), options{maxNotes: 200})
	tok = r.token(r.amount(mix))
	clearReceived(t, r)
	r.sim.SetFaults(lcdmsim.Faults{AfterCommands: 1, NakDispense: 1})
	_, err = r.drv.Dispense(context.Background(), mix, tok)
	de = dispenseErr(t, err, dispenser.ErrShortDispense)
	if !de.CountKnown || !de.Dispensed.Equal(dispenser.Mix{"CST1": 60, "CST2": 5}) {
		t.Fatalf("reported %s (known %v)", de.Dispensed, de.CountKnown)
	}
	wantReceived(t, r, goldStatus, ack, gold(t, 60, 5), ack, gold(t, 10, 0))
	wantRemaining(t, r, map[string]int{"CST1": 140, "CST2": 195})
}

// TestAmbiguousNAKNeverResends: a 0x15 that is not a clean refusal (a
// stray byte before the real ACK, or a NAK after other bytes) must not
// make the driver send the dispense frame again: a device that executes
// both would pay twice. The outcome is count unknown.
func TestAmbiguousNAKNeverResends(t *testing.T) {
	cases := []struct {
		name      string
		faults    lcdmsim.Faults
		remaining map[string]int // the device's truth
	}{
		// The tail of a stale answer (or noise) before the device's ACK:
		// the device takes the frame and pays.
		{"stray NAK then ACK and answer", lcdmsim.Faults{Noise: []byte{lcdm.NAK}}, map[string]int{"CST1": 198, "CST2": 200}},
		// A NAK after other bytes: maybe the device's, maybe noise.
		{"NAK after other bytes", lcdmsim.Faults{Noise: []byte{0x30}, NakDispense: 1}, map[string]int{"CST1": 200, "CST2": 200}},
		{"stray NAK after other bytes then ACK", lcdmsim.Faults{Noise: []byte{0x37, lcdm.NAK}}, map[string]int{"CST1": 198, "CST2": 200}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, defaultUnits(), lcdmsim.Faults{})
			tok := r.token(20000)
			clearReceived(t, r)
			r.sim.SetFaults(c.faults)
			_, err := r.drv.Dispense(context.Background(), dispenser.Mix{"CST1": 2}, tok)
			wantReceived(t, r, goldStatus, ack, gold(t, 2, 0)) // once, never again
			wantRemaining(t, r, c.remaining)
			wantCountUnknown(t, r, err)
			r.sim.SetFaults(lcdmsim.Faults{})
			if st := status(t, r); st.Device != dispenser.StateHardwareError || st.Units[0].Count != 198 {
				t.Fatalf("status %+v", st)
			}
			if err := r.drv.Reset(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := r.dispense(dispenser.Mix{"CST1": 1}); err != nil {
				t.Fatalf("dispense after Reset: %v", err)
			}
		})
	}
}

// TestRepeatableCommandsStillResent: status, purge and ROM version are
// sent again after a NAK, as before.
func TestRepeatableCommandsStillResent(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	clearReceived(t, r)
	r.sim.SetFaults(lcdmsim.Faults{NakFrames: 2})
	if err := r.drv.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantReceived(t, r, goldPurge, goldPurge, goldPurge, ack)
	clearReceived(t, r)
	r.sim.SetFaults(lcdmsim.Faults{NakFrames: 1})
	if v, _, err := r.drv.ROMVersion(context.Background()); err != nil || v != "20" {
		t.Fatalf("ROMVersion = %q, %v", v, err)
	}
	wantReceived(t, r, goldROM, goldROM, ack)
}
