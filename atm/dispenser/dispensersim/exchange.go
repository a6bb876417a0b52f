package dispensersim

import (
	"context"
	"fmt"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

// ExchangeUnits is the cassette exchange of a replenishment (XFS4IoT
// Storage.StartExchange, SetStorage, EndExchange): every unit named takes
// the denomination, currency and note count given, and its counters start
// again (loaded = count; dispensed, rejected and retracted zero: the
// reject and retract bins were emptied with it). Units not named keep
// theirs. The device records it before returning ("Exchange" for
// AfterSave).
//
// It is refused, changing nothing, when the device is offline
// (ErrDeviceNotReady), while notes of a transaction are in the stacker or
// at the exit (ErrSequence), or for a unit the device does not have, a
// unit named twice, a non-positive denomination, a negative count or a
// currency code that is not three letters.
func (s *Sim) ExchangeUnits(ctx context.Context, units []dispenser.CashUnit) error {
	if err := s.sleep(ctx, s.cfg.Latency); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.Offline {
		return fmt.Errorf("%w: offline", dispenser.ErrDeviceNotReady)
	}
	if s.st.Stacker.Notes() > 0 || s.st.Exit.Notes() > 0 {
		return fmt.Errorf("%w: notes of a transaction are inside the device; reset it first", dispenser.ErrSequence)
	}
	st := s.st.clone()
	seen := map[string]bool{}
	for _, u := range units {
		cur := st.unit(u.ID)
		switch {
		case cur == nil:
			return fmt.Errorf("dispensersim: exchange: no unit %q", u.ID)
		case seen[u.ID]:
			return fmt.Errorf("dispensersim: exchange: unit %s named twice", u.ID)
		case u.Denomination <= 0 || u.Count < 0 || len(u.Currency) != 3:
			return fmt.Errorf("dispensersim: exchange: unit %s: bad denomination, count or currency", u.ID)
		}
		seen[u.ID] = true
		*cur = UnitCounters{ID: u.ID, Denomination: u.Denomination, Currency: u.Currency, Count: u.Count,
			Inoperative: cur.Inoperative, Loaded: u.Count}
	}
	if err := s.commit(st, "Exchange"); err != nil {
		return err
	}
	s.log.Info("dispenser cassettes exchanged", "units", len(units))
	return nil
}
