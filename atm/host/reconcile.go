package host

import "time"

// ReconRequest asks the host for its totals of one terminal for one
// business day (the acquirer reconciliation request, 0500). It changes
// nothing at the host: a failed request may simply be asked again.
type ReconRequest struct {
	STAN       string // 6 digits, from the terminal's host STAN sequence
	TerminalID string // "" means the link's own terminal
	// Day is the business day, YYYY-MM-DD in the day zone the ATM and the
	// host agree on (the day of each withdrawal's authorization request).
	// It travels as MMDD: the host takes the year nearest its clock, so
	// the day must lie within wire.MaxReconAge of today.
	Day      string
	Currency string    // ISO 4217 numeric: the totals count this currency only
	Time     time.Time // transmission time (field 7); zero means the link's clock now
}

// Count is a number of messages and their amount in minor units.
type Count struct {
	Count  int64 `json:"count"`
	Amount int64 `json:"amount"`
}

// Totals are the host's totals of one terminal for one business day (the
// 0510): the withdrawals it approved (and debited), the reversals it
// applied to them with the amount they credited back, the completion
// advices it applied with the amount they confirmed, and the net amount it
// debited (Approved.Amount less Reversals.Amount, as the host computes
// it).
type Totals struct {
	Approved  Count `json:"approved"`
	Reversals Count `json:"reversals"`
	Advices   Count `json:"advices"`
	NetDebit  int64 `json:"net_debit"`
}
