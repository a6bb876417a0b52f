//go:build !cgo

package p11

import "github.com/cardless-atm/cardless/hsm"

// Module is unavailable without cgo: Open always fails with ErrNoCgo, so
// no value of it is ever made.
type Module struct {
	hsm.KeyBlockImporter
	hsm.KeyBlockGenerator
	hsm.Module
	hsm.ClearKeyImporter
	hsm.HMACer
}

// Open fails: PKCS#11 needs cgo.
func Open(Config) (*Module, error) { return nil, ErrNoCgo }

// Close does nothing.
func (*Module) Close() error { return nil }

// GenerateHMACKey fails.
func (*Module) GenerateHMACKey(hsm.KeyName) error { return ErrNoCgo }

// Keys fails.
func (*Module) Keys() ([]hsm.KeyInfo, error) { return nil, ErrNoCgo }
