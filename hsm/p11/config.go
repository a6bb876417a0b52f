package p11

import (
	"errors"
	"fmt"
	"log/slog"
)

// Config selects the token and what may happen where it lacks a mechanism.
type Config struct {
	// Library is the PKCS#11 module (shared library), for example
	// /usr/lib/softhsm/libsofthsm2.so.
	Library string
	// TokenLabel is the label of the token that holds the terminal's keys.
	TokenLabel string
	// PIN is the user PIN. Never logged.
	PIN string
	// ClearKeyFallback allows, where the token lacks the mechanism to do
	// it inside (unwrap under the KEK, key variants, the retail MAC's
	// single-DES half), loading a key through its clear value in the
	// appliance's memory, for the moment of the load, zeroed after. Off,
	// such operations fail with ErrMechanism. The start-up log says which
	// path each operation takes (Module.Paths).
	ClearKeyFallback bool
	// Variants are the key-variant bytes (hsm.Module.DeriveVariant)
	// prepared beside every 3DES key loaded through its clear value, for
	// tokens without CKM_XOR_BASE_AND_DATA.
	Variants []byte
	Logger   *slog.Logger // nil: discard
}

func (c Config) validate() error {
	switch {
	case c.Library == "":
		return errors.New("p11: the PKCS#11 library (keys.pkcs11.module) is not set")
	case c.TokenLabel == "":
		return errors.New("p11: the token label (keys.pkcs11.tokenLabel) is not set")
	case c.PIN == "":
		return errors.New("p11: the user PIN (keys.pkcs11.pinFile) is empty")
	}
	for _, v := range c.Variants {
		if v&0xFE == 0 {
			return fmt.Errorf("p11: variant 0x%02X leaves the DES key bits unchanged", v)
		}
	}
	return nil
}

// Errors of opening a token. Callers compare with errors.Is.
var (
	ErrLibrary   = errors.New("p11: PKCS#11 library")
	ErrNoToken   = errors.New("p11: token not found")
	ErrPIN       = errors.New("p11: wrong user PIN")
	ErrPINLocked = errors.New("p11: the user PIN is locked (too many wrong PINs): the security officer must reset it")
	// ErrMechanism: the token lacks a mechanism the operation needs (and
	// clearKeyFallback does not allow the clear-value path).
	ErrMechanism = errors.New("p11: the token lacks a mechanism")
	// ErrNoCgo: this build has no cgo, so no PKCS#11.
	ErrNoCgo = errors.New("p11: this build has no PKCS#11 support (built without cgo)")
)
