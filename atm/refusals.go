package atm

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cardless-atm/cardless/atm/store"
)

// DefaultRefusalWindow (Config.RefusalWindow) bounds how much a flood of forged or replayed dispense
// commands writes to the journal: the first refusal with a response code
// in a window is journaled in full ("COMMAND REFUSED"); the others with
// that code until the window ends are counted and journaled as one
// "COMMAND REFUSED (REPEATED)" entry with their number when it ends. The
// count of a window still open when the appliance dies is lost; the full
// entry that opened it is not.
const DefaultRefusalWindow = time.Minute

// refusalBurst is the open window of one response code.
type refusalBurst struct {
	start time.Time
	count int // refusals after the first
}

// journalRefusal records a refused dispense command (owner goroutine).
func (a *ATM) journalRefusal(cmd Command, rc, reason, sessionID string) {
	now := a.now()
	if b := a.bursts[rc]; b != nil && now.Sub(b.start) < a.cfg.RefusalWindow {
		b.count++
		a.log.Debug("dispense command refused (counted)", "rc", rc, "reason", reason, "stan", cmd.STAN, "session", short(sessionID))
		return
	}
	a.closeBurst(rc)
	a.bursts[rc] = &refusalBurst{start: now}
	a.log.Warn("dispense command refused", "rc", rc, "reason", reason, "stan", cmd.STAN, "session", short(sessionID))
	a.appendJournal("refused", store.Entry{Kind: "COMMAND REFUSED", SessionID: sessionID,
		Text: reason, Data: map[string]string{"rc": rc, "stan": cmd.STAN, "amount": fmt.Sprint(cmd.Amount)}})
}

// closeRefusalWindows journals the counts of the windows that have ended
// (all of them when all is set, at shutdown).
func (a *ATM) closeRefusalWindows(all bool) {
	now := a.now()
	for _, rc := range slices.Sorted(maps.Keys(a.bursts)) {
		if all || now.Sub(a.bursts[rc].start) >= a.cfg.RefusalWindow {
			a.closeBurst(rc)
		}
	}
}

func (a *ATM) closeBurst(rc string) {
	b := a.bursts[rc]
	if b == nil {
		return
	}
	delete(a.bursts, rc)
	if b.count == 0 {
		return
	}
	a.log.Warn("dispense commands refused", "rc", rc, "count", b.count, "since", b.start)
	a.appendJournal("refused", store.Entry{Kind: "COMMAND REFUSED (REPEATED)",
		Text: fmt.Sprintf("%d more dispense commands refused with %s in the %s after the first", b.count, rc, a.cfg.RefusalWindow),
		Data: map[string]string{"rc": rc, "count": fmt.Sprint(b.count), "since": b.start.UTC().Format(time.RFC3339)}})
}

func (a *ATM) appendJournal(label string, e store.Entry) {
	if err := a.db.UpdateLabeled(label, func(tx *store.Tx) error {
		_, err := tx.AppendJournal(e)
		return err
	}); err != nil {
		a.log.Error("cannot journal", "kind", e.Kind, "err", err)
		a.storageFailed(err)
	}
}
