//go:build !linux

package ceremony

// flushInput is a no-op where the terminal flush is not wired (the
// interactive ceremony is tested on Linux).
func flushInput(int) {}
