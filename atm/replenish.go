package atm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/store"
)

// Replenishment (issue 13): with the terminal out of service by an
// operator (TakeOutOfService) and no session in progress or in doubt, the
// operator takes the cassettes out, counts the notes left in each, puts
// in cassettes with their new notes, and tells the ATM (Replenish). The ATM compares each
// count with its counters, journals every cassette with the operator (a
// difference is a journaled ALARM), resets the counters of the cassettes
// put in to their new counts, in one commit, and only then tells the
// device the new counts (UnitExchanger, off the owner goroutine). Then it
// compares its counters with the device's report again: a device that does
// not agree keeps the terminal out of service ("counters") until an
// operator has resolved it. The operator puts the terminal back in service
// with PutInService once the report is printed.

// UnitExchanger is the optional dispenser capability to take new
// cassettes: ExchangeUnits tells the device the denomination, currency and
// note count of each unit put in (the XFS4IoT exchange: Storage.
// StartExchange, SetStorage, EndExchange); units not named keep theirs.
// The device refuses it while notes of a transaction are inside it.
// Without the capability the device keeps its own counts (set with the
// vendor's replenishment tool), and the ATM's comparison after the
// replenishment is what checks them.
type UnitExchanger interface {
	ExchangeUnits(ctx context.Context, units []dispenser.CashUnit) error
}

// ErrBadReplenishment: the replenishment does not fit the terminal (a
// unit counted twice, one not counted before it is loaded, a currency the
// terminal does not pay out...). The error says which.
var ErrBadReplenishment = errors.New("atm: replenishment refused")

// maxCassetteNotes bounds a count: no cassette holds more.
const maxCassetteNotes = 100_000

// CassetteCount is the operator's count of the notes left in a cassette
// taken out.
type CassetteCount struct {
	UnitID string `json:"unit_id"`
	Notes  int64  `json:"notes"`
}

// CassetteLoad is a cassette put in: its unit, note value (minor units),
// currency (ISO 4217 alphabetic, the terminal's) and notes.
type CassetteLoad struct {
	UnitID       string `json:"unit_id"`
	Denomination int64  `json:"denomination"`
	Currency     string `json:"currency"`
	Notes        int64  `json:"notes"`
}

// Replenishment is what the operator did: the cassettes taken out with
// their counts, the cassettes put in. Every unit put in that the ATM has
// counters for must have been counted, and every unit counted must be put
// in again (possibly empty); units not named are left as they are.
type Replenishment struct {
	Removed []CassetteCount `json:"removed"`
	Loaded  []CassetteLoad  `json:"loaded"`
}

// CassetteCounters are one cassette's counters in notes (Denomination in
// minor units): loaded at the last replenishment, dispensed out of it,
// rejected to the reject bin and retracted from the exit among those, and
// remaining in it.
type CassetteCounters struct {
	UnitID       string `json:"unit_id"`
	Denomination int64  `json:"denomination"`
	Currency     string `json:"currency"`
	Loaded       int64  `json:"loaded"`
	Dispensed    int64  `json:"dispensed"`
	Rejected     int64  `json:"rejected"`
	Retracted    int64  `json:"retracted"`
	Remaining    int64  `json:"remaining"`
}

func cassetteCounters(u store.UnitCounters) CassetteCounters {
	return CassetteCounters{UnitID: u.UnitID, Denomination: u.Denomination, Currency: u.Currency,
		Loaded: u.Loaded, Dispensed: u.Dispensed, Rejected: u.Rejected, Retracted: u.Retracted, Remaining: u.Remaining}
}

// RemovedCassette is a cassette taken out: its counters at that moment and
// the operator's count. Difference is Counted less Remaining: negative
// when notes are missing, positive when there are more than counted out.
type RemovedCassette struct {
	CassetteCounters
	Counted    int64 `json:"counted"`
	Difference int64 `json:"difference"`
}

// Device outcomes of a replenishment (ReplenishmentReport.Device).
const (
	DeviceCountsSet  = "counts_set"  // the device took the new counts (UnitExchanger)
	DeviceOwnCounts  = "own_counts"  // the device keeps its own counts (no exchange command); compared below
	DeviceCountsFail = "counts_fail" // the device refused the new counts (DeviceError)
)

