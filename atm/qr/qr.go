// Package qr is the cardless-withdrawal QR payload: a versioned text format
// carrying the terminal ID, amount, currency, the session's one-time nonce,
// the expiry and a MAC over them. docs/qr.md describes it.
//
// The text uses only characters of the QR alphanumeric mode (0-9, A-Z and
// ':'), so the code stays small and scans on the first try:
//
//	CLW1:<terminal>:<amount>:<currency>:<nonce>:<expiry>:<mac>
//
// terminal is 1-8 characters [0-9A-Z] (ISO 8583 field 41 holds 8); amount is the amount in minor units
// (decimal, no leading zeros, at most 12 digits); currency is the ISO 4217
// numeric code (3 digits); nonce is 32 upper-case hex digits (128 bits);
// expiry is Unix seconds (decimal); mac is 16 upper-case hex digits: the
// ISO 9797-1 algorithm 3 retail MAC, padding method 2, with the terminal's QR
// MAC key over the payload text up to and including the colon before it.
package qr

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Version is the format's version tag, the payload's first field.
const Version = "CLW1"

// MaxLen bounds a payload; anything longer is refused before parsing.
const MaxLen = 128

// ErrFormat is returned for text that is not a well-formed payload.
var ErrFormat = errors.New("qr: malformed payload")

// ErrMAC is returned by Verify when the MAC does not match.
var ErrMAC = errors.New("qr: MAC does not verify")

// Payload is the content of a cardless-withdrawal QR code.
type Payload struct {
	TerminalID string
	Amount     int64  // minor units
	Currency   string // ISO 4217 numeric, 3 digits
	Nonce      string // 32 upper-case hex digits
	Expiry     time.Time
	MAC        string // 16 upper-case hex digits
}

// Macer computes the QR MAC over data; hsm.Module bound to a key satisfies
// it through a small adapter.
type Macer func(data []byte) ([]byte, error)

// Signed returns the text the MAC covers: the payload up to and including
// the colon before the MAC.
func (p Payload) Signed() string {
	return fmt.Sprintf("%s:%s:%d:%s:%s:%d:", Version, p.TerminalID, p.Amount, p.Currency, p.Nonce, p.Expiry.Unix())
}

// String returns the payload text, MAC included.
func (p Payload) String() string { return p.Signed() + p.MAC }

// Sign validates p, computes its MAC with mac and returns the payload text.
func Sign(p *Payload, mac Macer) (string, error) {
	p.MAC = strings.Repeat("0", 16)
	if err := p.validate(); err != nil {
		return "", err
	}
	m, err := mac([]byte(p.Signed()))
	if err != nil {
		return "", fmt.Errorf("qr: MAC: %w", err)
	}
	p.MAC = strings.ToUpper(hex.EncodeToString(m))
	return p.String(), nil
}

// Parse parses payload text. It checks the format only; Verify checks the MAC.
func Parse(s string) (Payload, error) {
	if len(s) > MaxLen {
		return Payload{}, fmt.Errorf("%w: %d characters, at most %d", ErrFormat, len(s), MaxLen)
	}
	parts := strings.Split(s, ":")
	if len(parts) != 7 {
		return Payload{}, fmt.Errorf("%w: %d fields, want 7", ErrFormat, len(parts))
	}
	if parts[0] != Version {
		return Payload{}, fmt.Errorf("%w: version %q, want %q", ErrFormat, parts[0], Version)
	}
	amount, err := parseDecimal(parts[2], 12)
	if err != nil {
		return Payload{}, fmt.Errorf("%w: amount: %v", ErrFormat, err)
	}
	exp, err := parseDecimal(parts[5], 12)
	if err != nil {
		return Payload{}, fmt.Errorf("%w: expiry: %v", ErrFormat, err)
	}
	p := Payload{
		TerminalID: parts[1],
		Amount:     amount,
		Currency:   parts[3],
		Nonce:      parts[4],
		Expiry:     time.Unix(exp, 0).UTC(),
		MAC:        parts[6],
	}
	if err := p.validate(); err != nil {
		return Payload{}, err
	}
	return p, nil
}

// Verify recomputes the MAC of p with mac and compares it in constant time
// (the MAC is on the screen for anyone to read, but a verifier should never
// leak how much of a forged MAC was right).
func Verify(p Payload, mac Macer) error {
	m, err := mac([]byte(p.Signed()))
	if err != nil {
		return fmt.Errorf("qr: MAC: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(strings.ToUpper(hex.EncodeToString(m))), []byte(p.MAC)) != 1 {
		return ErrMAC
	}
	return nil
}

func (p Payload) validate() error {
	switch {
	case len(p.TerminalID) < 1 || len(p.TerminalID) > 8 || !only(p.TerminalID, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
		return fmt.Errorf("%w: terminal ID must be 1-8 characters 0-9A-Z (field 41 holds 8)", ErrFormat)
	case p.Amount <= 0 || p.Amount > 999999999999:
		return fmt.Errorf("%w: amount out of range", ErrFormat)
	case len(p.Currency) != 3 || !only(p.Currency, "0123456789"):
		return fmt.Errorf("%w: currency must be 3 digits (ISO 4217 numeric)", ErrFormat)
	case len(p.Nonce) != 32 || !only(p.Nonce, "0123456789ABCDEF"):
		return fmt.Errorf("%w: nonce must be 32 upper-case hex digits", ErrFormat)
	case p.Expiry.Unix() <= 0:
		return fmt.Errorf("%w: expiry must be positive Unix seconds", ErrFormat)
	case len(p.MAC) != 16 || !only(p.MAC, "0123456789ABCDEF"):
		return fmt.Errorf("%w: MAC must be 16 upper-case hex digits", ErrFormat)
	}
	return nil
}

func parseDecimal(s string, maxDigits int) (int64, error) {
	if s == "" || len(s) > maxDigits || !only(s, "0123456789") || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%q is not a decimal of 1-%d digits without leading zeros", s, maxDigits)
	}
	return strconv.ParseInt(s, 10, 64)
}

func only(s, set string) bool {
	for _, r := range s {
		if !strings.ContainsRune(set, r) {
			return false
		}
	}
	return true
}
