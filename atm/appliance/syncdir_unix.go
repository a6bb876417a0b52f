//go:build !windows

package appliance

func isSyncUnsupported(error) bool { return false }
