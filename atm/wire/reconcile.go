package wire

import (
	"fmt"
	"strconv"
	"time"
)

// Reconciliation is the acquirer reconciliation request and its answer:
// 0500 and 0510 (docs/protocol.md §7.7). On link H the ATM asks the host
// for its totals of the terminal for one business day (field 15, in the
// day zone both ends agree on); the host answers with them. Only the
// 0510 carries totals (ReconTotals.Put, ParseReconTotals).
type Reconciliation struct {
	MTI                  string `iso8583:"0"`
	TransmissionDateTime string `iso8583:"7"`  // MMDDhhmmss UTC
	STAN                 string `iso8583:"11"` // 6 digits; the 0510 echoes it
	SettlementDate       string `iso8583:"15"` // MMDD: the business day (FormatSettlementDate)
	AcquirerID           string `iso8583:"32"`
	ResponseCode         string `iso8583:"39"` // 0510 only
	TerminalID           string `iso8583:"41"`
	SettlementCurrency   string `iso8583:"50"`  // ISO 4217 numeric: the totals count this currency only
	DebitsNumber         string `iso8583:"76"`  // n10: approved withdrawals
	DebitsReversalNumber string `iso8583:"77"`  // n10: reversals of them
	DebitsAmount         string `iso8583:"88"`  // n16: amount approved
	DebitsReversalAmount string `iso8583:"89"`  // n16: amount credited back by the reversals
	MACKeyKCV            string `iso8583:"96"`  // set by Protector.Seal
	NetSettlement        string `iso8583:"97"`  // x+n16: D or C, then the net amount
	AdviceTotals         string `iso8583:"124"` // n26: completion advices, number n10 then amount n16
}

// Response returns the 0510 answering r (a 0500) without a result: it
// echoes fields 7, 11, 15, 32, 41 and 50. Callers set field 39 and, when
// it is 00, the totals.
func (r Reconciliation) Response() Reconciliation {
	return Reconciliation{
		MTI:                  MTIReconResponse,
		TransmissionDateTime: r.TransmissionDateTime,
		STAN:                 r.STAN,
		SettlementDate:       r.SettlementDate,
		AcquirerID:           r.AcquirerID,
		TerminalID:           r.TerminalID,
		SettlementCurrency:   r.SettlementCurrency,
	}
}

// Total is a number of messages and their amount in minor units.
type Total struct {
	Count  int64 `json:"count"`
	Amount int64 `json:"amount"`
}

// ReconTotals are one terminal's totals for one business day, as a 0510
// carries them: approved withdrawals (fields 76 and 88), the reversals
// applied to them with the amount they credited back (77 and 89), the
// completion advices applied with the amount they confirmed (124), and the
// net amount debited (97).
type ReconTotals struct {
	Approved  Total `json:"approved"`
	Reversals Total `json:"reversals"`
	Advices   Total `json:"advices"`
	NetDebit  int64 `json:"net_debit"` // negative: a net credit
}

// Largest values the fields hold.
const (
	maxReconCount  = 9_999_999_999         // n10
	maxReconAmount = 9_999_999_999_999_999 // n16
)

// Put writes t into the totals fields of r (a 0510). It refuses a
// negative count or amount, or one too large for its field.
func (t ReconTotals) Put(r *Reconciliation) error {
	for _, c := range []struct {
		name string
		tot  Total
	}{{"approved", t.Approved}, {"reversals", t.Reversals}, {"advices", t.Advices}} {
		if c.tot.Count < 0 || c.tot.Count > maxReconCount || c.tot.Amount < 0 || c.tot.Amount > maxReconAmount {
			return fmt.Errorf("%w: %s total %d/%d out of range", ErrFieldFormat, c.name, c.tot.Count, c.tot.Amount)
		}
	}
	if t.NetDebit < -maxReconAmount || t.NetDebit > maxReconAmount {
		return fmt.Errorf("%w: net amount %d out of range", ErrFieldFormat, t.NetDebit)
	}
	r.DebitsNumber = fmt.Sprintf("%010d", t.Approved.Count)
	r.DebitsAmount = fmt.Sprintf("%016d", t.Approved.Amount)
	r.DebitsReversalNumber = fmt.Sprintf("%010d", t.Reversals.Count)
	r.DebitsReversalAmount = fmt.Sprintf("%016d", t.Reversals.Amount)
	r.AdviceTotals = fmt.Sprintf("%010d%016d", t.Advices.Count, t.Advices.Amount)
	r.NetSettlement = FormatNetAmount(t.NetDebit)
	return nil
}

