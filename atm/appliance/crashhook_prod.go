//go:build !failpoint

package appliance

import "log/slog"

// crashHook is compiled out of production builds: a failure point named in
// the environment is ignored, and said so in the log. Crash tests build the
// appliance with the build tag failpoint (crashhook_failpoint.go).
func crashHook(point string, log *slog.Logger) func(string) {
	if point != "" {
		log.Warn("crash test failure point ignored: this build has no failpoints (build tag failpoint)", "env", CrashEnv)
	}
	return nil
}
