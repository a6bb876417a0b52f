//go:build !cgo && !windows

package nfc

import "fmt"

// PCSC is not available in a build without cgo (pcsc-lite is a C library).
type PCSC struct{ Reader }

// NewPCSC fails: this build has no PC/SC (built with CGO_ENABLED=0).
func NewPCSC(name string) (*PCSC, error) {
	return nil, fmt.Errorf("%w: this build has no cgo, so no pcsc-lite: build with CGO_ENABLED=1 and libpcsclite-dev", ErrUnavailable)
}
