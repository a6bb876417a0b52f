//go:build !failpoint

package store

// failpoint is compiled out of production builds: FailpointEnv is
// ignored. Crash tests build with the tag failpoint
// (failpoint_failpoint.go).
func failpoint(string) {}
