//go:build failpoint

package store

import (
	"os"
	"strings"
	"time"
)

// failpoint kills the process (SIGKILL on Unix, TerminateProcess on
// Windows) at the point FailpointEnv names, at once or after the delay
// given with "+". Compiled only with the build tag failpoint.
func failpoint(point string) {
	name, delay, timed := strings.Cut(os.Getenv(FailpointEnv), "+")
	if name != point {
		return
	}
	kill := func() {
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			_ = p.Kill()
		}
		time.Sleep(time.Minute) // never returns
	}
	if !timed {
		kill()
	}
	d, err := time.ParseDuration(delay)
	if err != nil {
		panic("store: " + FailpointEnv + ": " + err.Error())
	}
	time.AfterFunc(d, kill)
}
