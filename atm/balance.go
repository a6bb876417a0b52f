package atm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm/host"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/atm/wire"
)

// Daily balancing (the "daily settlement" of CN104851188B): the
// terminal's figures for a business day beside the host's totals for the
// terminal, fetched over the host link with a reconciliation request
// (0500/0510, docs/protocol.md §7.7), with every difference listed.
//
// The business day of a withdrawal is the day, in Config.DayZone, of its
// authorization request (field 7 of the 0200), on both sides; an advice
// or a reversal counts on its withdrawal's day, whenever it was sent.
// The terminal's side is read from its sessions and its journal:
//
//   - Approved: sessions whose authorization the host approved (journal
//     "APPROVED"), with the amounts authorized;
//   - Advices: completion advices queued for them ("QUEUED ADVICE"), with
//     the authorized amounts (a full payment);
//   - Reversals: reversals queued ("QUEUED REVERSAL"), with what each
//     gives back (the amount less what was paid), including reversals of
//     authorizations whose answer never came (OutcomeUnknown), which the
//     host may not have approved;
//   - NetDebit: what the host should hold once everything queued has
//     arrived: for each approved session its amount, less what its
//     reversal gives back;
//   - CashOut: the cash in the customers' hands (the daily total).
//
// Differences are expected while advices or reversals wait in the queue
// (Pending*), while sessions are in doubt, and for authorizations whose
// outcome the ATM never learnt; the report counts each of them so the
// operator can tell those from a real discrepancy.

// Reconciler is the optional capability of Config.Host to give the host's
// totals of the terminal for a business day (hostlink.Client: the 0500).
type Reconciler interface {
	Reconcile(ctx context.Context, r host.ReconRequest) (host.Totals, error)
}

// ErrNoReconcile: the host connection cannot ask for the host's totals.
var ErrNoReconcile = errors.New("atm: the host link cannot ask for the host's totals")

// ErrBadDay: the day to balance is not YYYY-MM-DD, or too far from today
// for the reconciliation request to name it (field 15 carries no year:
// wire.MaxReconAge).
var ErrBadDay = errors.New("atm: balance: no such business day")

// ErrDayArchived: the journal entries of the day have left the live store
// (journal.retentionDays); balance that day from the exported segments.
var ErrDayArchived = errors.New("atm: the journal of that day has been archived")

// Difference is one figure on which the terminal and the host disagree.
type Difference struct {
	// Item is approved_count, approved_amount, reversal_count,
	// reversal_amount, advice_count, advice_amount, net_debit, or cash_out
	// (the terminal's cash out against the host's net debit).
	Item string `json:"item"`
	ATM  int64  `json:"atm"`
	Host int64  `json:"host"`
}

// BalanceReport is the daily balancing of one business day, for the
// screen, the printer (Lines) and export (JSON).
type BalanceReport struct {
	TerminalID string    `json:"terminal_id"`
	Day        string    `json:"day"`  // YYYY-MM-DD
	Zone       string    `json:"zone"` // the day zone
	Operator   string    `json:"operator"`
	Time       time.Time `json:"time"` // when it was made, in the day zone
	Currency   string    `json:"currency"`
	Exponent   int       `json:"exponent"`
	STAN       string    `json:"stan"` // of the 0500

	ATM     host.Totals `json:"atm"`
	CashOut int64       `json:"cash_out"`
	// Host is nil when the host's totals could not be had (HostError).
	Host      *host.Totals `json:"host"`
	HostError string       `json:"host_error,omitempty"`

	// PendingAdvices and PendingReversals are queued for the host and not
	// yet acknowledged: the host's totals do not hold them yet.
	PendingAdvices   host.Count `json:"pending_advices"`
	PendingReversals host.Count `json:"pending_reversals"`
	// InDoubt counts sessions of the day waiting for an operator's count;
	// OutcomeUnknown authorizations whose answer never came (reversed).
	InDoubt        int `json:"in_doubt"`
	OutcomeUnknown int `json:"outcome_unknown"`

	// Units are the cassette counters now (they run from the last
	// replenishment, not per day).
	Units []CassetteCounters `json:"units"`

	// Differences lists every figure that differs (empty when the day
	// balances; nil when there are no host totals).
	Differences []Difference `json:"differences"`
}

// Balanced reports whether the host's totals were had and agree with the
// terminal's on every figure.
func (r *BalanceReport) Balanced() bool { return r.Host != nil && len(r.Differences) == 0 }

