package atm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/store"
)

// At every start, once recovery has settled the store and the dispenser
// has reported, the cassette counters the ATM keeps are compared with the
// notes the device counts in each unit. They must agree: a difference
// means the store is not the latest one (an older copy put back), the
// cassettes were changed outside the ATM, or the device was swapped. The
// terminal then stays out of service ("counters") and an ALARM is logged
// and journaled, until an operator has counted the cassettes and adopts the
// device's counts (AdoptDeviceCounters).

// ErrCountersAgree: there is no counter difference to resolve.
var ErrCountersAgree = errors.New("atm: the cassette counters agree with the device")

// counterDiffs lists, per unit, the store's remaining count against the
// device's, for the units where they differ (a unit the store does not
// know counts as remaining 0).
func counterDiffs(have []store.UnitCounters, units []dispenser.CashUnit) []string {
	byID := map[string]int64{}
	for _, c := range have {
		byID[c.UnitID] = c.Remaining
	}
	var diffs []string
	for _, u := range units {
		if r := byID[u.ID]; r != int64(u.Count) {
			diffs = append(diffs, fmt.Sprintf("%s: ATM %d, device %d", u.ID, r, u.Count))
		}
	}
	slices.Sort(diffs)
	return diffs
}

// checkCountersOnce compares the counters with the cached device status,
// once per start (owner goroutine, no session in flight).
func (a *ATM) checkCountersOnce() {
	if a.countersChecked {
		return
	}
	st, err := a.cachedStatus()
	if err != nil || len(st.Units) == 0 {
		return // no evidence yet: checked on a later status
	}
	var have []store.UnitCounters
	if err := a.db.View(func(tx *store.Tx) (err error) { have, err = tx.UnitCounters(); return err }); err != nil {
		a.log.Error("cannot read the cassette counters", "err", err)
		return
	}
	a.countersChecked = true
	diffs := counterDiffs(have, st.Units)
	if len(diffs) == 0 {
		return
	}
	a.countersDiffer = true
	text := "cassette counters differ from the device's: " + strings.Join(diffs, "; ")
	a.log.Error("ALARM " + text + "; out of service until an operator counts the cassettes and adopts the device's counts")
	a.appendJournal("counters", store.Entry{Kind: "COUNTERS MISMATCH", Text: text})
}

// AdoptDeviceCounters is the operator's resolution of a counter
// difference found at start: having counted the cassettes, operator
// confirms the device's counts, which become the ATM's remaining counts
// (journaled with the operator and both figures of every unit). The
// terminal can then go back in service.
func (a *ATM) AdoptDeviceCounters(ctx context.Context, operator string) error {
	var err error
	if e := a.do(ctx, func(ctx context.Context) { err = a.adoptDeviceCounters(ctx, operator) }); e != nil {
		return e
	}
	return err
}

func (a *ATM) adoptDeviceCounters(ctx context.Context, operator string) error {
	if operator == "" {
		return errors.New("atm: adopt counters: the operator must be named")
	}
	if !a.countersDiffer {
		return ErrCountersAgree
	}
	st, err := a.cachedStatus()
	if err != nil {
		return fmt.Errorf("atm: adopt counters: no device status: %w", err)
	}
	var diffs []string
	err = a.db.UpdateLabeled("counters", func(tx *store.Tx) error {
		have, err := tx.UnitCounters()
		if err != nil {
			return err
		}
		diffs = counterDiffs(have, st.Units)
		byID := map[string]store.UnitCounters{}
		for _, c := range have {
			byID[c.UnitID] = c
		}
		for _, u := range st.Units {
			c, ok := byID[u.ID]
			if !ok {
				c = store.UnitCounters{UnitID: u.ID, Denomination: u.Denomination, Currency: u.Currency, Loaded: int64(u.Count)}
			}
			c.Remaining = int64(u.Count)
			if err := tx.PutUnitCounters(c); err != nil {
				return err
			}
		}
		_, err = tx.AppendJournal(store.Entry{Kind: "COUNTERS ADOPTED",
			Text: "operator " + operator + " counted the cassettes and adopted the device's counts: " + strings.Join(diffs, "; "),
			Data: map[string]string{"operator": operator}})
		return err
	})
	if err != nil {
		return fmt.Errorf("atm: adopt counters: %w", err)
	}
	a.countersDiffer = false
	a.log.Warn("cassette counters adopted from the device", "operator", operator, "units", diffs)
	a.refreshService(ctx)
	return nil
}
