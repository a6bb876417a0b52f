package atm

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/atm/wire"
)

// Queue kinds.
const (
	KindAdvice   = "advice"
	KindReversal = "reversal"
)

// queueKind is what tells the host how a session of amount ended with paid
// in the customer's hands: a completion advice for a full payment, a
// (partial or full) reversal otherwise.
func queueKind(paid, amount int64) string {
	if paid >= amount {
		return KindAdvice
	}
	return KindReversal
}

// SAFMessage is the payload of one store-and-forward queue item: an advice
// or a reversal, with the STAN it is sent under every time (the host applies
// it once per terminal and original STAN).
type SAFMessage struct {
	Kind      string    `json:"kind"`
	SessionID string    `json:"session"`
	STAN      string    `json:"stan"`
	OrigSTAN  string    `json:"origStan"`
	OrigTime  time.Time `json:"origTime"`
	Amount    int64     `json:"amount"`    // the authorized amount
	Dispensed int64     `json:"dispensed"` // what the customer got
	Currency  string    `json:"currency"`
	Reason    string    `json:"reason,omitempty"`
}

// change is one durable state change: the event, how the session changes,
// the journal line, and what is queued and counted with it. It is committed
// in one bbolt transaction.
type change struct {
	ev        Event
	mutate    func(*Session)
	kind      string // journal kind, e.g. "CASH PRESENTED"
	text      string
	data      map[string]string
	queue     []string      // KindAdvice / KindReversal, filled from the session
	dispensed dispenser.Mix // notes out of the cassettes
	retracted dispenser.Mix // notes back into the retract bin
	rejected  dispenser.Mix // notes purged to the reject bin
	daily     int64
	extra     func(tx *store.Tx, s *Session) error // more writes in the same transaction, before the session is stored
}

// commit applies ch to s: computes the next state with Next, writes session,
// journal entry, queue items and counters in one bbolt transaction labelled
// with the new state, and only then updates s in memory. An error leaves s
// unchanged and nothing written.
func (a *ATM) commit(s *Session, ch change) error {
	next, err := Next(s.State, ch.ev)
	if err != nil {
		return err
	}
	ns := *s
	if ch.mutate != nil {
		ch.mutate(&ns)
	}
	ns.State = next
	ns.Updated = a.now().UTC()
	if err := a.write(&ns, ch); err != nil {
		return err
	}
	*s = ns
	return nil
}

// write persists ns as it is, with ch's journal entry, queue items and
// counters, in one transaction labelled with ns.State.
func (a *ATM) write(ns *Session, ch change) error {
	err := a.db.UpdateLabeled(ns.State.String(), func(tx *store.Tx) error {
		if ch.extra != nil {
			if err := ch.extra(tx, ns); err != nil {
				return err
			}
		}
		b, err := json.Marshal(ns)
		if err != nil {
			return err
		}
		if err := tx.PutSession(ns.ID, b); err != nil {
			return err
		}
		if err := tx.MarkSession(ns.ID, ns.open()); err != nil {
			return err
		}
		data := map[string]string{"state": ns.State.String(), "amount": fmt.Sprint(ns.Amount)}
		maps.Copy(data, ch.data)
		if _, err := tx.AppendJournal(store.Entry{Kind: ch.kind, SessionID: ns.ID, Text: ch.text, Data: data}); err != nil {
			return err
		}
		for _, kind := range ch.queue {
			if err := enqueue(tx, ns, kind); err != nil {
				return err
			}
		}
		if err := countUnits(tx, a.cashUnits(), ch.dispensed, ch.retracted, ch.rejected); err != nil {
			return err
		}
		if ch.daily != 0 {
			// The day of the authorization request, as the host books it.
			if _, err := tx.AddDailyTotal(a.Day(ns.bookedAt()), ch.daily); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("atm: commit session %s -> %s: %w", short(ns.ID), ns.State, err)
	}
	if ns.State == StateInDoubt {
		a.log.Error("ALARM session in doubt: the ATM cannot tell what the customer was paid; an operator must count the cash and settle it",
			"session", short(ns.ID), "amount", ns.Amount, "reason", ns.Reason)
	}
	return nil
}

func enqueue(tx *store.Tx, s *Session, kind string) error {
	stan, err := tx.NextSTAN()
	if err != nil {
		return err
	}
	m := SAFMessage{Kind: kind, SessionID: s.ID, STAN: stan, OrigSTAN: s.HostSTAN, OrigTime: s.HostTime,
		Amount: s.Amount, Dispensed: s.Paid, Currency: s.Currency}
	if kind == KindReversal {
		m.Reason = reversalReason(s.Reason, s.Paid)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	it, err := tx.Enqueue(kind, s.ID+":"+kind, b)
	if err != nil {
		return err
	}
	_, err = tx.AppendJournal(store.Entry{Kind: "QUEUED " + strings.ToUpper(kind), SessionID: s.ID,
		Text: fmt.Sprintf("%s queued for host: amount %d, dispensed %d", kind, m.Amount, m.Dispensed),
		Data: map[string]string{"queue_id": fmt.Sprint(it.ID), "stan": stan, "orig_stan": s.HostSTAN}})
	return err
}

// reversalReason is the reason code of a 0420 (wire.Reason*, documented in
// docs/protocol.md §6), chosen by what caused the reversal (the session's
// Reason, set where the cause happened) and what the customer got:
//   - some cash paid: 32, completed partially (field 95 says how much),
//     whatever stopped the rest;
//   - nothing paid, because the host's answer never came: 68;
//   - nothing paid, because the customer did not take the cash (retracted
//     after the take-cash time): 17, customer cancellation;
//   - nothing paid for any other cause (dispense or present failure, a
//     crash recovered, an operator's settlement): 22, suspected malfunction.
func reversalReason(cause string, paid int64) string {
	switch {
	case paid > 0:
		return wire.ReasonPartialDispense
	case cause == causeHostUnknown:
		return wire.ReasonLateResponse
	case cause == causeNotTaken:
		return wire.ReasonCustomerCancel
	default:
		return wire.ReasonMalfunction
	}
}

// countUnits updates the cassette counters for notes dispensed, retracted
// and rejected.
func countUnits(tx *store.Tx, units []dispenser.CashUnit, dispensed, retracted, rejected dispenser.Mix) error {
	if len(dispensed) == 0 && len(retracted) == 0 && len(rejected) == 0 {
		return nil
	}
	have, err := tx.UnitCounters()
	if err != nil {
		return err
	}
	byID := map[string]store.UnitCounters{}
	for _, u := range have {
		byID[u.UnitID] = u
	}
	for _, u := range units {
		if _, ok := byID[u.ID]; !ok {
			byID[u.ID] = store.UnitCounters{UnitID: u.ID, Denomination: u.Denomination, Currency: u.Currency}
		}
	}
	add := func(m dispenser.Mix, apply func(c *store.UnitCounters, n int64)) {
		for id, n := range m {
			c := byID[id]
			c.UnitID = id
			apply(&c, int64(n))
			byID[id] = c
		}
	}
	add(dispensed, func(c *store.UnitCounters, n int64) { c.Dispensed += n; c.Remaining -= n })
	add(retracted, func(c *store.UnitCounters, n int64) { c.Retracted += n })
	add(rejected, func(c *store.UnitCounters, n int64) { c.Rejected += n })
	for _, c := range byID {
		if err := tx.PutUnitCounters(c); err != nil {
			return err
		}
	}
	return nil
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