// ReplenishmentReport is the record of a replenishment, for the screen,
// the printer (Lines) and export (JSON).
type ReplenishmentReport struct {
	TerminalID string            `json:"terminal_id"`
	Operator   string            `json:"operator"`
	Time       time.Time         `json:"time"` // in the terminal's day zone
	Currency   string            `json:"currency"`
	Exponent   int               `json:"exponent"`
	Removed    []RemovedCassette `json:"removed"`
	Loaded     []CassetteLoad    `json:"loaded"`
	// Device says whether the device took the new counts (Device*);
	// DeviceError why not.
	Device      string `json:"device"`
	DeviceError string `json:"device_error,omitempty"`
	// CountersChecked: the counters were compared with the device's
	// report after the replenishment (false when the device has not
	// reported yet: the comparison runs at its next report). Mismatches
	// are the units where they differ ("CST1: ATM 500, device 480"); the
	// terminal stays out of service ("counters") while there are any.
	CountersChecked bool     `json:"counters_checked"`
	Mismatches      []string `json:"mismatches,omitempty"`
}

// Differences returns the removed cassettes whose count differs from the
// counters.
func (r *ReplenishmentReport) Differences() []RemovedCassette {
	var out []RemovedCassette
	for _, c := range r.Removed {
		if c.Difference != 0 {
			out = append(out, c)
		}
	}
	return out
}

// CheckRemoved compares the operator's counts of cassettes taken out with
// the counters, without recording anything: what the screen shows before
// the operator confirms the replenishment.
func (a *ATM) CheckRemoved(counts []CassetteCount) ([]RemovedCassette, error) {
	var have []store.UnitCounters
	if err := a.db.View(func(tx *store.Tx) (err error) { have, err = tx.UnitCounters(); return err }); err != nil {
		return nil, err
	}
	return removedCassettes(have, counts)
}

func removedCassettes(have []store.UnitCounters, counts []CassetteCount) ([]RemovedCassette, error) {
	seen := map[string]bool{}
	var out []RemovedCassette
	for _, c := range counts {
		i := slices.IndexFunc(have, func(u store.UnitCounters) bool { return u.UnitID == c.UnitID })
		switch {
		case c.UnitID == "":
			return nil, fmt.Errorf("%w: a counted cassette has no unit ID", ErrBadReplenishment)
		case seen[c.UnitID]:
			return nil, fmt.Errorf("%w: unit %s counted twice", ErrBadReplenishment, c.UnitID)
		case i < 0:
			return nil, fmt.Errorf("%w: the ATM has no counters for unit %s", ErrBadReplenishment, c.UnitID)
		case c.Notes < 0 || c.Notes > maxCassetteNotes:
			return nil, fmt.Errorf("%w: unit %s: %d notes counted", ErrBadReplenishment, c.UnitID, c.Notes)
		}
		seen[c.UnitID] = true
		u := have[i]
		out = append(out, RemovedCassette{CassetteCounters: cassetteCounters(u), Counted: c.Notes, Difference: c.Notes - u.Remaining})
	}
	return out, nil
}

// Replenish records a replenishment by operator (see Replenishment for
// the rules on the units) and returns its report. It is refused with
// ErrBusy while a session is in progress, ErrSettleFirst while sessions
// are in doubt (the cassettes' count is the evidence for them), and
// ErrBadReplenishment when the units do not fit; nothing is recorded
// then. A terminal not yet out of service by an operator is taken out of
// service in the same commit (the screens take it out first, before the
// cassettes come out), and it stays out: PutInService puts it back once
// the report is printed.
//
// The counts, the differences and the new counters are committed in one
// bbolt transaction, with journal entries naming the operator, before the
// device is told the new counts; the device call runs on the caller's
// goroutine, never the one that owns the sessions. A device that refuses
// them, or that reports other counts afterwards, leaves the terminal out
// of service ("counters"), and the report says so.
func (a *ATM) Replenish(ctx context.Context, operator string, r Replenishment) (*ReplenishmentReport, error) {
	var (
		rep   *ReplenishmentReport
		units []dispenser.CashUnit
		err   error
	)
	if e := a.do(ctx, func(context.Context) { rep, units, err = a.beginReplenish(operator, r) }); e != nil {
		return nil, e
	}
	if err != nil {
		return nil, err
	}
	var derr error
	if x, ok := a.cfg.Dispenser.(UnitExchanger); ok {
		xctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		derr = x.ExchangeUnits(xctx, units)
		cancel()
		rep.Device = DeviceCountsSet
		if derr != nil {
			rep.Device, rep.DeviceError = DeviceCountsFail, derr.Error()
		}
	} else {
		rep.Device = DeviceOwnCounts
	}
	if _, serr := a.dispenserStatus(ctx); serr != nil && derr == nil {
		a.log.Warn("replenishment: no device status after the exchange; the counters are compared at its next report", "err", serr)
	}
	if e := a.do(context.WithoutCancel(ctx), func(c context.Context) { err = a.endReplenish(c, rep) }); e != nil {
		return nil, e
	}
	return rep, err
}

