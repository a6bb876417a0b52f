// Package diskspace tells how many bytes the file system holding a path
// still lets an unprivileged writer use, so the ATM goes out of service
// before its store can no longer be written.
package diskspace

import "errors"

// ErrUnsupported: this platform has no free-space query here; the ATM then
// does not check (and says so in its log once).
var ErrUnsupported = errors.New("diskspace: free space not known on this platform")

// Free returns the bytes available to an unprivileged writer on the file
// system that holds path.
func Free(path string) (uint64, error) { return free(path) }
