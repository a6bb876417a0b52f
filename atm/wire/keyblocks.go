package wire

import (
	"fmt"
	"strings"

	"github.com/cardless-atm/cardless/hsm/tr31"
)

// KBPKVariant is the key variant byte that turns the terminal master key
// into the TR-31 key block protection key of the working keys: both ends
// call DeriveVariant(hsm.TMK, <slot>, KBPKVariant). It has four bits set,
// so the variant keeps odd parity, and differs from NetMgmtVariant, so
// the key block protection key is used for nothing else.
const KBPKVariant byte = 0x5A

// KeyFormat is how the working keys travel in field 48 of the key
// exchange messages (0810 to 001 and 161, 0800 162).
type KeyFormat string

const (
	// KeyFormatTR31: TR-31 version B key blocks under the key block
	// protection key (KBPKVariant of the TMK), each key's usage bound to
	// it (TR31Keys). The default.
	KeyFormatTR31 KeyFormat = "tr31"
	// KeyFormatLegacy: the keys 3DES-ECB under the TMK with their KCVs
	// (KeyBlock), for older proxies. A terminal configured for one format
	// refuses the other.
	KeyFormatLegacy KeyFormat = "legacy"
)

// ParseKeyFormat reads a configured key format; empty means KeyFormatTR31.
func ParseKeyFormat(s string) (KeyFormat, error) {
	switch KeyFormat(s) {
	case "", KeyFormatTR31:
		return KeyFormatTR31, nil
	case KeyFormatLegacy:
		return KeyFormatLegacy, nil
	}
	return "", fmt.Errorf("key block format %q: want %q or %q", s, KeyFormatTR31, KeyFormatLegacy)
}

// KeyFormatOf tells which format field 48 holds ("" when neither).
func KeyFormatOf(field48 string) KeyFormat {
	switch {
	case strings.HasPrefix(field48, "TAKB="):
		return KeyFormatTR31
	case strings.HasPrefix(field48, "TAK="):
		return KeyFormatLegacy
	}
	return ""
}

// The headers of the working keys' TR-31 blocks: the MAC key is an ISO
// 9797-1 algorithm 3 key that generates and verifies MACs, the data key a
// data encryption key that encrypts and decrypts; neither is exportable.
var (
	TAKHeader = tr31.Header{Version: 'B', KeyUsage: "M3", Algorithm: 'T', ModeOfUse: 'C', KeyVersion: "00", Exportability: 'N'}
	TEKHeader = tr31.Header{Version: 'B', KeyUsage: "D0", Algorithm: 'T', ModeOfUse: 'B', KeyVersion: "00", Exportability: 'N'}
)

// TR31Keys is field 48 in the TR-31 format:
//
//	TAKB=<TR-31 key block>;TEKB=<TR-31 key block>
//
// Each block is version B under the key block protection key; the
// receiver checks its header against TAKHeader and TEKHeader (SameUse).
type TR31Keys struct {
	TAK string
	TEK string
}

// String formats k for field 48.
func (k TR31Keys) String() string { return "TAKB=" + k.TAK + ";TEKB=" + k.TEK }

// ParseTR31Keys parses field 48 in the TR-31 format. It is strict: the two
// tags in order, each block a well-formed version B key block header.
// Errors never contain the field's content.
func ParseTR31Keys(s string) (TR31Keys, error) {
	tak, tek, ok := strings.Cut(s, ";")
	var k TR31Keys
	if k.TAK, ok = strings.CutPrefix(tak, "TAKB="); !ok || !strings.HasPrefix(tek, "TEKB=") {
		return TR31Keys{}, fmt.Errorf("%w: field 48 must be TAKB=<key block>;TEKB=<key block>", ErrFieldFormat)
	}
	k.TEK = tek[len("TEKB="):]
	for _, b := range []struct{ name, block string }{{"TAKB", k.TAK}, {"TEKB", k.TEK}} {
		h, err := tr31.ParseHeader(b.block)
		if err != nil {
			return TR31Keys{}, fmt.Errorf("%w: field 48 %s: %w", ErrFieldFormat, b.name, err)
		}
		if h.Version != 'B' {
			return TR31Keys{}, fmt.Errorf("%w: field 48 %s: key block version %c (B expected)", ErrFieldFormat, b.name, h.Version)
		}
	}
	return k, nil
}

// SameUse reports whether a received key block header gives the key the
// usage, algorithm and mode of use of want (TAKHeader or TEKHeader).
func SameUse(got, want tr31.Header) bool {
	return got.KeyUsage == want.KeyUsage && got.Algorithm == want.Algorithm && got.ModeOfUse == want.ModeOfUse
}
