//go:build !unix && !windows

package hsm

import (
	"fmt"
	"os"
	"runtime"
)

// lockStore refuses to open a key store where the platform has no file
// lock this package knows (neither flock(2) nor LockFileEx): two
// processes could otherwise overwrite each other's keys unnoticed.
func lockStore(path string) (*os.File, error) {
	return nil, fmt.Errorf("hsm: lock key store %s: no file locking on %s", path, runtime.GOOS)
}
