package hostlink

import (
	"context"
	"fmt"
	"time"

	"github.com/cardless-atm/cardless/atm/host"
	"github.com/cardless-atm/cardless/atm/wire"
)

// Reconcile asks the host for its totals of the terminal for one business
// day (0500 -> 0510, docs/protocol.md §7.7). The request changes nothing
// at the host, so any failure may simply be retried. Errors wrap
// host.ErrUnavailable (nothing sent, or the request could not be built),
// host.ErrOutcomeUnknown (no usable answer: a time-out, an answer that
// does not match the request or whose totals are malformed) or, for an
// answer other than 00, host.ErrRejected (a *host.RejectedError).
func (c *Client) Reconcile(ctx context.Context, r host.ReconRequest) (host.Totals, error) {
	term := c.terminal(r.TerminalID)
	if err := checkCommon(r.STAN, r.Currency, term); err != nil {
		return host.Totals{}, fmt.Errorf("%w: 0500: %w", host.ErrUnavailable, err)
	}
	t := r.Time
	if t.IsZero() {
		t = c.cfg.Clock.Now()
	}
	date, err := wire.FormatSettlementDate(r.Day)
	if err != nil {
		return host.Totals{}, fmt.Errorf("%w: 0500: %w", host.ErrUnavailable, err)
	}
	if day, _ := time.Parse(time.DateOnly, r.Day); absDuration(day.Sub(t)) > wire.MaxReconAge {
		return host.Totals{}, fmt.Errorf("%w: 0500: day %s is more than %d days from today: field 15 (MMDD) cannot name it", host.ErrUnavailable, r.Day, int(wire.MaxReconAge.Hours()/24))
	}
	m, err := wire.Build(&wire.Reconciliation{
		MTI:                  wire.MTIReconRequest,
		TransmissionDateTime: wire.FormatTransmissionDT(t),
		STAN:                 r.STAN,
		SettlementDate:       date,
		AcquirerID:           c.cfg.AcquirerID,
		TerminalID:           term,
		SettlementCurrency:   r.Currency,
	})
	if err != nil {
		return host.Totals{}, fmt.Errorf("%w: 0500: %w", host.ErrUnavailable, err)
	}
	resp, err := c.exchange(ctx, m)
	if err != nil {
		return host.Totals{}, err
	}
	var a wire.Reconciliation
	if err := wire.Parse(resp, &a); err != nil {
		return host.Totals{}, fmt.Errorf("%w: 0510 stan %s: %w", host.ErrOutcomeUnknown, r.STAN, err)
	}
	switch {
	case a.MTI != wire.MTIReconResponse:
		return host.Totals{}, fmt.Errorf("%w: answer to 0500 stan %s has MTI %s", host.ErrOutcomeUnknown, r.STAN, a.MTI)
	case a.TerminalID != term:
		return host.Totals{}, fmt.Errorf("%w: 0510 stan %s names another terminal", host.ErrOutcomeUnknown, r.STAN)
	case a.SettlementDate != date || a.SettlementCurrency != r.Currency:
		return host.Totals{}, fmt.Errorf("%w: 0510 stan %s answers for day %q currency %q, asked %q %q", host.ErrOutcomeUnknown, r.STAN, a.SettlementDate, a.SettlementCurrency, date, r.Currency)
	case len(a.ResponseCode) != 2:
		return host.Totals{}, fmt.Errorf("%w: 0510 stan %s has no response code", host.ErrOutcomeUnknown, r.STAN)
	}
	c.log.Info("host: 0510", "stan", r.STAN, "rc", a.ResponseCode, "day", r.Day)
	if a.ResponseCode != wire.RCApproved {
		return host.Totals{}, &host.RejectedError{MTI: a.MTI, STAN: r.STAN, ResponseCode: a.ResponseCode}
	}
	tot, err := wire.ParseReconTotals(a)
	if err != nil {
		return host.Totals{}, fmt.Errorf("%w: 0510 stan %s: %w", host.ErrOutcomeUnknown, r.STAN, err)
	}
	return host.Totals{
		Approved:  host.Count{Count: tot.Approved.Count, Amount: tot.Approved.Amount},
		Reversals: host.Count{Count: tot.Reversals.Count, Amount: tot.Reversals.Amount},
		Advices:   host.Count{Count: tot.Advices.Count, Amount: tot.Advices.Amount},
		NetDebit:  tot.NetDebit,
	}, nil
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
