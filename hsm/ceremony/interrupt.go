package ceremony

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// interruptSignals are caught while a component is read from a terminal
// with echo off, so that the terminal is never left without echo.
var interruptSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// signalStatus is the conventional exit status for a process ended by sig:
// 128 plus the signal number (130 for SIGINT).
func signalStatus(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return ExitError
}

// terminalGuard restores a terminal's saved state and ends the process when
// one of interruptSignals arrives while it is armed.
type terminalGuard struct {
	fd       int
	state    *term.State
	stderr   io.Writer
	wipe     func()
	sigs     chan os.Signal
	done     chan struct{}
	finished chan struct{}
}

// guardTerminal saves the state of the terminal fd and starts catching
// interruptSignals. On a signal the guard restores the saved state, calls
// wipe (to zero secrets held by the caller), prints one line on stderr
// (never any typed input) and exits with signalStatus. The caller must call
// stop when the read is over; while the guard is armed the caller must not
// touch what wipe clears.
func guardTerminal(fd int, stderr io.Writer, wipe func()) (*terminalGuard, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return nil, err
	}
	g := &terminalGuard{
		fd:       fd,
		state:    state,
		stderr:   stderr,
		wipe:     wipe,
		sigs:     make(chan os.Signal, 1),
		done:     make(chan struct{}),
		finished: make(chan struct{}),
	}
	signal.Notify(g.sigs, interruptSignals...)
	go g.watch()
	return g, nil
}

func (g *terminalGuard) watch() {
	select {
	case sig := <-g.sigs:
		g.interrupted(sig)
	case <-g.done:
		// A signal delivered before signal.Stop returned is still
		// handled: the operator asked to stop.
		select {
		case sig := <-g.sigs:
			g.interrupted(sig)
		default:
		}
	}
	close(g.finished)
}

func (g *terminalGuard) interrupted(sig os.Signal) {
	flushInput(g.fd) // before echo comes back: typed input is never shown
	_ = term.Restore(g.fd, g.state)
	if g.wipe != nil {
		g.wipe()
	}
	fmt.Fprintf(g.stderr, "\natmctl: interrupted (%v): nothing was stored\n", sig)
	os.Exit(signalStatus(sig))
}

// stop stops catching signals and waits until the guard has finished, so
// that the caller may use its secrets again afterwards. A signal that
// arrived before stop still ends the process.
func (g *terminalGuard) stop() {
	signal.Stop(g.sigs)
	close(g.done)
	<-g.finished
}
