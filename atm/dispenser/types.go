package dispenser

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// DeviceState is the device status reported by Common.Status. The values
// are the XFS4IoT spellings so they can be stored and logged as they are.
type DeviceState string

// Device states (XFS4IoT Common.Status "device").
const (
	StateOnline        DeviceState = "online"
	StateOffline       DeviceState = "offline"
	StatePowerOff      DeviceState = "powerOff"
	StateNoDevice      DeviceState = "noDevice"
	StateHardwareError DeviceState = "hardwareError"
	StateUserError     DeviceState = "userError"
	StateBusy          DeviceState = "deviceBusy"
	StateFraudAttempt  DeviceState = "fraudAttempt"
)

// String returns the XFS4IoT spelling.
func (s DeviceState) String() string { return string(s) }

// UnitStatus is the replenishment status of one cash unit (XFS4IoT
// Storage.GetStorage "replenishmentStatus" / "status").
type UnitStatus string

// Cash unit states.
const (
	UnitOK          UnitStatus = "ok"
	UnitLow         UnitStatus = "low"
	UnitEmpty       UnitStatus = "empty"
	UnitInoperative UnitStatus = "inoperative"
)

// String returns the XFS4IoT spelling.
func (s UnitStatus) String() string { return string(s) }

// CashUnit is one cassette (storage unit) of the dispenser.
type CashUnit struct {
	ID           string     `json:"id"`           // unit identifier, e.g. "CST1"
	Denomination int64      `json:"denomination"` // note value in minor units (10000 = 100.00 CNY)
	Currency     string     `json:"currency"`     // ISO 4217 alphabetic code, e.g. "CNY"
	Count        int        `json:"count"`        // notes currently in the unit
	Status       UnitStatus `json:"status"`
}

// Usable reports whether notes can be dispensed from the unit: it holds
// notes, has a positive denomination and is not inoperative.
func (u CashUnit) Usable() bool {
	return u.Status != UnitInoperative && u.Status != UnitEmpty && u.Count > 0 && u.Denomination > 0
}

// Status is the device's state and its cash units.
type Status struct {
	Device   DeviceState `json:"device"`
	Units    []CashUnit  `json:"units"`
	MaxNotes int         `json:"maxNotes"` // most notes one dispense may contain
}

// Ready reports whether the device is online.
func (s Status) Ready() bool { return s.Device == StateOnline }

// Mix is a denomination: the number of notes to take from each cash unit,
// keyed by unit ID. Units absent from the map contribute no notes.
type Mix map[string]int

// Notes returns the total number of notes in the mix.
func (m Mix) Notes() int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// Amount returns the value of the mix in minor units given the cash units it
// refers to. It fails if the mix names a unit that is not in units or holds
// a negative count.
func (m Mix) Amount(units []CashUnit) (int64, error) {
	var total int64
	for id, c := range m {
		if c < 0 {
			return 0, fmt.Errorf("dispenser: mix has negative count %d for unit %q", c, id)
		}
		if c == 0 {
			continue
		}
		i := slices.IndexFunc(units, func(u CashUnit) bool { return u.ID == id })
		if i < 0 {
			return 0, fmt.Errorf("dispenser: mix names unknown cash unit %q", id)
		}
		total += int64(c) * units[i].Denomination
	}
	return total, nil
}

// Clone returns a copy of the mix without zero entries (nil for an empty mix
// stays nil).
func (m Mix) Clone() Mix {
	if m == nil {
		return nil
	}
	out := make(Mix, len(m))
	for id, c := range m {
		if c != 0 {
			out[id] = c
		}
	}
	return out
}

// Plus returns a new mix with the notes of m and o together.
func (m Mix) Plus(o Mix) Mix {
	out := m.Clone()
	if out == nil {
		out = Mix{}
	}
	for id, c := range o {
		if c != 0 {
			out[id] += c
		}
	}
	return out
}

// Equal reports whether two mixes take the same notes (zero entries ignored).
func (m Mix) Equal(o Mix) bool {
	return maps.Equal(m.Clone(), o.Clone())
}

