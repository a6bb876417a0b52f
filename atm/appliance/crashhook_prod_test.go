//go:build !failpoint

package appliance

import (
	"bytes"
	"log/slog"
	"testing"
)

// TestProductionBuildIgnoresCrashEnv: without the build tag failpoint the
// store gets no AfterCommit hook whatever the environment says, and the
// log says the failure point is ignored.
func TestProductionBuildIgnoresCrashEnv(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	if h := crashHook("Dispensing", log); h != nil {
		t.Fatal("a production build armed a crash failure point")
	}
	want := "level=WARN msg=\"crash test failure point ignored: this build has no failpoints (build tag failpoint)\" env=" + CrashEnv + "\n"
	if got := buf.String(); got != want {
		t.Fatalf("log %q, want %q", got, want)
	}
	buf.Reset()
	if h := crashHook("", log); h != nil || buf.Len() != 0 {
		t.Fatalf("no failure point: hook %v, log %q", h != nil, buf.String())
	}
}
