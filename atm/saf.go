package atm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cardless-atm/cardless/atm/backoff"
	"github.com/cardless-atm/cardless/atm/host"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm/store"
)

// The store-and-forward queue holds completion advices (0220) and reversals
// (0420) until the host acknowledges them. Each item keeps the STAN it got
// when queued, and is resent unchanged after a failure, with exponential
// backoff and jitter, across restarts: the host applies each one exactly
// once per terminal and original STAN.

func (a *ATM) wakeSAF() {
	select {
	case a.safWake <- struct{}{}:
	default:
	}
}

func (a *ATM) safLoop(ctx context.Context) {
	timer := a.cfg.Clock.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
		case <-a.safWake:
		}
		wait := a.drainSAF(ctx)
		timer.Reset(wait)
	}
}

// drainSAF sends every due item once and returns how long to wait before
// the next due one.
func (a *ATM) drainSAF(ctx context.Context) time.Duration {
	var items []store.QueueItem
	if err := a.db.View(func(tx *store.Tx) (err error) { items, err = tx.QueueItems(); return }); err != nil {
		a.log.Error("store-and-forward: read queue", "err", err)
		return a.cfg.SAFRetryMax
	}
	next := a.cfg.SAFRetryMax
	for _, it := range items {
		if ctx.Err() != nil {
			return next
		}
		now := a.now()
		if wait := it.NextAttempt.Sub(now); wait > a.cfg.SAFRetryMax {
			// Later than any backoff gives: the clock was set back (or
			// the item was stamped by another clock). Do not let it wait
			// for the old time to come round again.
			a.log.Warn("store-and-forward: item due further ahead than the longest backoff; sending now", "id", it.ID, "due_in", wait.Round(time.Second))
		} else if wait > 0 {
			next = min(next, wait)
			continue
		}
		var m SAFMessage
		err := json.Unmarshal(it.Payload, &m)
		if err != nil {
			err = fmt.Errorf("corrupt queue item %d: %w", it.ID, err)
		} else {
			err = a.sendSAF(ctx, m)
		}
		if err != nil {
			it.Attempts++
			backoff := a.backoff(it.Attempts)
			it.NextAttempt = now.Add(backoff)
			next = min(next, backoff)
			it.Rejected = errors.Is(err, host.ErrRejected)
			if it.Rejected {
				// The host answered but refused it: resending will not help
				// on its own. Keep it (it must reach the host) and raise the
				// alarm for the operator and the bank.
				a.log.Error("ALARM store-and-forward: host rejected an advice or reversal; operator and bank must reconcile", "kind", it.Kind, "id", it.ID, "attempts", it.Attempts, "err", err)
			} else {
				a.log.Warn("store-and-forward: host did not acknowledge; will resend", "kind", it.Kind, "id", it.ID, "attempts", it.Attempts, "retry_in", backoff.Round(time.Millisecond), "err", err)
			}
			if uerr := a.db.UpdateLabeled("saf-retry", func(tx *store.Tx) error { return tx.UpdateQueueItem(it) }); uerr != nil {
				a.log.Error("store-and-forward: update item", "err", uerr)
			}
			continue
		}
		err = a.db.UpdateLabeled("saf-ack", func(tx *store.Tx) error {
			if err := tx.Ack(it.ID); err != nil {
				return err
			}
			_, err := tx.AppendJournal(store.Entry{Kind: "HOST ACK " + strings.ToUpper(it.Kind), SessionID: m.SessionID,
				Text: fmt.Sprintf("host acknowledged %s (stan %s)", it.Kind, m.STAN),
				Data: map[string]string{"queue_id": fmt.Sprint(it.ID), "attempts": fmt.Sprint(it.Attempts + 1)}})
			return err
		})
		if err != nil {
			a.log.Error("store-and-forward: ack", "err", err)
			continue
		}
		a.log.Info("store-and-forward: acknowledged", "kind", it.Kind, "session", short(m.SessionID), "stan", m.STAN)
	}
	return next
}

// backoff is the wait before resending an item that has failed attempts
// times: the appliance's one backoff (atm/backoff), so that many ATMs do
// not resend in step.
func (a *ATM) backoff(attempts int) time.Duration {
	return backoff.Policy{Min: a.cfg.SAFRetryMin, Max: a.cfg.SAFRetryMax}.Delay(max(attempts, 1))
}

func (a *ATM) sendSAF(ctx context.Context, m SAFMessage) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.HostTimeout)
	defer cancel()
	orig := host.OriginalData{MTI: "0200", STAN: m.OrigSTAN, Time: m.OrigTime}
	switch m.Kind {
	case KindAdvice:
		return a.cfg.Host.Advise(ctx, host.Advice{STAN: m.STAN, Original: orig, Amount: m.Dispensed,
			Currency: m.Currency, TerminalID: a.cfg.TerminalID})
	case KindReversal:
		return a.cfg.Host.Reverse(ctx, host.Reversal{STAN: m.STAN, Original: orig, Amount: m.Amount,
			Dispensed: m.Dispensed, Currency: m.Currency, TerminalID: a.cfg.TerminalID, Reason: m.Reason})
	}
	return errors.New("unknown queue item kind " + m.Kind)
}

// RejectedSAF returns how many queued advices and reversals the host's
// last answer refused (an alarm: an operator and the bank reconcile).
func (a *ATM) RejectedSAF() (int, error) {
	var n int
	err := a.db.View(func(tx *store.Tx) error {
		items, err := tx.QueueItems()
		for _, it := range items {
			if it.Rejected {
				n++
			}
		}
		return err
	})
	return n, err
}

// PendingSAF returns the number of advices and reversals not yet
// acknowledged by the host.
func (a *ATM) PendingSAF() (int, error) {
	var n int
	err := a.db.View(func(tx *store.Tx) (err error) { n, err = tx.QueueLen(); return })
	return n, err
}
