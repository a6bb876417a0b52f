//go:build unix

package main

import "syscall"

// raiseFileLimit lifts the soft limit of open files to the hard one: a
// fleet holds one connection per terminal.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
