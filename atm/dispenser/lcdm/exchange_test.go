//go:build unix

package lcdm_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm/lcdmsim"
)

var _ atm.UnitExchanger = (*lcdm.Driver)(nil)

// TestExchangeUnits: the driver, which counts the cassettes, takes the
// new counts of a replenishment, reports them, and keeps them across a
// restart; bad units, and an exchange while notes are presented, are
// refused with nothing changed.
func TestExchangeUnits(t *testing.T) {
	r := newRig(t, defaultUnits(), lcdmsim.Faults{})
	ctx := context.Background()
	if _, err := r.drv.Dispense(ctx, dispenser.Mix{"CST1": 2}, r.token(20000)); err != nil {
		t.Fatal(err)
	}
	status := func() []dispenser.CashUnit {
		t.Helper()
		st, err := r.drv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range st.Units {
			st.Units[i].Status = ""
		}
		return st.Units
	}
	before := status()
	if err := r.drv.ExchangeUnits(ctx, []dispenser.CashUnit{{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 1}}); !errors.Is(err, dispenser.ErrSequence) {
		t.Fatalf("exchange with notes presented: %v, want ErrSequence", err)
	}
	if _, err := r.drv.Retract(ctx); !errors.Is(err, dispenser.ErrNoItems) { // the LCDM delivers: the notes count as taken
		t.Fatal(err)
	}
	for name, units := range map[string][]dispenser.CashUnit{
		"unknown unit": {{ID: "CST9", Denomination: 10000, Currency: "CNY", Count: 1}},
		"twice":        {{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 1}, {ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 2}},
		"no value":     {{ID: "CST2", Denomination: 0, Currency: "CNY", Count: 1}},
	} {
		if err := r.drv.ExchangeUnits(ctx, units); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if got := status(); !slices.Equal(got, before) {
			t.Errorf("%s: a refused exchange changed the units: %+v", name, got)
		}
	}
	if err := r.drv.ExchangeUnits(ctx, []dispenser.CashUnit{{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 1500}}); err != nil {
		t.Fatal(err)
	}
	want := []dispenser.CashUnit{
		{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 1500},
		{ID: "CST2", Denomination: 5000, Currency: "CNY", Count: 200},
	}
	if got := status(); !slices.Equal(got, want) {
		t.Fatalf("after the exchange: %+v", got)
	}
	r.restartDriver()
	if got := status(); !slices.Equal(got, want) {
		t.Fatalf("after a restart: %+v", got)
	}
}
