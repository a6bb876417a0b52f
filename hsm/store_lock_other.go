//go:build !unix

package hsm

import "os"

// lockStore does nothing where flock(2) does not exist: the key store is
// not protected against a second process there (the appliance runs on
// Linux).
func lockStore(path string) (*os.File, error) { return nil, nil }