// Balance balances business day (YYYY-MM-DD) for operator: it reads the
// terminal's figures, asks the host for its totals (a 0500 under a STAN
// committed first, journaled with the operator), lists the differences,
// and journals the outcome ("DAILY BALANCE"). It runs on the caller's
// goroutine (the host request included) and can run while the terminal
// serves.
//
// When the host's totals cannot be had (the link is down, the host
// refuses, ErrNoReconcile), the report still holds the terminal's side,
// with Host nil and HostError, and the error says why.
func (a *ATM) Balance(ctx context.Context, operator, day string) (*BalanceReport, error) {
	if operator == "" {
		return nil, errors.New("atm: balance: the operator must be named")
	}
	dayStart, err := time.ParseInLocation(time.DateOnly, day, a.cfg.DayZone)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not YYYY-MM-DD", ErrBadDay, day)
	}
	now := a.now()
	if d := dayStart.Sub(now); d > wire.MaxReconAge || d < -wire.MaxReconAge {
		// Field 15 carries MMDD: the host could not tell the year.
		return nil, fmt.Errorf("%w: %s is more than %d days from today", ErrBadDay, day, int(wire.MaxReconAge.Hours()/24))
	}
	rep := &BalanceReport{TerminalID: a.cfg.TerminalID, Day: day, Zone: a.cfg.DayZone.String(), Operator: operator,
		Time: now.In(a.cfg.DayZone), Currency: a.cfg.CurrencyAlpha, Exponent: a.cfg.Exponent}
	if err := a.terminalTotals(rep, dayStart); err != nil {
		return nil, fmt.Errorf("atm: balance %s: %w", day, err)
	}
	rec, ok := a.cfg.Host.(Reconciler)
	if !ok {
		rep.HostError = ErrNoReconcile.Error()
		return rep, ErrNoReconcile
	}
	// The 0500's STAN comes from the terminal's host STAN sequence (the
	// host records the last one it received), committed before it is
	// sent, with the request journaled.
	err = a.db.UpdateLabeled("balance", func(tx *store.Tx) error {
		var err error
		if rep.STAN, err = tx.NextSTAN(); err != nil {
			return err
		}
		_, err = tx.AppendJournal(store.Entry{Kind: "BALANCE REQUESTED",
			Text: "operator " + operator + " asked the host for its totals of " + day,
			Data: map[string]string{"operator": operator, "day": day, "stan": rep.STAN}})
		return err
	})
	if err != nil {
		a.storageFailed(err)
		return nil, fmt.Errorf("atm: balance %s: %w", day, err)
	}
	hctx, cancel := context.WithTimeout(ctx, a.cfg.HostTimeout)
	tot, herr := rec.Reconcile(hctx, host.ReconRequest{STAN: rep.STAN, TerminalID: a.cfg.TerminalID, Day: day,
		Currency: a.cfg.Currency, Time: now})
	cancel()
	if herr == nil {
		rep.Host = &tot
		rep.Differences = differences(rep)
	} else {
		rep.HostError = herr.Error()
	}
	if err := a.journalBalance(rep); err != nil {
		return rep, err
	}
	if herr != nil {
		a.log.Warn("daily balance: no host totals", "day", day, "operator", operator, "err", herr)
		return rep, fmt.Errorf("atm: balance %s: host totals: %w", day, herr)
	}
	if len(rep.Differences) > 0 {
		a.log.Warn("daily balance: the terminal and the host differ", "day", day, "operator", operator, "differences", len(rep.Differences))
	} else {
		a.log.Info("daily balance: balanced", "day", day, "operator", operator)
	}
	return rep, nil
}

