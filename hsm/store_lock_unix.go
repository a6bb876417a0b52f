//go:build unix

package hsm

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockStore takes the exclusive lock of the key store at path: flock(2)
// on path+".lock" (created with mode 0600 if missing), without waiting.
// The lock belongs to the returned file and goes when it is closed or the
// process ends, so a crash never leaves a stale lock behind. A store
// already locked by another process (or by another open in this one) is
// ErrStoreLocked.
func lockStore(path string) (*os.File, error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("hsm: lock key store: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrStoreLocked, path)
		}
		return nil, fmt.Errorf("hsm: lock key store: %w", err)
	}
	return f, nil
}
