// Package keepalive sends a link's echo when the link has been idle, on the
// appliance's clock (atm/clock), so that tests drive it with a fake clock
// instead of waiting.
//
// iso8583-connection has its own idle timer (connection.IdleTime with a
// PingHandler), but it runs on the system clock and re-arms after every
// message; the host and proxy links use this package instead and give the
// library no PingHandler.
package keepalive

import (
	"sync/atomic"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
)

// Idle tracks when a link last wrote a message and calls its echo once the
// link has written nothing for the interval. Its methods are safe for
// concurrent use.
type Idle struct {
	clk   clock.Clock
	every time.Duration
	last  atomic.Int64 // UnixNano of the last write
}

// New returns an Idle for a link that has just written (its sign-on).
// every must be positive.
func New(clk clock.Clock, every time.Duration) *Idle {
	if every <= 0 {
		panic("keepalive: non-positive interval")
	}
	i := &Idle{clk: clk, every: every}
	i.Wrote()
	return i
}

// Wrote records that a message reached the link now.
func (i *Idle) Wrote() { i.last.Store(i.clk.Now().UnixNano()) }

// idleFor is how long the link has written nothing at now.
func (i *Idle) idleFor(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, i.last.Load()))
}

// Run calls echo each time the link has written nothing for the interval,
// until done is closed. echo runs on Run's goroutine, so echoes never pile
// up behind a slow answer; it should write (and so call Wrote) and, when
// the answer does not come, drop the link, which closes done. An echo that
// wrote nothing is tried again an interval later.
func (i *Idle) Run(done <-chan struct{}, echo func()) {
	t := i.clk.NewTimer(i.every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C():
		}
		if i.idleFor(i.clk.Now()) >= i.every {
			echo()
		}
		wait := i.every - i.idleFor(i.clk.Now())
		if wait <= 0 {
			wait = i.every
		}
		t.Reset(wait)
	}
}
