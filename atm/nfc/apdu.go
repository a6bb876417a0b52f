package nfc

import (
	"errors"
	"fmt"
)

// The APDUs of the tap (docs/nfc.md).
const (
	// ClaISO and InsSelect: SELECT by DF name (P1 04, P2 00), the ISO 7816-4
	// command a contactless reader uses to route to a host card emulation
	// service.
	ClaISO    = 0x00
	InsSelect = 0xA4
	// ClaProprietary and InsSession: the session payload, proprietary class
	// (the bank's app defines it).
	ClaProprietary = 0x80
	InsSession     = 0x10
)

// Status words of the tap's responses.
const (
	SWOK            uint16 = 0x9000 // done
	SWFileNotFound  uint16 = 0x6A82 // SELECT: no app with that AID
	SWWrongData     uint16 = 0x6A80 // SESSION: the payload is not a session payload
	SWNotSatisfied  uint16 = 0x6985 // SESSION: the app cannot take a session now (not logged in, busy)
	SWInsNotSupport uint16 = 0x6D00 // an instruction the app does not know
	SWClaNotSupport uint16 = 0x6E00 // a class the app does not know
	SWWrongLength   uint16 = 0x6700 // malformed command APDU
)

// MaxPayload bounds the session payload in one short APDU (Lc is one byte).
const MaxPayload = 255

// ErrAPDU: bytes that are not a well-formed APDU (command or response).
var ErrAPDU = errors.New("nfc: malformed APDU")

// Command is a parsed short command APDU (ISO 7816-4 cases 1-4).
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	// Le is the expected response length: -1 absent, 0-256 otherwise
	// (an Le byte of 00 means 256).
	Le int
}

// Bytes encodes c as a short APDU.
func (c Command) Bytes() ([]byte, error) {
	if len(c.Data) > 255 {
		return nil, fmt.Errorf("%w: %d data bytes, a short APDU holds 255", ErrAPDU, len(c.Data))
	}
	if c.Le < -1 || c.Le > 256 {
		return nil, fmt.Errorf("%w: Le %d", ErrAPDU, c.Le)
	}
	b := []byte{c.CLA, c.INS, c.P1, c.P2}
	if len(c.Data) > 0 {
		b = append(b, byte(len(c.Data)))
		b = append(b, c.Data...)
	}
	if c.Le >= 0 {
		b = append(b, byte(c.Le)) // 256 encodes as 00
	}
	return b, nil
}

// ParseCommand parses a short command APDU. Extended lengths are refused:
// nothing in the tap needs them.
func ParseCommand(b []byte) (Command, error) {
	if len(b) < 4 {
		return Command{}, fmt.Errorf("%w: %d bytes, a command has at least 4", ErrAPDU, len(b))
	}
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3], Le: -1}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
	case len(body) == 1: // case 2
		c.Le = le(body[0])
	case body[0] == 0:
		return Command{}, fmt.Errorf("%w: extended length APDUs are not supported", ErrAPDU)
	case len(body) == 1+int(body[0]): // case 3
		c.Data = body[1:]
	case len(body) == 2+int(body[0]): // case 4
		c.Data = body[1 : 1+int(body[0])]
		c.Le = le(body[len(body)-1])
	default:
		return Command{}, fmt.Errorf("%w: Lc %d does not match %d body bytes", ErrAPDU, body[0], len(body))
	}
	return c, nil
}

func le(b byte) int {
	if b == 0 {
		return 256
	}
	return int(b)
}

// Response is a parsed response APDU.
type Response struct {
	Data []byte
	SW   uint16
}

// ParseResponse splits a response APDU into its data and status word.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, fmt.Errorf("%w: a response of %d bytes has no status word", ErrAPDU, len(b))
	}
	n := len(b) - 2
	return Response{Data: b[:n:n], SW: uint16(b[n])<<8 | uint16(b[n+1])}, nil
}

// Reply encodes a response APDU.
func Reply(data []byte, sw uint16) []byte {
	return append(append([]byte(nil), data...), byte(sw>>8), byte(sw))
}

// SelectAPDU is SELECT by DF name of aid, first occurrence, FCI optional
// (Le 00: the app may answer with data, which the ATM ignores).
func SelectAPDU(aid []byte) ([]byte, error) {
	if len(aid) < 5 || len(aid) > 16 {
		return nil, fmt.Errorf("nfc: an AID has 5-16 bytes, not %d", len(aid))
	}
	return Command{CLA: ClaISO, INS: InsSelect, P1: 0x04, P2: 0x00, Data: aid, Le: 256}.Bytes()
}

// SessionAPDU carries the session payload text (ASCII) to the app.
func SessionAPDU(payload string) ([]byte, error) {
	if payload == "" || len(payload) > MaxPayload {
		return nil, fmt.Errorf("nfc: a session payload has 1-%d bytes, not %d", MaxPayload, len(payload))
	}
	return Command{CLA: ClaProprietary, INS: InsSession, Data: []byte(payload), Le: -1}.Bytes()
}

// DefaultAID is the development AID of the bank's app: F0 (a proprietary,
// unregistered AID) then "CLW1" and 00 01. A bank registers its own
// (ISO 7816-5) and configures it (nfc.aid).
var DefaultAID = []byte{0xF0, 0x43, 0x4C, 0x57, 0x31, 0x00, 0x01}
