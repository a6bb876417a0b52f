//go:build windows

package hsm

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// lockStore takes the exclusive lock of the key store at path on Windows:
// LockFileEx with LOCKFILE_EXCLUSIVE_LOCK|LOCKFILE_FAIL_IMMEDIATELY on the
// first byte of path+".lock" (created if missing), without waiting. As on
// Unix, the lock belongs to the returned file and goes when it is closed
// or the process ends. A store already locked is ErrStoreLocked.
func lockStore(path string) (*os.File, error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("hsm: lock key store: %w", err)
	}
	ol := new(windows.Overlapped)
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if err != nil {
		f.Close()
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
			return nil, fmt.Errorf("%w: %s", ErrStoreLocked, path)
		}
		return nil, fmt.Errorf("hsm: lock key store: %w", err)
	}
	return f, nil
}
