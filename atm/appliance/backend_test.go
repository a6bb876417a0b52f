package appliance_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
	"github.com/cardless-atm/cardless/ui"
)

// waitSnap waits (bounded) until the screens' snapshot satisfies ok.
func waitSnap(t *testing.T, s *system, what string, ok func(ui.Snapshot) bool) ui.Snapshot {
	t.Helper()
	deadline := time.Now().Add(uiWait)
	for {
		snap := s.app.Backend.Snapshot()
		if ok(snap) {
			return snap
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never reached; last snapshot %+v", what, snap)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func outcome(snap ui.Snapshot) bool {
	return snap.Phase == ui.Complete || snap.Phase == ui.Declined || snap.Phase == ui.Failed
}

// TestBackendOutcomes: every outcome screen learns from the core what
// happens to the customer's account and a reference (the host's RRN once
// it answered, else the session's short ID); a fault that takes the
// terminal out of service still shows its outcome first.
func TestBackendOutcomes(t *testing.T) {
	for _, tt := range []struct {
		name     string
		faults   appliance.SimFaults
		customer string
		pin      string
		phase    ui.Phase
		reason   string
		account  ui.Account
		amount   int64
		rrn      bool
		after    ui.Phase // once the customer finished
	}{
		{"paid", appliance.SimFaults{}, zhang, "123456", ui.Complete, "", ui.AccountCharged, 50000, true, ui.Idle},
		{"short dispense", appliance.SimFaults{ShortDispense: 1}, zhang, "123456", ui.Complete, "", ui.AccountCharged, 40000, true, ui.Idle},
		{"declined", appliance.SimFaults{}, li, "654321", ui.Declined, "51", ui.AccountNotCharged, 50000, true, ui.Idle},
		{"jam", appliance.SimFaults{JamAfter: 1}, zhang, "123456", ui.Failed, "dispenser", ui.AccountReversed, 50000, true, ui.Idle},
		{"not taken", appliance.SimFaults{NotesNotTaken: true}, zhang, "123456", ui.Failed, "retracted", ui.AccountReversed, 50000, true, ui.Idle},
		{"count unknown", appliance.SimFaults{CountUnknown: true}, zhang, "123456", ui.Failed, "count", ui.AccountChecking, 50000, true, ui.OutOfService},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startSystem(t, func(c *appliance.Config) { c.Dispenser.Sim.Faults = tt.faults })
			s.withdraw(s.qr(50000), tt.customer, tt.pin)
			snap := waitSnap(t, s, "an outcome", outcome)
			sess := s.app.Core.View().Session
			if snap.Phase != tt.phase || snap.ReasonCode != tt.reason || snap.Account != tt.account || snap.Amount != tt.amount ||
				snap.SessionRef != sess.ID[:8] || (snap.RRN != "") != tt.rrn || snap.RRN != sess.RRN {
				t.Fatalf("snapshot %s %q %s amount %d ref %q rrn %q; want %s %q %s amount %d ref %q, rrn %v (session %+v)",
					snap.Phase, snap.ReasonCode, snap.Account, snap.Amount, snap.SessionRef, snap.RRN,
					tt.phase, tt.reason, tt.account, tt.amount, sess.ID[:8], tt.rrn, sess)
			}
			s.dismiss()
			waitSnap(t, s, "after the customer finished", func(snap ui.Snapshot) bool { return snap.Phase == tt.after })
		})
	}
}

// TestBackendOffersWhatCanBePaid: with 350.00 in the cassettes the amount
// screen offers only the presets those notes can make and says "up to
// 350.00"; with the cassettes full, the configured offer.
func TestBackendOffersWhatCanBePaid(t *testing.T) {
	for _, tt := range []struct {
		name    string
		units   []dispenser.CashUnit
		presets []int64
		max     int64
	}{
		{"full", nil, []int64{10000, 20000, 50000, 100000, 200000, 300000}, 300000},
		{"350.00 left", []dispenser.CashUnit{{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 3}, {ID: "CST2", Denomination: 5000, Currency: "CNY", Count: 1}},
			[]int64{10000, 20000}, 35000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startSystem(t, func(c *appliance.Config) {
				if tt.units != nil {
					c.Dispenser.Sim.Units = tt.units
				}
			})
			snap := waitSnap(t, s, "the offer", func(snap ui.Snapshot) bool { return snap.MaxAmount == tt.max })
			if snap.Phase != ui.Idle || !slices.Equal(snap.Presets, tt.presets) || snap.MinAmount != 10000 {
				t.Fatalf("offer %s: presets %v, %d to %d; want %v up to %d", snap.Phase, snap.Presets, snap.MinAmount, snap.MaxAmount, tt.presets, tt.max)
			}
		})
	}
}

// TestCameraScreenLogsOnce: in window or kiosk mode the headless copy of
// the screens (the phone simulator's "camera") logs no screen changes:
// the window's own App logs each once. In headless mode the copy is the
// screen and logs them.
func TestCameraScreenLogsOnce(t *testing.T) {
	for _, mode := range []string{"headless", "window"} {
		t.Run(mode, func(t *testing.T) {
			png := filepath.Join(t.TempDir(), "screen.png")
			s := startSystem(t, func(c *appliance.Config) { c.Screen = appliance.Screen{Mode: mode, PNG: png} })
			qr := s.qr(20000)
			ctx, cancel := context.WithTimeout(context.Background(), uiWait)
			defer cancel()
			if err := phonesim.WaitScreenQR(ctx, png, qr, uiWait); err != nil {
				kept := "(not kept)"
				if raw, rerr := os.ReadFile(png); rerr == nil {
					if f, ferr := os.CreateTemp("", "cardless-camera-*.png"); ferr == nil {
						_, _ = f.Write(raw)
						f.Close()
						kept = f.Name()
					}
				}
				t.Fatalf("%v; the last picture is kept in %s; the screen writer's goroutines:\n%s", err, kept, goroutinesIn("screenWriter"))
			}
			n := 0
			for _, l := range strings.Split(s.logs.String(), "\n") {
				if strings.Contains(l, `msg="ui screen"`) && strings.Contains(l, " screen=qr ") {
					n++
				}
			}
			if mode == "headless" && n != 1 || mode == "window" && n != 0 {
				t.Fatalf("%s mode: %d \"ui screen\" lines for the QR from the headless copy\n%s", mode, n, s.logs.String())
			}
		})
	}
}

// goroutinesIn returns the stacks of the goroutines whose stack mentions
// fn (to see where a part that stopped is stuck).
func goroutinesIn(fn string) string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
