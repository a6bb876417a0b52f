package lcdm

import (
	"context"
	"fmt"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

// ExchangeUnits records new cassettes after a replenishment: the LCDM
// does not count its cassettes, the driver does, so each unit named takes
// the denomination, currency and note count given, with its counters
// from zero (loaded = count, nothing picked or rejected) and any bill-end
// mark cleared; units not named keep theirs. It is saved before it
// returns. Refused, changing nothing, while the transport may hold notes
// (a purge is pending: Reset first) or notes are presented
// (dispenser.ErrSequence), and for a unit the driver does not have, a
// unit named twice, a non-positive denomination, a negative count or a
// currency code that is not three letters. The device itself is not
// asked anything.
func (d *Driver) ExchangeUnits(ctx context.Context, units []dispenser.CashUnit) error {
	if err := d.acquire(ctx); err != nil {
		return err
	}
	defer d.release()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.PurgeNeeded || d.st.Last.State == dispenser.PresentPresented {
		return fmt.Errorf("%w: notes may be in the transport or at the exit; reset the dispenser first", dispenser.ErrSequence)
	}
	st := d.st.clone()
	seen := map[string]bool{}
	for _, u := range units {
		cur := st.unit(u.ID)
		switch {
		case cur == nil:
			return fmt.Errorf("lcdm: exchange: no unit %q", u.ID)
		case seen[u.ID]:
			return fmt.Errorf("lcdm: exchange: unit %s named twice", u.ID)
		case u.Denomination <= 0 || u.Count < 0 || len(u.Currency) != 3:
			return fmt.Errorf("lcdm: exchange: unit %s: bad denomination, count or currency", u.ID)
		}
		seen[u.ID] = true
		*cur = unitState{ID: u.ID, Denomination: u.Denomination, Currency: u.Currency, Count: u.Count,
			Inoperative: cur.Inoperative, Loaded: u.Count}
	}
	if err := d.save(st); err != nil {
		return err
	}
	d.log.Info("lcdm: cassettes exchanged", "units", len(units))
	return nil
}
