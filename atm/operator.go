package atm

import (
	"context"
	"errors"
	"fmt"

	"github.com/cardless-atm/cardless/atm/store"
)

// ErrNotInDoubt is returned by Settle for a session that is not waiting for
// an operator.
var ErrNotInDoubt = errors.New("atm: session is not in doubt")

// InDoubt lists the sessions waiting for an operator's count, oldest first.
func (a *ATM) InDoubt() ([]Session, error) {
	var out []Session
	err := a.db.View(func(tx *store.Tx) error {
		open, err := openSessions(tx)
		for _, s := range open {
			if s.State == StateInDoubt {
				out = append(out, s)
			}
		}
		return err
	})
	return out, err
}

// Settle records an operator's count for a session in doubt: paid is what
// the customer really got (from the cassettes' physical count against the
// counters, or the device's own log). The session goes to Completed (with a
// completion advice for a full payment, a partial reversal otherwise) or to
// Failed (full reversal when paid is zero), in one bbolt transaction with a
// journal entry naming the operator. It can happen once per session.
func (a *ATM) Settle(ctx context.Context, sessionID string, paid int64, operator string) (*Session, error) {
	var (
		out *Session
		err error
	)
	if e := a.do(ctx, func(context.Context) { out, err = a.settle(sessionID, paid, operator) }); e != nil {
		return nil, e
	}
	return out, err
}

func (a *ATM) settle(id string, paid int64, operator string) (*Session, error) {
	if operator == "" {
		return nil, errors.New("atm: settle: the operator must be named")
	}
	s, err := a.lookup(id)
	if err != nil {
		return nil, fmt.Errorf("atm: settle: %w", err)
	}
	if s.State != StateInDoubt {
		return nil, fmt.Errorf("%w (state %s)", ErrNotInDoubt, s.State)
	}
	if paid < 0 || paid > s.Amount {
		return nil, fmt.Errorf("atm: settle: paid %d must be between 0 and the authorized %d", paid, s.Amount)
	}
	ev, queue := EvOperatorNotPaid, queueKind(paid, s.Amount)
	if paid > 0 {
		ev = EvOperatorPaid
	}
	if s.HostSTAN == "" || s.AuthCode == "" && s.Token == "" {
		queue = "" // never authorized: nothing to tell the host
	}
	ch := change{ev: ev, kind: "OPERATOR SETTLED",
		text:   fmt.Sprintf("operator %s counted %d paid of %d", operator, paid, s.Amount),
		data:   map[string]string{"operator": operator, "paid": fmt.Sprint(paid)},
		mutate: func(ns *Session) { ns.Paid, ns.Operator, ns.Reason = paid, false, "operator_settled" },
		daily:  paid}
	if queue != "" {
		ch.queue = []string{queue}
	}
	if err := a.commit(s, ch); err != nil {
		return nil, err
	}
	if a.cur != nil && a.cur.ID == s.ID {
		a.publish() // s is a.cur (lookup returns it), updated by commit
	}
	a.log.Warn("operator settled a session in doubt", "session", short(s.ID), "paid", paid, "state", s.State, "operator", operator)
	a.wakeSAF()
	cp := *s
	return &cp, nil
}
