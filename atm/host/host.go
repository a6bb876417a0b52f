package host

import (
	"time"

	"github.com/cardless-atm/cardless/atm/wire"
)

// AuthRequest is a cash withdrawal authorization (0200).
type AuthRequest struct {
	STAN       string // 6 digits, unique per terminal
	TerminalID string // "" means the link's own terminal
	Amount     int64  // minor units
	Currency   string // ISO 4217 numeric, e.g. "156"
	CustomerID string // encrypted on the wire (field 120)
	// PINBlock is the phone's encrypted PIN block (field 52), passed
	// through untouched: only the host can decrypt it.
	PINBlock []byte
	// DeviceID is the phone's device ID (field 123, encrypted on the
	// wire), passed through from the phone: the host checks that the
	// phone is bound to the customer (docs/binding.md). "" when the phone
	// sent none.
	DeviceID string
	// DispenseNonce is the dispenser's command nonce (field 121): the host
	// signs the dispense token over it.
	DispenseNonce string
	// Time is the transmission time (field 7); zero means the link's
	// clock now.
	Time time.Time
}

// AuthResponse is the host's answer (0210).
type AuthResponse struct {
	ResponseCode string // "00" approved; otherwise the decline reason
	AuthCode     string
	RRN          string
	Token        string // XFS4IoT dispense token when approved
}

// Approved reports whether the host approved the withdrawal.
func (r AuthResponse) Approved() bool { return r.ResponseCode == wire.RCApproved }

// OriginalData identifies the 0200 an advice or reversal refers to.
type OriginalData struct {
	MTI  string    // "" means "0200"
	STAN string    // STAN of the original
	Time time.Time // transmission time (field 7) of the original
}

// Advice is a completion advice (0220): the cash was paid out.
type Advice struct {
	STAN       string // the advice's own STAN
	Original   OriginalData
	Amount     int64
	Currency   string
	TerminalID string // "" means the link's own terminal
}

// Reversal is a reversal advice (0420): the cash was not (or only partly)
// paid out.
type Reversal struct {
	STAN       string // the reversal's own STAN
	Original   OriginalData
	Amount     int64 // amount of the original 0200
	Dispensed  int64 // amount actually paid out (field 95); 0 = full reversal
	Currency   string
	TerminalID string // "" means the link's own terminal
	Reason     string // field 39 reason code, wire.Reason*
}
