package clock

import (
	"sort"
	"sync"
	"time"
)

// Fake is a Clock that stands still until Advance or Set moves it. Timers,
// AfterFunc callbacks and tickers whose time has come fire during the move,
// in time order. It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	seq     int
	waiting []*fakeTimer
	armed   chan struct{} // closed and replaced whenever a timer is armed
}

// NewFake returns a fake clock reading start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, armed: make(chan struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d and fires what fell due.
func (f *Fake) Advance(d time.Duration) {
	if d < 0 {
		panic("clock: Fake.Advance with a negative duration")
	}
	f.mu.Lock()
	target := f.now.Add(d)
	f.mu.Unlock()
	f.Set(target)
}

// Set moves the clock to t (never backwards: an earlier t is ignored, as
// the appliance's timers assume a monotonic clock) and fires what fell due.
func (f *Fake) Set(t time.Time) {
	for {
		f.mu.Lock()
		if len(f.waiting) == 0 || f.waiting[0].when.After(t) {
			if t.After(f.now) {
				f.now = t
			}
			f.mu.Unlock()
			return
		}
		ft := f.waiting[0]
		f.waiting = f.waiting[1:]
		if ft.when.After(f.now) {
			f.now = ft.when
		}
		now := f.now
		ft.active = false
		if ft.period > 0 {
			ft.when = now.Add(ft.period)
			f.insert(ft)
		}
		f.mu.Unlock()
		ft.fire(now)
	}
}

// Pending returns how many timers, callbacks and tickers are armed.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiting)
}

// Armed returns a channel closed the next time a timer, callback or ticker
// is armed or reset: a test waits on it instead of sleeping.
func (f *Fake) Armed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.armed
}

// NewTimer implements Clock.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{clk: f, c: make(chan time.Time, 1)}
	f.arm(t, d)
	return t
}

// AfterFunc implements Clock.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	t := &fakeTimer{clk: f, fn: fn}
	f.arm(t, d)
	return t
}

// NewTicker implements Clock.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	t := &fakeTimer{clk: f, c: make(chan time.Time, 1), period: d}
	f.arm(t, d)
	return fakeTicker{t}
}

func (f *Fake) arm(t *fakeTimer, d time.Duration) {
	f.mu.Lock()
	t.when = f.now.Add(d)
	due := d <= 0
	if !due {
		f.insert(t)
	}
	close(f.armed)
	f.armed = make(chan struct{})
	now := f.now
	f.mu.Unlock()
	if due {
		t.fire(now)
	}
}

// insert keeps waiting sorted by time, then by arming order.
func (f *Fake) insert(t *fakeTimer) {
	f.seq++
	t.seq = f.seq
	t.active = true
	i := sort.Search(len(f.waiting), func(i int) bool {
		w := f.waiting[i]
		return w.when.After(t.when) || (w.when.Equal(t.when) && w.seq > t.seq)
	})
	f.waiting = append(f.waiting, nil)
	copy(f.waiting[i+1:], f.waiting[i:])
	f.waiting[i] = t
}

func (f *Fake) remove(t *fakeTimer) bool {
	for i, w := range f.waiting {
		if w == t {
			f.waiting = append(f.waiting[:i], f.waiting[i+1:]...)
			t.active = false
			return true
		}
	}
	return false
}

type fakeTimer struct {
	clk    *Fake
	when   time.Time
	seq    int
	active bool
	period time.Duration
	c      chan time.Time
	fn     func()
}

func (t *fakeTimer) fire(now time.Time) {
	if t.fn != nil {
		go t.fn()
		return
	}
	select { // like time.Ticker, a slow reader misses ticks
	case t.c <- now:
	default:
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	return t.clk.remove(t)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.clk.mu.Lock()
	was := t.clk.remove(t)
	t.clk.mu.Unlock()
	if t.c != nil { // as time.Timer since Go 1.23: no stale value after Reset
		select {
		case <-t.c:
		default:
		}
	}
	t.clk.arm(t, d)
	return was
}

type fakeTicker struct{ t *fakeTimer }

func (k fakeTicker) C() <-chan time.Time { return k.t.c }
func (k fakeTicker) Stop()               { k.t.Stop() }
func (k fakeTicker) Reset(d time.Duration) {
	k.t.clk.mu.Lock()
	k.t.period = d
	k.t.clk.mu.Unlock()
	k.t.Reset(d)
}
