package pinblock

import (
	"errors"
	"fmt"
	"io"
)

// Size is the length of a PIN block in bytes.
const Size = 8

// Format1Control is the control nibble of an ISO 9564-1 format 1 block.
const Format1Control = 0x1

// PIN length bounds set by ISO 9564-1.
const (
	MinPINLen = 4
	MaxPINLen = 12
)

// Sentinel errors; compare with errors.Is.
var (
	// ErrPIN: the PIN given to Format1 is not 4-12 decimal digits.
	ErrPIN = errors.New("pinblock: PIN must be 4 to 12 decimal digits")
	// ErrBlock: the block given to Parse is not a valid format 1 block.
	ErrBlock = errors.New("pinblock: invalid format 1 PIN block")
	// ErrRandom: the fill could not be read from the random source.
	ErrRandom = errors.New("pinblock: random source failed")
)

// Format1 returns the clear ISO 9564-1 format 1 block for pin, with the
// fill nibbles taken from rand (crypto/rand.Reader in production).
func Format1(pin string, rand io.Reader) ([]byte, error) {
	if len(pin) < MinPINLen || len(pin) > MaxPINLen {
		return nil, fmt.Errorf("%w: length %d", ErrPIN, len(pin))
	}
	for i := 0; i < len(pin); i++ {
		if pin[i] < '0' || pin[i] > '9' {
			return nil, fmt.Errorf("%w: non-digit at position %d", ErrPIN, i+1)
		}
	}
	if rand == nil {
		return nil, fmt.Errorf("%w: nil reader", ErrRandom)
	}
	fill := make([]byte, Size)
	if _, err := io.ReadFull(rand, fill); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRandom, err)
	}
	var nib [2 * Size]byte
	nib[0] = Format1Control
	nib[1] = byte(len(pin))
	for i := 0; i < len(pin); i++ {
		nib[2+i] = pin[i] - '0'
	}
	for i := 2 + len(pin); i < len(nib); i++ {
		// Each fill nibble comes from its own random half-byte.
		b := fill[i/2]
		if i%2 == 0 {
			nib[i] = b >> 4
		} else {
			nib[i] = b & 0x0F
		}
	}
	block := make([]byte, Size)
	for i := range block {
		block[i] = nib[2*i]<<4 | nib[2*i+1]
	}
	clear(fill)
	clear(nib[:])
	return block, nil
}

// Parse returns the PIN held in a clear format 1 block. It refuses a block
// of the wrong size, another format, a length outside 4-12, or a PIN nibble
// that is not a decimal digit. Fill nibbles may take any value.
func Parse(block []byte) (string, error) {
	if len(block) != Size {
		return "", fmt.Errorf("%w: %d bytes, want %d", ErrBlock, len(block), Size)
	}
	if c := block[0] >> 4; c != Format1Control {
		return "", fmt.Errorf("%w: control nibble %X, want %X", ErrBlock, c, Format1Control)
	}
	n := int(block[0] & 0x0F)
	if n < MinPINLen || n > MaxPINLen {
		return "", fmt.Errorf("%w: PIN length %d outside %d-%d", ErrBlock, n, MinPINLen, MaxPINLen)
	}
	pin := make([]byte, n)
	for i := 0; i < n; i++ {
		pos := 2 + i
		d := block[pos/2]
		if pos%2 == 0 {
			d >>= 4
		} else {
			d &= 0x0F
		}
		if d > 9 {
			clear(pin)
			return "", fmt.Errorf("%w: PIN nibble %d is not a decimal digit", ErrBlock, i+1)
		}
		pin[i] = '0' + d
	}
	return string(pin), nil
}
