package ui

import (
	"time"
)

// Backend calls never run on the window's goroutine: a core waiting on a
// slow dispenser, a store or a printer must not freeze the countdown, the
// cancel button or the next frame. Each call runs on a goroutine of its
// own; its result comes back as a closure that Layout applies on the
// window's goroutine (collect), and App.Wake asks the window loop for the
// frame that does it.
//
// Three slots, each with at most one call in flight:
//   - the session call (RequestWithdrawal, Cancel, MoreTime): a press that
//     would start a second one is ignored and logged, so a double press
//     never reaches the core twice;
//   - the receipt (PrintReceipt), which does not hold the session up;
//   - the supervisor refresh (Supervisor).
//
// A session call that has not finished after waitDelay shows the Please
// wait screen (a call that takes a moment shows no flicker), except
// MoreTime, during which the countdown goes on.

// waitDelay is how long a session call runs before the Please wait screen
// replaces the screen it was started from.
const waitDelay = 300 * time.Millisecond

// answerGrace is how long the frame whose input started a session call
// waits for its answer before laying out: a quick core (most answers take a
// few milliseconds) costs no extra frame and no flicker, and a slow one
// delays that frame by no more than this. It bounds a wait of the window's
// goroutine in real time, so it is not read from Options.Clock.
const answerGrace = 8 * time.Millisecond

// supervisorRefresh is how often the supervisor screen re-reads
// Backend.Supervisor while it is shown.
const supervisorRefresh = 2 * time.Second

// sessionCall is the session call in flight (none when name is "").
type sessionCall struct {
	name  string
	since time.Time
	wait  bool // show ScreenWait once it has run waitDelay
}

// calls is the App's record of its backend calls.
type calls struct {
	call     sessionCall // the session call in flight
	printing bool        // PrintReceipt in flight
	supBusy  bool        // Supervisor in flight
	sup      SupervisorInfo
	supAt    time.Time // when the shown SupervisorInfo was asked for; zero: never
	supOK    bool      // sup holds an answer
}

// pipe carries finished calls back to the window goroutine.
type pipe struct {
	results chan func()   // closures to apply on the window goroutine
	wake    chan struct{} // capacity 1: a result is waiting
	started bool          // this frame's input started a session call
}

func newPipe() pipe {
	// One slot each for the session, the receipt and the supervisor: a
	// finished call never waits to deliver its result.
	return pipe{results: make(chan func(), 3), wake: make(chan struct{}, 1)}
}

// Wake receives (capacity 1, never closed) when a backend call the App
// started has finished: the window loop must then lay out a frame, which
// applies the result. Run does; so does package uitest.
func (a *App) Wake() <-chan struct{} { return a.wake }

// Pending reports whether a backend call the App started has not been
// applied yet (tests wait for it with uitest.Driver.Settle).
func (a *App) Pending() bool {
	return a.call.name != "" || a.printing || a.supBusy || a.login.busy || a.op.busy
}

// background runs work on its own goroutine; the closure it returns is
// applied on the window goroutine by the next Layout. work must not touch
// the App.
func (a *App) background(work func() (apply func())) {
	go func() {
		apply := work()
		a.results <- apply
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}()
}

// collect applies the results of the calls that have finished.
func (a *App) collect() {
	for {
		select {
		case apply := <-a.results:
			apply()
		default:
			return
		}
	}
}

// session starts the session call name (fn on its own goroutine, then on
// the window goroutine with fn's error), unless one is in flight: then
// the press is logged and ignored, and session returns false.
func (a *App) session(name string, wait bool, fn func() error, then func(error)) bool {
	if a.call.name != "" {
		a.log.Info("ui input ignored: a call to the core is in flight", "call", a.call.name, "pressed", name)
		return false
	}
	a.call = sessionCall{name: name, since: a.now(), wait: wait}
	a.started = true
	a.background(func() func() {
		err := fn()
		return func() {
			a.call = sessionCall{}
			if then != nil {
				then(err)
			}
		}
	})
	return true
}

// awaitQuick gives the session call this frame's input started
// answerGrace to answer, and applies what has come back.
func (a *App) awaitQuick() {
	if a.started {
		a.started = false
		t := time.NewTimer(answerGrace)
		defer t.Stop()
		select {
		case apply := <-a.results:
			apply()
		case <-t.C:
		}
	}
	a.collect()
}

// waiting reports whether the Please wait screen is shown at now.
func (a *App) waiting(now time.Time) bool {
	return a.call.name != "" && a.call.wait && !now.Before(a.call.since.Add(waitDelay))
}

// refreshSupervisor asks for a new SupervisorInfo when the shown one is
// older than supervisorRefresh and none is on its way.
func (a *App) refreshSupervisor(now time.Time) {
	if a.supBusy || (!a.supAt.IsZero() && now.Before(a.supAt.Add(supervisorRefresh))) {
		return
	}
	a.supBusy, a.supAt = true, now
	a.background(func() func() {
		info := a.b.Supervisor()
		return func() { a.supBusy, a.sup, a.supOK = false, info, true }
	})
}
