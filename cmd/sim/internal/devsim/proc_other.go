//go:build !unix

package devsim

import "os/exec"

// ownGroup does nothing where there are no Unix process groups.
func ownGroup(*exec.Cmd) {}

// terminate kills the process: Windows has no SIGTERM to send to another
// process, so the programs do not get to stop cleanly there (their state
// is crash-safe, so nothing is lost; a restart recovers).
func terminate(c *exec.Cmd) { _ = c.Process.Kill() }

// kill kills the process.
func kill(c *exec.Cmd) { _ = c.Process.Kill() }
