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
	"math/rand/v2"
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

	// Spread, when set (before Run), shortens each interval by a random
	// amount below it, so that links signed on together (a proxy's
	// thousands of terminals after a restart) do not all echo in the same
	// instant ever after. The interval is never longer than configured:
	// it is what the peer may count on. Rand draws in [0, n) (nil:
	// math/rand/v2).
	Spread time.Duration
	Rand   func(n int64) int64
}

// interval is this cycle's idle interval. The first one after the
// sign-on is spread over half the interval: links that signed on together
// are spread out from their first echo.
func (i *Idle) interval(first bool) time.Duration {
	if i.Spread <= 0 {
		return i.every
	}
	r := i.Rand
	if r == nil {
		r = rand.Int64N
	}
	spread := min(i.Spread, i.every/2)
	if first {
		spread = i.every / 2
	}
	return i.every - time.Duration(r(int64(spread)))
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
	cur := i.interval(true)
	t := i.clk.NewTimer(cur)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C():
		}
		if i.idleFor(i.clk.Now()) >= cur {
			echo()
			cur = i.interval(false)
		}
		wait := cur - i.idleFor(i.clk.Now())
		if wait <= 0 {
			wait = cur
		}
		t.Reset(wait)
	}
}