// beginReplenish checks the replenishment and commits it (owner
// goroutine); the terminal is in maintenance until endReplenish.
func (a *ATM) beginReplenish(operator string, r Replenishment) (*ReplenishmentReport, []dispenser.CashUnit, error) {
	switch {
	case operator == "":
		return nil, nil, errors.New("atm: replenish: the operator must be named")
	case a.cur != nil && !a.cur.State.Terminal():
		return nil, nil, ErrBusy
	case a.maintenance:
		return nil, nil, ErrOperatorBusy
	}
	list, err := a.InDoubt()
	if err != nil {
		return nil, nil, err
	}
	if len(list) > 0 {
		return nil, nil, fmt.Errorf("%w: %d in doubt", ErrSettleFirst, len(list))
	}
	rep := &ReplenishmentReport{TerminalID: a.cfg.TerminalID, Operator: operator, Time: a.now().In(a.cfg.DayZone),
		Currency: a.cfg.CurrencyAlpha, Exponent: a.cfg.Exponent}
	var units []dispenser.CashUnit
	takeOut := !a.operatorOut
	err = a.db.UpdateLabeled("replenish", func(tx *store.Tx) error {
		if takeOut {
			if err := putOperatorOut(tx, 1, store.Entry{Kind: "OUT OF SERVICE", Text: "operator " + operator +
				" took the terminal out of service for a replenishment", Data: map[string]string{"operator": operator}}); err != nil {
				return err
			}
		}
		have, err := tx.UnitCounters()
		if err != nil {
			return err
		}
		if rep.Removed, err = removedCassettes(have, r.Removed); err != nil {
			return err
		}
		if units, err = a.checkLoads(have, r); err != nil {
			return err
		}
		rep.Loaded = slices.Clone(r.Loaded)
		for _, c := range rep.Removed {
			text := fmt.Sprintf("operator %s took out %s: counted %d notes, counters %d", operator, c.UnitID, c.Counted, c.Remaining)
			if c.Difference != 0 {
				text += fmt.Sprintf(": DIFFERENCE %+d notes (%s)", c.Difference, money(c.Difference*c.Denomination, a.cfg.Exponent, c.Currency))
			}
			if _, err := tx.AppendJournal(store.Entry{Kind: "CASSETTE REMOVED", Text: text, Data: map[string]string{
				"operator": operator, "unit": c.UnitID, "counted": fmt.Sprint(c.Counted), "counters": fmt.Sprint(c.Remaining),
				"difference": fmt.Sprint(c.Difference), "loaded": fmt.Sprint(c.Loaded), "dispensed": fmt.Sprint(c.Dispensed),
				"rejected": fmt.Sprint(c.Rejected), "retracted": fmt.Sprint(c.Retracted)}}); err != nil {
				return err
			}
		}
		for _, l := range r.Loaded {
			if err := tx.PutUnitCounters(store.UnitCounters{UnitID: l.UnitID, Denomination: l.Denomination, Currency: l.Currency,
				Loaded: l.Notes, Remaining: l.Notes}); err != nil {
				return err
			}
			if _, err := tx.AppendJournal(store.Entry{Kind: "CASSETTE LOADED",
				Text: fmt.Sprintf("operator %s put in %s: %d notes of %s %s; counters reset", operator, l.UnitID, l.Notes,
					dispenser.FormatAmount(l.Denomination, a.cfg.Exponent), l.Currency),
				Data: map[string]string{"operator": operator, "unit": l.UnitID, "notes": fmt.Sprint(l.Notes),
					"denomination": fmt.Sprint(l.Denomination), "currency": l.Currency}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrBadReplenishment) {
			a.storageFailed(err)
		}
		return nil, nil, fmt.Errorf("atm: replenish: %w", err)
	}
	if d := rep.Differences(); len(d) > 0 {
		var parts []string
		for _, c := range d {
			parts = append(parts, fmt.Sprintf("%s %+d notes", c.UnitID, c.Difference))
		}
		a.log.Error("ALARM replenishment: cassette counts differ from the counters (journaled)", "operator", operator, "units", strings.Join(parts, ", "))
	}
	a.operatorOut = true
	a.maintenance = true
	a.setService(false, "maintenance")
	return rep, units, nil
}

// checkLoads checks the cassettes put in against the counters (have), the
// counts and the device's units, and returns them as the device's cash
// units.
func (a *ATM) checkLoads(have []store.UnitCounters, r Replenishment) ([]dispenser.CashUnit, error) {
	bad := func(format string, args ...any) ([]dispenser.CashUnit, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrBadReplenishment}, args...)...)
	}
	if len(r.Loaded) == 0 {
		return bad("no cassette put in")
	}
	counted := map[string]bool{}
	for _, c := range r.Removed {
		counted[c.UnitID] = true
	}
	var device []dispenser.CashUnit
	if st, err := a.cachedStatus(); err == nil {
		device = st.Units
	}
	seen := map[string]bool{}
	var units []dispenser.CashUnit
	for _, l := range r.Loaded {
		known := slices.ContainsFunc(have, func(u store.UnitCounters) bool { return u.UnitID == l.UnitID })
		switch {
		case l.UnitID == "":
			return bad("a cassette put in has no unit ID")
		case seen[l.UnitID]:
			return bad("unit %s put in twice", l.UnitID)
		case known && !counted[l.UnitID]:
			return bad("unit %s is put in without the count of the notes left in it", l.UnitID)
		case l.Denomination <= 0:
			return bad("unit %s: denomination %d", l.UnitID, l.Denomination)
		case l.Currency != a.cfg.CurrencyAlpha:
			return bad("unit %s: currency %q, the terminal pays out %s", l.UnitID, l.Currency, a.cfg.CurrencyAlpha)
		case l.Notes < 0 || l.Notes > maxCassetteNotes:
			return bad("unit %s: %d notes", l.UnitID, l.Notes)
		case len(device) > 0 && !slices.ContainsFunc(device, func(u dispenser.CashUnit) bool { return u.ID == l.UnitID }):
			return bad("the dispenser has no unit %s", l.UnitID)
		}
		seen[l.UnitID] = true
		units = append(units, dispenser.CashUnit{ID: l.UnitID, Denomination: l.Denomination, Currency: l.Currency, Count: int(l.Notes)})
	}
	for id := range counted {
		if !seen[id] {
			return bad("unit %s was taken out and not put in again (put it in, empty if need be)", id)
		}
	}
	return units, nil
}