// String formats the mix deterministically, e.g. "CST1:2 CST3:1".
func (m Mix) String() string {
	ids := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	for _, id := range ids {
		if m[id] == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%d", id, m[id])
	}
	if b.Len() == 0 {
		return "(none)"
	}
	return b.String()
}

// Result is what a Dispense or Retract moved.
type Result struct {
	Mix    Mix   `json:"mix"`
	Amount int64 `json:"amount"` // minor units
	// Rejected (Dispense only) is the notes that left the cassettes but
	// went to the reject bin instead of the customer (double or skewed
	// notes a serial dispenser diverts on its own); they are not in Mix.
	Rejected Mix `json:"rejected,omitempty"`
}

// PresentState is where the notes of the last dispense are.
type PresentState string

// Present states of the last dispense.
const (
	PresentNone      PresentState = "none"      // no dispense since the device was set up
	PresentStacked   PresentState = "stacked"   // dispensed into the stacker, not presented
	PresentPresented PresentState = "presented" // at the exit, not (yet) known to be taken
	PresentTaken     PresentState = "taken"     // the customer took the notes
	PresentRetracted PresentState = "retracted" // moved back into the retract bin
	PresentRejected  PresentState = "rejected"  // purged to the reject bin (after a fault, on Reset)
	PresentFailed    PresentState = "failed"    // the dispense failed; see ErrorCode
)

// String returns the state's spelling.
func (s PresentState) String() string { return string(s) }

// PresentStatus is what the last dispense really did (XFS4IoT
// CashDispenser.GetPresentStatus). After a crash the ATM core asks for it to
// settle a dispense in doubt: Nonce identifies the token that authorised the
// dispense, so the core can tie the record to its own session.
type PresentStatus struct {
	Seq             uint64       `json:"seq"`      // dispense sequence number, 0 = none yet
	Nonce           string       `json:"nonce"`    // command nonce of the token used
	Currency        string       `json:"currency"` // currency of the dispense
	State           PresentState `json:"state"`
	ErrorCode       string       `json:"errorCode,omitempty"` // failure code of the dispense, if any
	CountKnown      bool         `json:"countKnown"`          // false: the counts below are not reliable
	Requested       Mix          `json:"requested,omitempty"`
	Dispensed       Mix          `json:"dispensed,omitempty"` // left the cassettes
	DispensedAmount int64        `json:"dispensedAmount"`
	Presented       Mix          `json:"presented,omitempty"` // reached the exit slot
	PresentedAmount int64        `json:"presentedAmount"`
	Retracted       Mix          `json:"retracted,omitempty"` // taken back in
	RetractedAmount int64        `json:"retractedAmount"`
	Taken           bool         `json:"taken"` // the customer took the presented notes
	// DispenseID is how a device that does not report the nonce names
	// the dispense in its signed present-status response (XFS4IoT
	// DISPENSEID): the upper-case hex HMAC of the token that authorised it.
	DispenseID string `json:"dispenseId,omitempty"`
}

// Of reports whether p describes the dispense authorised by token, issued
// for nonce: by the nonce when the device reports one, else by the token's
// HMAC (DispenseID). A device with no dispense yet (Seq 0) matches nothing.
func (p PresentStatus) Of(nonce, token string) bool {
	switch {
	case p.Seq == 0:
		return false
	case p.Nonce != "":
		return p.Nonce == nonce
	case p.DispenseID == "" || token == "":
		return false
	}
	t, err := ParseToken(token)
	if err != nil {
		return false
	}
	return strings.EqualFold(hex.EncodeToString(t.HMAC), p.DispenseID)
}

// PaidAmount is the amount known to be in the customer's hands: presented
// and not retracted. It is meaningful only when CountKnown is true; a
// presented state that is neither taken nor retracted must be treated as
// possibly paid.
func (p PresentStatus) PaidAmount() int64 {
	if p.State == PresentTaken || p.State == PresentPresented {
		return p.PresentedAmount - p.RetractedAmount
	}
	return 0
}
