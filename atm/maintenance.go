package atm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cardless-atm/cardless/atm/store"
)

// ErrSettleFirst: a device reset was asked while sessions are still in
// doubt; the notes inside the device are the evidence of their count.
var ErrSettleFirst = errors.New("atm: settle the sessions in doubt first (their notes are still inside the device)")

// ErrNoReset: the dispenser cannot be reset by the ATM.
var ErrNoReset = errors.New("atm: the dispenser has no reset")

// ResetDispenser is the operator's way back into service after a device
// fault (a jam, a count the device does not know), once every session in
// doubt is settled: the device is reset (notes inside go to the reject
// bin), the reset is journaled with the operator, and the cassette
// counters are compared with the device's again, so notes the device
// purged without a count keep the terminal out of service ("counters")
// until the operator adopts the device's counts. The terminal is out of
// service ("maintenance") while the device resets. The reset runs on the
// caller's goroutine, never the one that owns the sessions.
func (a *ATM) ResetDispenser(ctx context.Context, operator string) error {
	var (
		r   Resetter
		err error
	)
	if e := a.do(ctx, func(context.Context) { r, err = a.beginReset(operator) }); e != nil {
		return e
	}
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	rerr := r.Reset(rctx)
	cancel()
	if rerr == nil {
		_, rerr = a.dispenserStatus(ctx) // the device's counts after the purge
	}
	if e := a.do(context.WithoutCancel(ctx), func(c context.Context) { err = a.endReset(c, operator, rerr) }); e != nil {
		return e
	}
	return err
}

// beginReset checks that a reset may run and takes the terminal out of
// service for it (owner goroutine).
func (a *ATM) beginReset(operator string) (Resetter, error) {
	if operator == "" {
		return nil, errors.New("atm: reset: the operator must be named")
	}
	if a.cur != nil && !a.cur.State.Terminal() {
		return nil, ErrBusy
	}
	if a.maintenance {
		return nil, ErrOperatorBusy
	}
	r, ok := a.cfg.Dispenser.(Resetter)
	if !ok {
		return nil, ErrNoReset
	}
	list, err := a.InDoubt()
	if err != nil {
		return nil, err
	}
	if len(list) > 0 {
		return nil, fmt.Errorf("%w: %d in doubt", ErrSettleFirst, len(list))
	}
	a.maintenance = true
	a.setService(false, "maintenance")
	return r, nil
}

// endReset records the reset and its outcome and brings the terminal back
// when it can serve (owner goroutine).
func (a *ATM) endReset(ctx context.Context, operator string, rerr error) error {
	a.maintenance = false
	text := "operator " + operator + " reset the dispenser; notes inside purged to the reject bin"
	if rerr != nil {
		text = "operator " + operator + " reset the dispenser: failed: " + rerr.Error()
	}
	if err := a.db.UpdateLabeled("reset", func(tx *store.Tx) error {
		_, err := tx.AppendJournal(store.Entry{Kind: "DISPENSER RESET", Text: text, Data: map[string]string{"operator": operator}})
		return err
	}); err != nil {
		a.log.Error("journal", "err", err)
	}
	a.countersChecked = false // compare with the device's counts after the purge
	a.refreshService(ctx)
	if rerr != nil {
		a.log.Error("dispenser reset failed", "operator", operator, "err", rerr)
		return fmt.Errorf("atm: reset: %w", rerr)
	}
	a.log.Warn("dispenser reset by the operator", "operator", operator)
	return nil
}
