package atm_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/host"
	"github.com/cardless-atm/cardless/atm/host/hostfake"
	"github.com/cardless-atm/cardless/atm/store"
)

// diverting is the simulated dispenser reporting that one CST2 note went
// to the reject bin on the way out, as a serial dispenser does with a
// double note.
type diverting struct{ *dispensersim.Sim }

func (d diverting) Dispense(ctx context.Context, mix dispenser.Mix, token string) (dispenser.Result, error) {
	res, err := d.Sim.Dispense(ctx, mix, token)
	if err == nil {
		res.Rejected = dispenser.Mix{"CST2": 1}
	}
	return res, err
}

// TestDivertedNotesCounted: notes a device diverts to its reject bin during
// a good dispense leave the cassettes (counted as dispensed and rejected)
// but are not paid, and the journal says so.
func TestDivertedNotesCounted(t *testing.T) {
	clk, fake := rigClock(t)
	r := newRigOn(t, dispensersim.Faults{}, clk, fake, func(s *dispensersim.Sim) atm.Dispenser { return diverting{s} })
	r.host.Expect(t, hostfake.Authorize, hostfake.Advise)
	s := r.session(20000)
	if res := r.command(s, "000001"); res.ResponseCode != "00" || res.Dispensed != 20000 {
		t.Fatalf("result %+v", res)
	}
	r.settle()
	r.wantJournal("SESSION CREATED", "COMMAND ACCEPTED", "APPROVED", "CASH DISPENSED", "CASH PRESENTED", "CASH TAKEN", "QUEUED ADVICE", "HOST ACK ADVICE")
	var text string
	var counts []store.UnitCounters
	r.db.View(func(tx *store.Tx) error {
		counts, _ = tx.UnitCounters()
		return tx.JournalRange(0, func(e store.Entry) error {
			if e.Kind == "CASH DISPENSED" {
				text = e.Text
			}
			return nil
		})
	})
	if want := "notes counted: CST1:2; diverted to the reject bin: CST2:1"; text != want {
		t.Errorf("journal text %q, want %q", text, want)
	}
	slices.SortFunc(counts, func(a, b store.UnitCounters) int { return int(a.UnitID[3]) - int(b.UnitID[3]) })
	if len(counts) != 2 || counts[0].Dispensed != 2 || counts[0].Rejected != 0 ||
		counts[1].Dispensed != 1 || counts[1].Rejected != 1 || counts[1].Remaining != counts[1].Loaded-1 {
		t.Fatalf("counters %+v", counts)
	}
}

// TestRejectedAdviceIsMarked: an advice the host refuses stays queued and
// is marked rejected (the host_rejected alarm); once the host takes it,
// nothing is marked any more.
func TestRejectedAdviceIsMarked(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	r.host.SetFaults(hostfake.Faults{SAFErr: &host.RejectedError{MTI: "0230", STAN: "000002", ResponseCode: "12"}})
	if res := r.command(r.session(10000), "000001"); res.ResponseCode != "00" {
		t.Fatal(res)
	}
	for i := 0; i < 1000; i++ {
		if n, err := r.core.RejectedSAF(); err == nil && n == 1 {
			break
		}
		r.advance(r.retry)
		time.Sleep(5 * time.Millisecond)
	}
	if n, _ := r.core.RejectedSAF(); n != 1 {
		t.Fatalf("%d rejected items, want the advice", n)
	}
	r.host.SetFaults(hostfake.Faults{})
	for i := 0; i < 1000; i++ {
		if n, err := r.core.PendingSAF(); err == nil && n == 0 {
			break
		}
		r.advance(r.retry)
		time.Sleep(5 * time.Millisecond)
	}
	if n, _ := r.core.RejectedSAF(); n != 0 {
		t.Fatalf("%d rejected items after the host took the advice", n)
	}
}
