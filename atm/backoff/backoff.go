// Package backoff is the one retry delay of the appliance: the host link's
// and the proxy link's reconnects and the store-and-forward queue's resends
// all wait Policy.Delay between attempts.
//
// The delay doubles from Min with every failed attempt up to Max, and is
// drawn uniformly from the upper half of that step ("equal jitter"), so a
// fleet of ATMs that lost the same host at the same moment does not come
// back in step. Its bounds are exact: Min/2 <= Delay <= Max, always.
//
// The retry loops themselves are not here: each link runs its own on the
// appliance's clock (atm/clock), so tests move time instead of sleeping.
// iso8583-connection's reconnecting Pool (v0.9.0) was considered for the
// links and not used: it waits with time.After (not an injectable clock),
// its exponential wait has no jitter, and it manages a pool of connections
// to several addresses where each ATM link is one connection with its own
// sign-on and key state.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy bounds the delays. Min > 0 and Max >= Min.
type Policy struct {
	Min, Max time.Duration
	// Rand returns a uniform random int64 in [0, n); nil means
	// math/rand/v2's. Tests give a deterministic one.
	Rand func(n int64) int64
}

// Step is the delay's ceiling before attempt n (n >= 1: the wait after the
// n-th failure): Min doubled n-1 times, capped at Max.
func (p Policy) Step(n int) time.Duration {
	d := p.Min
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Delay is the wait after the n-th consecutive failure (n >= 1): uniform
// in [Step(n)/2, Step(n)].
func (p Policy) Delay(n int) time.Duration {
	s := p.Step(n)
	half := s / 2
	r := p.Rand
	if r == nil {
		r = rand.Int64N
	}
	return half + time.Duration(r(int64(s-half)+1))
}

// Backoff counts consecutive failures for a retry loop.
type Backoff struct {
	Policy
	n int
}

// Next returns the wait after one more failure.
func (b *Backoff) Next() time.Duration {
	b.n++
	return b.Delay(b.n)
}

// Reset starts again from Min after a success.
func (b *Backoff) Reset() { b.n = 0 }
