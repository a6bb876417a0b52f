package uifake

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cardless-atm/cardless/ui"
)

// ErrBusy is what SetInService(op, false) answers while the fake is in a
// customer phase, as the core does.
var ErrBusy = errors.New("uifake: a customer's session is in progress")

var _ ui.Operations = (*Backend)(nil)

// SetInService implements ui.Operations.
func (b *Backend) SetInService(operator string, in bool) error {
	b.enter("SetInService", fmt.Sprintf("SetInService(%s, %v)", operator, in))
	b.mu.Lock()
	defer b.mu.Unlock()
	if !in && b.snap.Phase != ui.Idle && b.snap.Phase != ui.OutOfService {
		return ErrBusy
	}
	b.sup.InService = in
	b.sup.Reason = ""
	if !in {
		b.sup.Reason = "maintenance"
	}
	return nil
}

// InDoubt implements ui.Operations: the sessions in InDoubtList.
func (b *Backend) InDoubt() ([]ui.InDoubtInfo, error) {
	b.enter("InDoubt", "InDoubt")
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.InDoubtList), nil
}

// Settle implements ui.Operations: the session leaves InDoubtList.
func (b *Backend) Settle(operator, session string, paid int64) error {
	b.enter("Settle", fmt.Sprintf("Settle(%s, %s, %d)", operator, session, paid))
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.IndexFunc(b.InDoubtList, func(s ui.InDoubtInfo) bool { return s.Session == session })
	if i < 0 {
		return fmt.Errorf("uifake: no session %s in doubt", session)
	}
	b.InDoubtList = slices.Delete(b.InDoubtList, i, i+1)
	return nil
}

// Replenish implements ui.Operations: the report compares the counted
// notes with the units' counts, and the loaded cassettes become the units.
func (b *Backend) Replenish(operator string, removed []ui.UnitCount, loaded []ui.UnitLoad) (ui.ReplenishReport, error) {
	b.enter("Replenish", fmt.Sprintf("Replenish(%s, %v, %v)", operator, removed, loaded))
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sup.InService {
		return ui.ReplenishReport{}, errors.New("uifake: take the terminal out of service first")
	}
	r := ui.ReplenishReport{Time: b.now(), Loaded: slices.Clone(loaded)}
	for _, c := range removed {
		i := slices.IndexFunc(b.sup.Units, func(u ui.UnitInfo) bool { return u.ID == c.ID })
		if i < 0 {
			return ui.ReplenishReport{}, fmt.Errorf("uifake: no unit %s", c.ID)
		}
		u := b.sup.Units[i]
		r.Removed = append(r.Removed, ui.RemovedUnit{ID: u.ID, Currency: u.Currency, Denom: u.Denom, Expected: u.Count, Counted: c.Notes})
	}
	b.sup.Units = nil
	for _, l := range loaded {
		b.sup.Units = append(b.sup.Units, ui.UnitInfo{ID: l.ID, Currency: l.Currency, Denom: l.Denom, Count: l.Notes})
	}
	return r, nil
}

// Balance implements ui.Operations: BalanceLines for any day ("" is the
// clock's).
func (b *Backend) Balance(operator, day string) (ui.BalanceReport, error) {
	b.enter("Balance", fmt.Sprintf("Balance(%s, %s)", operator, day))
	b.mu.Lock()
	defer b.mu.Unlock()
	if day == "" {
		day = b.now().Format(time.DateOnly)
	}
	return ui.BalanceReport{Day: day, Lines: slices.Clone(b.BalanceLines), PendingReversals: 1}, nil
}

// Journal implements ui.Operations: the supervisor's journal lines, of
// one session when asked (the fake ignores the day).
func (b *Backend) Journal(day, session string, max int) ([]ui.JournalLine, error) {
	b.enter("Journal", fmt.Sprintf("Journal(%s, %s, %d)", day, session, max))
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []ui.JournalLine
	for _, l := range b.sup.Journal {
		if session == "" || l.Session == session {
			out = append(out, l)
		}
	}
	return out[len(out)-min(len(out), max):], nil
}

// PrintReport implements ui.Operations: the lines are kept (Printed).
func (b *Backend) PrintReport(lines []string) error {
	b.enter("PrintReport", "PrintReport")
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.PrintErr != nil {
		return b.PrintErr
	}
	b.printed = append(b.printed, slices.Clone(lines))
	return nil
}

// TestDevices implements ui.Operations: every device passes, but a
// printer with PrintErr set.
func (b *Backend) TestDevices(operator string) []ui.DeviceInfo {
	b.enter("TestDevices", fmt.Sprintf("TestDevices(%s)", operator))
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []ui.DeviceInfo{{Name: "dispenser", State: "ok"}, {Name: "printer", State: "ok"}}
	if b.PrintErr != nil {
		out[1].State = b.PrintErr.Error()
	}
	return out
}

// Printed returns the reports printed so far.
func (b *Backend) Printed() [][]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.printed)
}
