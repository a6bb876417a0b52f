package atm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/host/hostfake"
)

// TestResetDispenserAfterSettlement is the operator's way back after a
// count the device does not know: the reset waits for the settlement (the
// notes inside are the evidence), then purges them, journals the operator,
// and compares the counters again: the purged notes nobody counted keep
// the terminal out of service until the operator adopts the device's
// counts; then it serves again.
func TestResetDispenserAfterSettlement(t *testing.T) {
	r := newRig(t, dispensersim.Faults{CountUnknown: true})
	r.host.Expect(t, hostfake.Authorize, hostfake.Reverse)
	ctx := context.Background()
	s := r.session(30000)
	if res := r.command(s, "000001"); res.ResponseCode != "96" {
		t.Fatalf("result %+v", res)
	}
	// The device reports its fault at the next status poll.
	waitReason(t, r, "dispenser")
	if err := r.core.ResetDispenser(ctx, "op-7"); !errors.Is(err, atm.ErrSettleFirst) {
		t.Fatalf("reset with a session in doubt: %v, want ErrSettleFirst", err)
	}
	if err := r.core.ResetDispenser(ctx, ""); err == nil {
		t.Fatal("a reset without an operator")
	}
	if _, err := r.core.Settle(ctx, s.ID, 0, "op-7"); err != nil {
		t.Fatal(err)
	}
	r.settle()
	r.sim.SetFaults(dispensersim.Faults{}) // the engineer fixed the device
	if err := r.core.ResetDispenser(ctx, "op-7"); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if v := r.core.View(); v.InService || v.Reason != "counters" {
		t.Fatalf("after the reset: in service %v, reason %q; want out of service for the counters", v.InService, v.Reason)
	}
	if err := r.core.AdoptDeviceCounters(ctx, "op-7"); err != nil {
		t.Fatal(err)
	}
	if v := r.core.View(); !v.InService {
		t.Fatalf("after adopting the counts: in service %v, reason %q", v.InService, v.Reason)
	}
	r.wantJournal("SESSION CREATED", "COMMAND ACCEPTED", "APPROVED", "IN DOUBT", "OPERATOR SETTLED", "QUEUED REVERSAL",
		"HOST ACK REVERSAL", "DISPENSER RESET", "COUNTERS MISMATCH", "COUNTERS ADOPTED")
}

// waitReason polls the status (advancing the rig's clock a status
// interval at a time, bounded) until the terminal is out of service for
// reason.
func waitReason(t *testing.T, r *rig, reason string) {
	t.Helper()
	for range 200 {
		if v := r.core.View(); !v.InService && v.Reason == reason {
			return
		}
		r.advance(atm.StatusInterval)
		time.Sleep(2 * time.Millisecond) // let the status loop and the owner run
	}
	v := r.core.View()
	t.Fatalf("never out of service for %q: in service %v, reason %q", reason, v.InService, v.Reason)
}