// terminalTotals fills the terminal's side of rep for the day starting at
// dayStart from the store: the sessions, then the journal in chunks
// (scanJournal), then the daily total and the counters.
func (a *ATM) terminalTotals(rep *BalanceReport, dayStart time.Time) error {
	base, err := a.db.JournalBase()
	if err != nil {
		return err
	}
	sessions := map[string]*Session{}
	err = a.db.View(func(tx *store.Tx) error {
		return tx.ForEachSession(func(id string, v []byte) error {
			var s Session
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			if s.HostSTAN == "" || a.Day(s.bookedAt()) != rep.Day {
				return nil // never sent to the host, or another day
			}
			sessions[id] = &s
			if s.State == StateInDoubt {
				rep.InDoubt++
			}
			if s.Reason == causeHostUnknown {
				rep.OutcomeUnknown++
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	type marks struct{ approved, advice, reversal, ackAdvice, ackReversal bool }
	seen := map[string]*marks{}
	first := true
	err = a.scanJournal(func(e store.Entry) error {
		if first {
			first = false
			if base.Seq > 0 && e.Time.After(dayStart) {
				return fmt.Errorf("%w: the live journal starts at %s", ErrDayArchived, e.Time.Format(time.RFC3339))
			}
		}
		if sessions[e.SessionID] == nil {
			return nil
		}
		m := seen[e.SessionID]
		if m == nil {
			m = &marks{}
			seen[e.SessionID] = m
		}
		switch e.Kind {
		case "APPROVED":
			m.approved = true
		case "QUEUED ADVICE":
			m.advice = true
		case "QUEUED REVERSAL":
			m.reversal = true
		case "HOST ACK ADVICE":
			m.ackAdvice = true
		case "HOST ACK REVERSAL":
			m.ackReversal = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	t := &rep.ATM
	for id, m := range seen {
		s := sessions[id]
		back := s.Amount - s.Paid // what a reversal gives back
		if m.approved {
			t.Approved.Count++
			t.Approved.Amount += s.Amount
			t.NetDebit += s.Amount
			if m.reversal {
				t.NetDebit -= back
			}
		}
		if m.advice {
			t.Advices.Count++
			t.Advices.Amount += s.Amount
			if !m.ackAdvice {
				rep.PendingAdvices.Count++
				rep.PendingAdvices.Amount += s.Amount
			}
		}
		if m.reversal {
			t.Reversals.Count++
			t.Reversals.Amount += back
			if !m.ackReversal {
				rep.PendingReversals.Count++
				rep.PendingReversals.Amount += back
			}
		}
	}
	return a.db.View(func(tx *store.Tx) error {
		var err error
		if rep.CashOut, err = tx.DailyTotal(rep.Day); err != nil {
			return err
		}
		units, err := tx.UnitCounters()
		for _, u := range units {
			rep.Units = append(rep.Units, cassetteCounters(u))
		}
		return err
	})
}

// differences lists the figures on which rep.ATM (and CashOut) and
// rep.Host disagree.
func differences(rep *BalanceReport) []Difference {
	out := []Difference{}
	add := func(item string, atm, host int64) {
		if atm != host {
			out = append(out, Difference{Item: item, ATM: atm, Host: host})
		}
	}
	m, h := rep.ATM, rep.Host
	add("approved_count", m.Approved.Count, h.Approved.Count)
	add("approved_amount", m.Approved.Amount, h.Approved.Amount)
	add("reversal_count", m.Reversals.Count, h.Reversals.Count)
	add("reversal_amount", m.Reversals.Amount, h.Reversals.Amount)
	add("advice_count", m.Advices.Count, h.Advices.Count)
	add("advice_amount", m.Advices.Amount, h.Advices.Amount)
	add("net_debit", m.NetDebit, h.NetDebit)
	add("cash_out", rep.CashOut, h.NetDebit)
	return out
}

// journalBalance records the outcome of a balancing.
func (a *ATM) journalBalance(rep *BalanceReport) error {
	data := map[string]string{"operator": rep.Operator, "day": rep.Day, "stan": rep.STAN,
		"atm_net": fmt.Sprint(rep.ATM.NetDebit), "cash_out": fmt.Sprint(rep.CashOut)}
	var text string
	switch {
	case rep.Host == nil:
		text = "daily balance " + rep.Day + " by operator " + rep.Operator + ": no host totals: " + rep.HostError
	case len(rep.Differences) == 0:
		text = "daily balance " + rep.Day + " by operator " + rep.Operator + ": balanced"
		data["host_net"] = fmt.Sprint(rep.Host.NetDebit)
	default:
		var parts []string
		for _, d := range rep.Differences {
			parts = append(parts, fmt.Sprintf("%s ATM %d host %d", d.Item, d.ATM, d.Host))
		}
		text = "daily balance " + rep.Day + " by operator " + rep.Operator + ": DIFFERENCES: " + strings.Join(parts, "; ")
		data["host_net"] = fmt.Sprint(rep.Host.NetDebit)
		data["differences"] = fmt.Sprint(len(rep.Differences))
	}
	err := a.db.UpdateLabeled("balance", func(tx *store.Tx) error {
		_, err := tx.AppendJournal(store.Entry{Kind: "DAILY BALANCE", Text: text, Data: data})
		return err
	})
	if err != nil {
		a.storageFailed(err)
		return fmt.Errorf("atm: balance %s: journal: %w", rep.Day, err)
	}
	return nil
}
