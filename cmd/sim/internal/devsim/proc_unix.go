//go:build unix

package devsim

import (
	"os/exec"
	"syscall"
)

// ownGroup puts the process in its own process group, so that stopping it
// also stops anything it started, and Ctrl-C in the terminal reaches only
// sim, which then stops the group in order.
func ownGroup(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// terminate sends SIGTERM to the process group: the programs stop cleanly.
func terminate(c *exec.Cmd) { _ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM) }

// kill sends SIGKILL to the process group.
func kill(c *exec.Cmd) { _ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
