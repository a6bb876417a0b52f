//go:build linux

package ceremony

import "golang.org/x/sys/unix"

// flushInput discards what was typed and not yet read (a component
// half-typed when the operator interrupted): it must reach neither the
// screen, when echo comes back on, nor the shell.
func flushInput(fd int) { _ = unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH) }
