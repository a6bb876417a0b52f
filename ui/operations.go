package ui

import "time"

// Operations is an optional capability of a Backend, found by type
// assertion: the actions of the supervisor mode. With it, the supervisor
// screen offers replenishment, the sessions in doubt, the daily balancing,
// the journal and taking the terminal out of (and back into) service; the
// operator logged in on the kiosk is passed to every action, which the
// core journals with it. The App calls these methods off the window's
// goroutine, one at a time.
type Operations interface {
	// SetInService takes the terminal out of service (in false; refused
	// while a customer's session is in progress) or puts it back.
	SetInService(operator string, in bool) error
	// InDoubt lists the sessions whose paid amount an operator must count.
	InDoubt() ([]InDoubtInfo, error)
	// Settle records what the operator counted as paid for a session in
	// doubt (the same core operation as the control endpoint's).
	Settle(operator, session string, paid int64) error
	// Replenish records the notes counted in the removed cassettes and
	// the cassettes loaded (the terminal out of service, no session in
	// progress), resets the counters and returns the report.
	Replenish(operator string, removed []UnitCount, loaded []UnitLoad) (ReplenishReport, error)
	// Balance sets the terminal's figures for a business day (YYYY-MM-DD,
	// "" for today) beside the host's, asked for by operator.
	Balance(operator, day string) (BalanceReport, error)
	// Journal returns up to max entries of a business day ("" for today),
	// the last ones, only those of session when it is not "".
	Journal(day, session string, max int) ([]JournalLine, error)
	// PrintReport prints a report's lines on the receipt printer.
	PrintReport(lines []string) error
	// TestDevices exercises each device (the dispenser's reset, a test
	// page on the printer) and says how each did: State "ok" or why not.
	TestDevices(operator string) []DeviceInfo
}

// InDoubtInfo is one session in doubt.
type InDoubtInfo struct {
	Session string // the full ID (Settle takes it)
	Time    time.Time
	Amount  int64  // asked for, minor units
	Reason  string // the core's reason ("count_unknown", "retract_failed", ...)
}

// UnitCount is the notes an operator counted in a removed cassette.
type UnitCount struct {
	ID    string
	Notes int
}

// UnitLoad is a cassette the operator loads.
type UnitLoad struct {
	ID       string
	Currency string
	Denom    int64 // minor units
	Notes    int
}

// RemovedUnit is a removed cassette in a replenishment report: the notes
// the counters expected and those the operator counted.
type RemovedUnit struct {
	ID                string
	Currency          string
	Denom             int64
	Expected, Counted int
}

// ReplenishReport is the outcome of a replenishment.
type ReplenishReport struct {
	Time     time.Time
	Removed  []RemovedUnit
	Loaded   []UnitLoad
	Problems []string // what the device or the check said (English, as journaled)
}

// BalanceLine is one figure of the daily balancing: Item names it (a
// catalog key suffix: "approved_count", "approved_amount",
// "reversal_count", "reversal_amount", "advice_count", "advice_amount",
// "net_debit", "cash_out"), Money says whether it is an amount in minor
// units or a count.
type BalanceLine struct {
	Item      string
	ATM, Host int64
	Money     bool
}

// BalanceReport is a day's balancing.
type BalanceReport struct {
	Day     string // YYYY-MM-DD
	Lines   []BalanceLine
	HostErr string // the host's totals could not be fetched (English)
	// What explains a difference: advices and reversals the host has not
	// acknowledged yet, sessions in doubt, authorizations never answered.
	PendingAdvices, PendingReversals, InDoubt, OutcomeUnknown int
}
