package ui

import (
	"fmt"
	"time"
)

// Backend is what the screens need from the ATM core. The core implements it
// through an adapter; package ui never imports the core. Its methods are
// called from several goroutines at once. All but Snapshot and Changed may
// take their time (a slow device, a busy store): the App calls them off the
// window's goroutine (see the package documentation).
type Backend interface {
	// Snapshot returns the current state for display. It is called on
	// every frame and must not block.
	Snapshot() Snapshot
	// Changed receives (non-blocking send, capacity 1) whenever Snapshot changes.
	Changed() <-chan struct{}
	// RequestWithdrawal asks the core to check the dispenser, the notes and the
	// limits, create the session and the QR. A *CannotPayError means the
	// amount cannot be paid; any other error is shown as a failure.
	RequestWithdrawal(amount int64) error
	// Cancel cancels the current session (or acknowledges a finished one).
	Cancel()
	// MoreTime tells the core the customer asked for more time on the
	// current timed screen (QR or take cash); the core moves Deadline.
	MoreTime()
	// Supervisor returns device status, cassette counts, counters and the
	// last journal lines.
	Supervisor() SupervisorInfo
}

// ReceiptPrinter is an optional capability of a Backend, found by type
// assertion: when present and Snapshot.Receipt is true, the "Transaction
// complete" screen offers a receipt and calls PrintReceipt on "yes", with
// the customer's language (its BCP 47 tag, "en" or "zh").
type ReceiptPrinter interface {
	PrintReceipt(lang string) error
}

// Phase is the core's view of the customer session.
type Phase int

// The phases, in the order a normal transaction goes through them.
const (
	Idle          Phase = iota // no session: the UI owns navigation
	AwaitingPhone              // session created, QR shown
	Processing                 // phone request received, host authorizing
	TakeCash                   // notes presented
	Complete                   // cash taken, transaction done
	Declined                   // host declined (ReasonCode)
	Failed                     // technical failure (ReasonCode)
	OutOfService               // terminal cannot serve customers
)

var phaseNames = [...]string{"Idle", "AwaitingPhone", "Processing", "TakeCash", "Complete", "Declined", "Failed", "OutOfService"}

func (p Phase) String() string {
	if p >= 0 && int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("Phase(%d)", int(p))
}

// Snapshot is the state the screens display. Amounts are in minor units of
// Currency (Exponent digits after the decimal point).
type Snapshot struct {
	Phase      Phase
	Amount     int64
	Currency   string // ISO 4217 alphabetic code, e.g. "CNY"
	Exponent   int
	QRPayload  string
	Deadline   time.Time // end of the current timed phase (QR, take cash)
	ReasonCode string    // e.g. "51", "55", "timeout", "dispenser", "link"
	TerminalID string
	Location   string
	Receipt    bool    // a receipt printer is available
	Presets    []int64 // the amounts offered on F1-F6: only those payable now
	MinAmount  int64
	MaxAmount  int64 // the largest amount payable now (within the limits)
	Multiple   int64

	// CanExtend: the customer may still ask for more time on the current
	// timed phase (QR, take cash); the take-cash time is extended once.
	CanExtend bool
	// RRN (the host's retrieval reference, once it answered) or else
	// SessionRef (the first 8 digits of the session's ID, which the
	// operator's tools accept) identify a finished session for the
	// customer and the bank; every outcome screen shows one.
	RRN, SessionRef string
	// Account says what happens to the customer's account after an
	// outcome (Complete, Declined, Failed).
	Account Account
	// Contactless: the terminal has an NFC reader, so the QR screen
	// offers "scan or tap"; Tap is the last tap's outcome (ui/tap.go).
	Contactless bool
	Tap         TapState
}

// Account is what a finished session means for the customer's account.
type Account int

// The account outcomes the screens put in plain words.
const (
	AccountUnknown    Account = iota // no outcome yet
	AccountNotCharged                // nothing was debited (declined, expired, no host)
	AccountCharged                   // debited the amount paid (Snapshot.Amount)
	AccountReversed                  // a debit, if any, is reversed: no cash reached the customer
	AccountChecking                  // the cash paid is not known: the bank checks the ATM's count
)

var accountNames = [...]string{"unknown", "not-charged", "charged", "reversed", "checking"}

func (a Account) String() string {
	if a >= 0 && int(a) < len(accountNames) {
		return accountNames[a]
	}
	return fmt.Sprintf("Account(%d)", int(a))
}

// UnitInfo describes one cash unit (cassette) on the supervisor screen.
type UnitInfo struct {
	ID        string
	Currency  string
	Denom     int64 // minor units
	Count     int   // notes left
	Dispensed int
	Rejected  int
	Retracted int
	Status    string
}

// DeviceInfo is one device's state on the supervisor screen. Name is
// "dispenser", "printer", "proxy" or "host"; State is the device's own
// word ("online", "hardwareError", "paperLow", "up", "down", ...). Both are
// translated by the screen, and shown as given when no translation exists.
type DeviceInfo struct {
	Name, State string
}

// JournalLine is one journal entry on the supervisor screen.
type JournalLine struct {
	Time    time.Time
	Seq     uint64
	Kind    string // as recorded ("CASH TAKEN"), translated by the screen
	Session string // the session's short reference, if any
}

// SupervisorInfo is what the supervisor screen shows.
type SupervisorInfo struct {
	InService bool
	Reason    string   // why out of service (the core's reason: "link", ...)
	Alarms    []string // standing alarms ("dispenser_fault", "cash_low:CST1", ...)
	StoreErr  string   // the store could not be read
	Devices   []DeviceInfo
	Units     []UnitInfo
	Queued    int // advices and reversals waiting for the host
	Journal   []JournalLine
}

// CannotPayError reports that the requested amount cannot be paid out. Reason
// is a catalog key suffix ("notes", "limit", "dispenser", "multiple", ...);
// Nearest are amounts (minor units) that can be paid, nearest first.
type CannotPayError struct {
	Reason  string
	Nearest []int64
}

func (e *CannotPayError) Error() string {
	return fmt.Sprintf("amount cannot be paid: %s (nearest %v)", e.Reason, e.Nearest)
}