// endReplenish journals the device's outcome, compares the counters with
// the device's report and ends the maintenance (owner goroutine).
func (a *ATM) endReplenish(ctx context.Context, rep *ReplenishmentReport) error {
	a.maintenance = false
	text := "replenishment by operator " + rep.Operator + ": "
	switch rep.Device {
	case DeviceCountsSet:
		text += "the dispenser took the new counts"
	case DeviceOwnCounts:
		text += "the dispenser keeps its own counts (no exchange command); they are compared with the counters"
	default:
		text += "the dispenser refused the new counts: " + rep.DeviceError
	}
	data := map[string]string{"operator": rep.Operator, "device": rep.Device, "removed": fmt.Sprint(len(rep.Removed)),
		"loaded": fmt.Sprint(len(rep.Loaded)), "differences": fmt.Sprint(len(rep.Differences()))}
	err := a.db.UpdateLabeled("replenished", func(tx *store.Tx) error {
		_, err := tx.AppendJournal(store.Entry{Kind: "REPLENISHED", Text: text, Data: data})
		return err
	})
	if err != nil {
		a.storageFailed(err)
	}
	// Compare the new counters with the device's report, afresh.
	a.countersChecked, a.countersDiffer = false, false
	a.checkCountersOnce()
	rep.CountersChecked = a.countersChecked
	if a.countersDiffer {
		st, _ := a.cachedStatus()
		var have []store.UnitCounters
		if verr := a.db.View(func(tx *store.Tx) (err error) { have, err = tx.UnitCounters(); return err }); verr == nil {
			rep.Mismatches = counterDiffs(have, st.Units)
		}
	}
	a.refreshService(ctx)
	if rep.Device == DeviceCountsFail {
		a.log.Error("replenishment: the dispenser refused the new counts", "operator", rep.Operator, "err", rep.DeviceError)
	} else {
		a.log.Warn("replenished", "operator", rep.Operator, "device", rep.Device, "mismatches", len(rep.Mismatches))
	}
	if err != nil {
		return fmt.Errorf("atm: replenish: journal the outcome: %w", err)
	}
	return nil
}
