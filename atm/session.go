package atm

import (
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/wire"
)

// Session is one cardless withdrawal, from the amount the customer chose to
// the cash taken (or not). It is stored as JSON in the sessions bucket,
// keyed by its nonce, and rewritten in one bbolt transaction at every state
// change. It never holds the customer's credential: the PIN block travels
// through memory only, from the dispense command to the host.
// Causes recorded in Session.Reason that choose a reversal's reason code
// (reversalReason); the other causes are free text for the journal.
const (
	causeHostUnknown = "host_unknown" // the authorization was sent and no answer came
	causeNotTaken    = "not_taken"    // presented, not taken in time, retracted
)

type Session struct {
	ID         string    `json:"id"` // the 128-bit nonce, 32 upper-case hex digits
	TerminalID string    `json:"terminal"`
	Amount     int64     `json:"amount"`   // minor units
	Currency   string    `json:"currency"` // ISO 4217 numeric
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
	State      State     `json:"state"`
	QR         string    `json:"qr"` // the payload shown on screen
	Updated    time.Time `json:"updated"`

	// Filled when the dispense command is accepted.
	CommandSTAN string `json:"commandStan,omitempty"` // STAN on the proxy link
	Customer    string `json:"customer,omitempty"`    // masked customer ID, for the journal and supervisor
	// Requester is a keyed fingerprint of the accepted command's
	// credentials (customer field and PIN block; requesterOf): a repeated
	// command gets the session's outcome only if it carries the same.
	Requester string `json:"requester,omitempty"`

	// Host authorization (0200/0210).
	HostSTAN     string    `json:"hostStan,omitempty"`
	HostTime     time.Time `json:"hostTime,omitempty"`
	ResponseCode string    `json:"rc,omitempty"`
	AuthCode     string    `json:"authCode,omitempty"`
	RRN          string    `json:"rrn,omitempty"`

	// Dispense.
	DispenseNonce string        `json:"dispenseNonce,omitempty"`
	Token         string        `json:"token,omitempty"`
	Mix           dispenser.Mix `json:"mix,omitempty"` // planned
	Dispensed     int64         `json:"dispensed"`     // counted out of the cassettes
	DispensedMix  dispenser.Mix `json:"dispensedMix,omitempty"`
	Paid          int64         `json:"paid"`                   // in the customer's hands
	TakeDeadline  time.Time     `json:"takeDeadline,omitempty"` // end of the take-cash timer
	TakeExtended  bool          `json:"takeExtended,omitempty"` // the customer already had more time
	Reason        string        `json:"reason,omitempty"`       // why it failed, declined or is in doubt
	Operator      bool          `json:"operator,omitempty"`     // needs an operator (in doubt)
}

// bookedAt is the instant whose day a payment counts for: the transmission
// time of the authorization request (field 7 of the 0200), which the host
// books by too. A session never authorized has no payment to book; its
// creation time stands in.
func (s *Session) bookedAt() time.Time {
	if !s.HostTime.IsZero() {
		return s.HostTime
	}
	return s.Created
}

// Result is the outcome a dispense command is answered with. A repeated
// command for a session gets the same Result again.
type Result struct {
	ResponseCode string
	AuthCode     string
	RRN          string
	Dispensed    int64 // amount in the customer's hands
	// For the customer's receipt (a completed withdrawal only): the host
	// STAN, the masked customer and when the session ended.
	HostSTAN string
	Customer string
	Time     time.Time
}

// result derives the answer for the proxy from a finished session.
func (s *Session) result() Result {
	r := Result{ResponseCode: s.ResponseCode, AuthCode: s.AuthCode, RRN: s.RRN, Dispensed: s.Paid}
	switch s.State {
	case StateCompleted:
		r.ResponseCode = wire.RCApproved
		r.HostSTAN, r.Customer, r.Time = s.HostSTAN, s.Customer, s.Updated // for the receipt
	case StateDeclined:
		// the host's code stands
	case StateExpired:
		r.ResponseCode = wire.RCExpired
	case StateCancelled:
		r.ResponseCode = wire.RCInvalidTransaction
	default:
		if r.ResponseCode == "" || r.ResponseCode == wire.RCApproved {
			r.ResponseCode = wire.RCSystemMalfunction
		}
	}
	return r
}
