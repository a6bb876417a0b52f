//go:build failpoint

package appliance

import (
	"log/slog"
	"os"
	"time"
)

// crashHook returns the store's AfterCommit hook for crash tests: the
// process kills itself (SIGKILL on Unix, TerminateProcess on Windows)
// right after the commit labelled point. Compiled only with the build tag
// failpoint.
func crashHook(point string, log *slog.Logger) func(string) {
	if point == "" {
		return nil
	}
	log.Warn("crash test failure point armed", "after", point)
	return func(label string) {
		if label == point {
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				_ = p.Kill()
			}
			time.Sleep(time.Minute) // never returns
		}
	}
}
