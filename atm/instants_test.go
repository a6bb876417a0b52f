package atm_test

import (
	"os"
	"os/exec"
	"testing"
)

// The core's flow tests must not depend on the date they run: the suite
// runs again with the clock starting on a leap day, at a year end, at the
// 32-bit time_t rollover, and on the real clock. A test that passes only
// near one date is a defect.
func TestFlowsAtOtherInstants(t *testing.T) {
	if os.Getenv(ClockEnv) != "" {
		t.Skip("already running under a chosen clock")
	}
	if testing.Short() {
		t.Skip("re-runs the whole suite four times")
	}
	for _, instant := range []string{
		"2028-02-29T23:59:50Z", // leap day, ten seconds before midnight
		"2026-12-31T23:59:55Z", // year end
		"2038-01-19T03:14:00Z", // eight seconds before the 32-bit time_t rollover
		"real",
	} {
		t.Run(instant, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.count=1", "-test.skip=^TestFlowsAtOtherInstants$")
			cmd.Env = append(os.Environ(), ClockEnv+"="+instant)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("suite with %s=%s: %v\n%s", ClockEnv, instant, err, out)
			}
		})
	}
}
