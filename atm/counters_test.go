package atm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/store"
)

// TestCountersMismatchHoldsOutOfService: the store's cassette counters are
// put back to what they were before a withdrawal (an older copy of the
// file, say); at the next start they disagree with the device, and the
// terminal stays out of service ("counters") until an operator adopts the
// device's counts, after which they agree and it serves again.
func TestCountersMismatchHoldsOutOfService(t *testing.T) {
	fake := clock.NewFake(defaultStart)
	r := newRigOn(t, dispensersim.Faults{}, fake, fake)
	stopRig(r)
	core, stop := runCore(t, r, nil)
	waitService(t, core, true, "")
	var before []store.UnitCounters
	if err := r.db.View(func(tx *store.Tx) (err error) { before, err = tx.UnitCounters(); return err }); err != nil || len(before) != 2 {
		t.Fatalf("counters %+v %v", before, err)
	}
	s := sessionOn(t, core, 15000)
	if res := core.HandleCommand(context.Background(), cmdFor(s, "000001")); res.ResponseCode != "00" {
		t.Fatalf("withdrawal %+v", res)
	}
	stop()
	if err := r.db.Update(func(tx *store.Tx) error {
		for _, c := range before {
			if err := tx.PutUnitCounters(c); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	core, _ = runCore(t, r, nil)
	waitService(t, core, false, "counters")
	if err := core.AdoptDeviceCounters(context.Background(), ""); err == nil {
		t.Fatal("adopted without an operator")
	}
	if err := core.AdoptDeviceCounters(context.Background(), "op-7"); err != nil {
		t.Fatal(err)
	}
	waitService(t, core, true, "")
	var after []store.UnitCounters
	if err := r.db.View(func(tx *store.Tx) (err error) { after, err = tx.UnitCounters(); return err }); err != nil {
		t.Fatal(err)
	}
	remaining := map[string]int64{}
	for _, c := range after {
		remaining[c.UnitID] = c.Remaining
	}
	for _, u := range r.sim.Counters() {
		if remaining[u.ID] != int64(u.Count) {
			t.Fatalf("after adoption unit %s: ATM %d, device %d", u.ID, remaining[u.ID], u.Count)
		}
	}
	if err := core.AdoptDeviceCounters(context.Background(), "op-7"); !errors.Is(err, atm.ErrCountersAgree) {
		t.Fatalf("second adoption: %v, want ErrCountersAgree", err)
	}
}

func waitService(t *testing.T, core *atm.ATM, in bool, reason string) {
	t.Helper()
	for range 1000 {
		if v := core.View(); v.InService == in && v.Reason == reason {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	v := core.View()
	t.Fatalf("in service %v (%q), want %v (%q)", v.InService, v.Reason, in, reason)
}
