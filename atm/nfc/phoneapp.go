package nfc

import (
	"bytes"
	"sync"
)

// PhoneApp is the bank app's host card emulation service as docs/nfc.md
// specifies it: it answers the SELECT of its AID and takes one session
// payload, which Accept checks (the app parses it as it would a scanned QR;
// nil accepts). The phone simulator plays it.
type PhoneApp struct {
	AID    []byte
	Accept func(payload string) error

	mu       sync.Mutex
	selected bool
	payload  string
}

// Respond answers one command APDU.
func (a *PhoneApp) Respond(raw []byte) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := ParseCommand(raw)
	if err != nil {
		return Reply(nil, SWWrongLength)
	}
	switch {
	case c.CLA == ClaISO && c.INS == InsSelect:
		if c.P1 != 0x04 || !bytes.Equal(c.Data, a.AID) {
			a.selected = false
			return Reply(nil, SWFileNotFound)
		}
		a.selected = true
		return Reply(nil, SWOK)
	case c.CLA == ClaProprietary && c.INS == InsSession:
		if !a.selected {
			return Reply(nil, SWNotSatisfied)
		}
		if a.payload != "" {
			return Reply(nil, SWNotSatisfied) // one session per tap
		}
		p := string(c.Data)
		if len(c.Data) == 0 || a.Accept != nil && a.Accept(p) != nil {
			return Reply(nil, SWWrongData)
		}
		a.payload = p
		return Reply(nil, SWOK)
	case c.CLA == ClaProprietary || c.CLA == ClaISO:
		return Reply(nil, SWInsNotSupport)
	default:
		return Reply(nil, SWClaNotSupport)
	}
}

// Payload returns the session payload once received ("" before).
func (a *PhoneApp) Payload() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.payload
}
