package dispensersim

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/dispenser"
)

var _ atm.UnitExchanger = (*Sim)(nil)

// TestExchangeUnits: an exchange sets the units named (counts,
// denomination, counters from zero), keeps the others, survives a
// restart, and is refused, changing nothing, while notes are in the
// device, when offline, or for a unit the device does not have.
func TestExchangeUnits(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "sim.json")
	s := newSim(t, file, Faults{})
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 2}, token(t, s, 20000)); err != nil {
		t.Fatal(err)
	}
	before := s.Counters()
	err := s.ExchangeUnits(ctx, []dispenser.CashUnit{{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 500}})
	if !errors.Is(err, dispenser.ErrSequence) {
		t.Fatalf("exchange with notes in the stacker: %v, want ErrSequence", err)
	}
	if !slices.Equal(s.Counters(), before) {
		t.Fatal("a refused exchange changed the counters")
	}
	if _, err := s.Retract(ctx); err != nil {
		t.Fatal(err)
	}
	for name, units := range map[string][]dispenser.CashUnit{
		"unknown unit": {{ID: "CST9", Denomination: 10000, Currency: "CNY", Count: 1}},
		"twice":        {{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 1}, {ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 2}},
		"no value":     {{ID: "CST1", Denomination: 0, Currency: "CNY", Count: 1}},
		"negative":     {{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: -1}},
	} {
		before := s.Counters()
		if err := s.ExchangeUnits(ctx, units); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if !slices.Equal(s.Counters(), before) {
			t.Errorf("%s: a refused exchange changed the counters", name)
		}
	}
	s.SetFaults(Faults{Offline: true})
	if err := s.ExchangeUnits(ctx, []dispenser.CashUnit{{ID: "CST2", Denomination: 5000, Currency: "CNY", Count: 9}}); !errors.Is(err, dispenser.ErrDeviceNotReady) {
		t.Fatalf("offline: %v", err)
	}
	s.SetFaults(Faults{})
	if err := s.ExchangeUnits(ctx, []dispenser.CashUnit{
		{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 500},
		{ID: "CST2", Denomination: 2000, Currency: "CNY", Count: 300},
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]UnitCounters{
		"CST1": {ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 500, Loaded: 500},
		"CST2": {ID: "CST2", Denomination: 2000, Currency: "CNY", Count: 300, Loaded: 300},
		"CST3": {ID: "CST3", Denomination: 2000, Currency: "CNY", Count: 0, Loaded: 0},
		"CST4": {ID: "CST4", Denomination: 1000, Currency: "CNY", Count: 100, Loaded: 100, Inoperative: true},
	}
	again, err := New(Config{Units: testUnits(), TokenKey: key, Exponent: 2, StateFile: file})
	if err != nil {
		t.Fatal(err)
	}
	for _, sim := range []*Sim{s, again} {
		got := counters(sim)
		for id, w := range want {
			if got[id] != w {
				t.Errorf("%s after the exchange: %+v, want %+v", id, got[id], w)
			}
		}
	}
	st, err := again.Status(ctx)
	if err != nil || st.Units[1].Count != 300 || st.Units[1].Denomination != 2000 {
		t.Fatalf("status after restart: %+v %v", st.Units, err)
	}
}
