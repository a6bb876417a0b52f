//go:build !linux

package devsim

import (
	"context"
	"errors"
)

// startReader fails: the virtual reader is Debian's vsmartcard vpcd
// through pcscd.
func (r *run) startReader(context.Context) error {
	return errors.New("the virtual contactless reader needs Linux (pcscd and vsmartcard-vpcd)")
}
