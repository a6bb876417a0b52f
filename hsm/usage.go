package hsm

import (
	"errors"
	"fmt"

	"github.com/cardless-atm/cardless/hsm/tr31"
)

// ErrKeyUsage: the key's TR-31 usage or mode of use does not allow the
// operation (a MAC key asked to encrypt, a data key asked to MAC).
var ErrKeyUsage = errors.New("hsm: the key's usage does not allow this operation")

// Op is a use of a key, checked against its Usage.
type Op int

// The uses of a key.
const (
	OpMACGenerate Op = iota // GenerateMAC
	OpMACVerify             // VerifyMAC
	OpEncrypt               // Encrypt
	OpDecrypt               // Decrypt
	OpWrap                  // as KEK or KBPK: ImportKey, GenerateKey, key blocks
	OpDerive                // DeriveVariant from it
)

func (o Op) String() string {
	return [...]string{"MAC generation", "MAC verification", "encryption", "decryption", "key wrapping", "derivation"}[o]
}

// Usage is the TR-31 key usage and mode of use bound to a key that arrived
// in a key block. The zero Usage is unrestricted: keys of the ceremony,
// development keys and keys imported under a KEK.
type Usage struct {
	KeyUsage string // "M3", "D0", "K0", "K1"
	Mode     byte   // 'B', 'C', 'D', 'E', 'G', 'V', 'N'
}

// Restricted reports whether u limits the key's uses.
func (u Usage) Restricted() bool { return u.KeyUsage != "" }

// supported are the key usages a module accepts from a key block, with the
// modes of use each may carry.
var supported = map[string]string{
	"M3": "CGVN", // ISO 9797-1 MAC algorithm 3 (the retail MAC)
	"D0": "BEDN", // symmetric data encryption
	"K0": "BEDN", // key encryption or wrapping
	"K1": "BEDN", // TR-31 key block protection key
}

// UsageOf checks a key block header: a TDES key with a usage and mode of
// use a module supports.
func UsageOf(h tr31.Header) (Usage, error) {
	modes, ok := supported[h.KeyUsage]
	switch {
	case h.Algorithm != 'T':
		return Usage{}, fmt.Errorf("%w: key block algorithm %q (3DES keys only)", ErrKeyUsage, h.Algorithm)
	case !ok:
		return Usage{}, fmt.Errorf("%w: key usage %q is not supported (M3, D0, K0, K1)", ErrKeyUsage, h.KeyUsage)
	case !containsByte(modes, h.ModeOfUse):
		return Usage{}, fmt.Errorf("%w: mode of use %q with key usage %s", ErrKeyUsage, h.ModeOfUse, h.KeyUsage)
	}
	return Usage{KeyUsage: h.KeyUsage, Mode: h.ModeOfUse}, nil
}

// Allows reports whether a key of usage u may be used for o.
func (u Usage) Allows(o Op) bool {
	if !u.Restricted() {
		return true
	}
	m := u.Mode
	switch u.KeyUsage {
	case "M3":
		return (o == OpMACGenerate && (m == 'C' || m == 'G' || m == 'N')) || (o == OpMACVerify && (m == 'C' || m == 'V' || m == 'N'))
	case "D0":
		return (o == OpEncrypt && (m == 'B' || m == 'E' || m == 'N')) || (o == OpDecrypt && (m == 'B' || m == 'D' || m == 'N'))
	case "K0", "K1":
		return o == OpWrap
	}
	return false
}

// Check returns an error wrapping ErrKeyUsage when u does not allow o.
func (u Usage) Check(name KeyName, o Op) error {
	if u.Allows(o) {
		return nil
	}
	return fmt.Errorf("%w: %s has usage %s, mode %c: no %s", ErrKeyUsage, name, u.KeyUsage, u.Mode, o)
}

func containsByte(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

// KeyBlockImporter is implemented by modules that take TR-31 key blocks.
// The block is verified and opened under the key block protection key
// kbpk inside the module; the key is stored under name bound to the
// usage and mode of use of its header, and the module refuses any other
// use of it (ErrKeyUsage). A block that does not verify stores nothing.
type KeyBlockImporter interface {
	ImportKeyBlock(kbpk, name KeyName, block string) (h tr31.Header, kcv string, err error)
}

// KeyBlockGenerator is implemented by modules that issue TR-31 key blocks:
// a random double-length key is stored under name with the usage of h and
// returned wrapped under kbpk in a version h.Version block.
type KeyBlockGenerator interface {
	GenerateKeyBlock(kbpk, name KeyName, h tr31.Header) (block, kcv string, err error)
}
