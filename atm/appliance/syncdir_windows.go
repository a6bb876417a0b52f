//go:build windows

package appliance

// Windows cannot sync a directory handle; NTFS makes a rename durable with
// its journal.
func isSyncUnsupported(error) bool { return true }