// ParseReconTotals reads the totals fields of a 0510. Every one of them
// must be present and well formed.
func ParseReconTotals(r Reconciliation) (ReconTotals, error) {
	var t ReconTotals
	var err error
	num := func(dst *int64, s string, n int, field int) {
		if err != nil {
			return
		}
		if len(s) != n || !IsDigits(s) {
			err = fmt.Errorf("%w: field %d must be %d digits", ErrFieldFormat, field, n)
			return
		}
		*dst, err = strconv.ParseInt(s, 10, 64)
	}
	num(&t.Approved.Count, r.DebitsNumber, 10, FieldDebitsNumber)
	num(&t.Approved.Amount, r.DebitsAmount, 16, FieldDebitsAmount)
	num(&t.Reversals.Count, r.DebitsReversalNumber, 10, FieldDebitsRevNumber)
	num(&t.Reversals.Amount, r.DebitsReversalAmount, 16, FieldDebitsRevAmount)
	if err == nil && len(r.AdviceTotals) != 26 {
		err = fmt.Errorf("%w: field %d must be 26 digits", ErrFieldFormat, FieldAdviceTotals)
	}
	if err == nil {
		num(&t.Advices.Count, r.AdviceTotals[:10], 10, FieldAdviceTotals)
		num(&t.Advices.Amount, r.AdviceTotals[10:], 16, FieldAdviceTotals)
	}
	if err != nil {
		return ReconTotals{}, err
	}
	if t.NetDebit, err = ParseNetAmount(r.NetSettlement); err != nil {
		return ReconTotals{}, err
	}
	return t, nil
}

// FormatNetAmount formats field 97 (x+n16): "D" and the amount for a net
// debit (zero included), "C" and the absolute amount for a net credit.
func FormatNetAmount(net int64) string {
	if net < 0 {
		return fmt.Sprintf("C%016d", -net)
	}
	return fmt.Sprintf("D%016d", net)
}

// ParseNetAmount reads field 97: a net debit is positive, a net credit
// negative. "C" with a zero amount is not canonical (zero is "D").
func ParseNetAmount(s string) (int64, error) {
	bad := fmt.Errorf("%w: field 97 must be D or C and 16 digits", ErrFieldFormat)
	if len(s) != 17 || (s[0] != 'D' && s[0] != 'C') || !IsDigits(s[1:]) {
		return 0, bad
	}
	n, err := strconv.ParseInt(s[1:], 10, 64)
	if err != nil {
		return 0, bad
	}
	if s[0] == 'C' {
		if n == 0 {
			return 0, bad
		}
		n = -n
	}
	return n, nil
}

// FormatSettlementDate formats a business day (YYYY-MM-DD) as field 15
// (MMDD).
func FormatSettlementDate(day string) (string, error) {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return "", fmt.Errorf("%w: day %q is not YYYY-MM-DD", ErrFieldFormat, day)
	}
	return t.Format("0102"), nil
}

// ParseSettlementDate reads field 15 (MMDD), which carries no year, as the
// business day (YYYY-MM-DD) nearest today, today being now's date in
// zone: a 0500 for 31 December read on 1 January names the old year. A
// 29 February is accepted only in a leap year near now. Days more than
// half a year from today cannot be named this way (MaxReconAge).
func ParseSettlementDate(s string, now time.Time, zone *time.Location) (string, error) {
	if len(s) != 4 || !IsDigits(s) {
		return "", fmt.Errorf("%w: field 15 must be MMDD", ErrFieldFormat)
	}
	if zone == nil {
		zone = time.UTC
	}
	y, m, d := now.In(zone).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	var best time.Time
	for _, year := range []int{y - 1, y, y + 1} {
		t, err := time.Parse("20060102", fmt.Sprintf("%04d", year)+s)
		if err != nil {
			continue // 0229 in a common year, or not a date
		}
		if best.IsZero() || absDuration(t.Sub(today)) < absDuration(best.Sub(today)) {
			best = t
		}
	}
	if best.IsZero() {
		return "", fmt.Errorf("%w: field 15 %q is not a date", ErrFieldFormat, s)
	}
	return best.Format(time.DateOnly), nil
}

// MaxReconAge is how far from today (either way) a business day may be
// for a reconciliation: field 15 carries no year, and the receiver takes
// the one nearest its clock, so only days within half a year (less a
// margin for the two clocks) name one day unambiguously.
const MaxReconAge = 180 * 24 * time.Hour
