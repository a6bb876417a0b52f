package atm

import (
	"context"
	"errors"
	"fmt"

	"github.com/cardless-atm/cardless/atm/store"
)

// An operator takes the terminal out of service (TakeOutOfService) before
// working on it, a replenishment in particular, and puts it back
// (PutInService). The state is a store counter committed, with a journal
// entry naming the operator, before the terminal's service changes, so a
// restart in between keeps the terminal out of service ("operator") until
// an operator puts it back.

// counterOperatorOut is the store counter (store.Tx.Counter) that is 1
// while an operator has the terminal out of service.
const counterOperatorOut = "operator_out_of_service"

// ErrNotOutOfService: the action needs the terminal taken out of service
// by an operator first (TakeOutOfService), or there is no operator's
// out-of-service to end.
var ErrNotOutOfService = errors.New("atm: the terminal is not out of service by an operator (take it out of service first)")

// ErrOperatorBusy: a device operation of an operator (a reset, a
// replenishment) is running; try again when it has ended.
var ErrOperatorBusy = errors.New("atm: an operator's device operation is already running")

// TakeOutOfService takes the terminal out of service for operator (reason
// "operator"): no new customer is served until PutInService. It is
// refused with ErrBusy while a session is in progress (the customer is
// finished first). Taking out a terminal already out of service by an
// operator does nothing and is not an error.
func (a *ATM) TakeOutOfService(ctx context.Context, operator string) error {
	var err error
	if e := a.do(ctx, func(c context.Context) { err = a.takeOutOfService(c, operator) }); e != nil {
		return e
	}
	return err
}

func (a *ATM) takeOutOfService(ctx context.Context, operator string) error {
	if operator == "" {
		return errors.New("atm: out of service: the operator must be named")
	}
	if a.cur != nil && !a.cur.State.Terminal() {
		return ErrBusy
	}
	if a.operatorOut {
		return nil
	}
	if err := a.setOperatorOut(true, store.Entry{Kind: "OUT OF SERVICE",
		Text: "operator " + operator + " took the terminal out of service", Data: map[string]string{"operator": operator}}); err != nil {
		return err
	}
	a.log.Warn("taken out of service by an operator", "operator", operator)
	a.refreshService(ctx)
	return nil
}

// PutInService ends an operator's out-of-service (ErrNotOutOfService when
// there is none) and returns the view afterwards: the terminal serves
// again unless something else keeps it out (the view's Reason says what:
// "counters", "dispenser", "link"...). It waits for a running device
// operation (a reset, a replenishment) to end: refused meanwhile.
func (a *ATM) PutInService(ctx context.Context, operator string) (View, error) {
	var err error
	if e := a.do(ctx, func(c context.Context) { err = a.putInService(c, operator) }); e != nil {
		return View{}, e
	}
	return a.View(), err
}

func (a *ATM) putInService(ctx context.Context, operator string) error {
	if operator == "" {
		return errors.New("atm: in service: the operator must be named")
	}
	if a.maintenance {
		return ErrOperatorBusy
	}
	if !a.operatorOut {
		return ErrNotOutOfService
	}
	if err := a.setOperatorOut(false, store.Entry{Kind: "IN SERVICE",
		Text: "operator " + operator + " put the terminal back in service", Data: map[string]string{"operator": operator}}); err != nil {
		return err
	}
	a.log.Warn("put back in service by an operator", "operator", operator)
	a.refreshService(ctx)
	return nil
}

// setOperatorOut commits the operator's out-of-service state with e, then
// sets it in memory (owner goroutine).
func (a *ATM) setOperatorOut(out bool, e store.Entry) error {
	want := int64(0)
	if out {
		want = 1
	}
	err := a.db.UpdateLabeled("operator-service", func(tx *store.Tx) error { return putOperatorOut(tx, want, e) })
	if err != nil {
		a.storageFailed(err)
		return fmt.Errorf("atm: %s: %w", e.Kind, err)
	}
	a.operatorOut = out
	return nil
}

// loadOperatorOut reads the operator's out-of-service state at start.
func (a *ATM) loadOperatorOut() error {
	var v int64
	if err := a.db.View(func(tx *store.Tx) (err error) { v, err = tx.Counter(counterOperatorOut); return err }); err != nil {
		return fmt.Errorf("atm: read the operator's out-of-service state: %w", err)
	}
	a.operatorOut = v != 0
	return nil
}

// putOperatorOut writes the operator's out-of-service state (1 out, 0 in)
// and its journal entry e in tx.
func putOperatorOut(tx *store.Tx, want int64, e store.Entry) error {
	cur, err := tx.Counter(counterOperatorOut)
	if err != nil {
		return err
	}
	if _, err := tx.AddCounter(counterOperatorOut, want-cur); err != nil {
		return err
	}
	_, err = tx.AppendJournal(e)
	return err
}
