package keepalive_test

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/keepalive"
)

// TestEchoOnlyWhenIdle drives the loop with a fake clock: the echo comes
// after a full interval without a write, a write postpones it, and an
// echo that could not write is tried again an interval later.
func TestEchoOnlyWhenIdle(t *testing.T) {
	t0 := time.Date(2028, 2, 29, 23, 59, 50, 0, time.UTC)
	fake := clock.NewFake(t0)
	idle := keepalive.New(fake, 30*time.Second)
	echoes := make(chan time.Duration, 10)
	var linkUp atomic.Bool
	linkUp.Store(true)
	armed := fake.Armed()
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		idle.Run(done, func() {
			echoes <- fake.Now().Sub(t0)
			if linkUp.Load() {
				idle.Wrote()
			}
		})
		close(ended)
	}()
	<-armed // the loop's timer

	// advance moves the clock; when a timer falls due, it waits for the
	// loop to re-arm, so that whatever the loop does has been done.
	advance := func(d time.Duration, fires bool) {
		t.Helper()
		armed := fake.Armed()
		fake.Advance(d)
		if !fires {
			return
		}
		select {
		case <-armed:
		case <-time.After(10 * time.Second): // a watchdog, not a wait
			t.Fatalf("the loop did not re-arm its timer at %v", fake.Now().Sub(t0))
		}
	}
	advance(29*time.Second, false)
	advance(time.Second, true) // 30 s: idle for the interval, echo
	advance(20*time.Second, false)
	idle.Wrote()                  // 50 s: a message
	advance(10*time.Second, true) // 60 s: idle only 10 s, no echo
	advance(19*time.Second, false)
	advance(time.Second, true) // 80 s: echo
	linkUp.Store(false)
	advance(30*time.Second, true) // 110 s: echo, which writes nothing
	advance(30*time.Second, true) // 140 s: tried again
	close(done)
	<-ended
	close(echoes)
	var got []time.Duration
	for d := range echoes {
		got = append(got, d)
	}
	want := []time.Duration{30 * time.Second, 80 * time.Second, 110 * time.Second, 140 * time.Second}
	if !slices.Equal(got, want) {
		t.Fatalf("echoes at %v, want %v", got, want)
	}
}

func TestNonPositiveIntervalPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	keepalive.New(clock.Real{}, 0)
}

// TestSpreadShortensTheInterval: with a spread each interval is the
// configured one less a random amount, never more; the first one is drawn
// over half the interval.
func TestSpreadShortensTheInterval(t *testing.T) {
	fake := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	i := keepalive.New(fake, 30*time.Second)
	i.Spread = 6 * time.Second
	var mu sync.Mutex
	draws := []int64{int64(5 * time.Second), int64(time.Second), 0, 0}
	var bounds []int64
	i.Rand = func(n int64) int64 {
		mu.Lock()
		defer mu.Unlock()
		if want := []int64{int64(15 * time.Second), int64(6 * time.Second)}[min(len(bounds), 1)]; n != want {
			t.Errorf("draw %d in [0, %d), want [0, %d)", len(bounds), n, want)
		}
		bounds = append(bounds, n)
		d := draws[0]
		draws = draws[1:]
		return d
	}
	echoes := make(chan time.Duration, 8)
	done := make(chan struct{})
	defer close(done)
	start := fake.Now()
	go i.Run(done, func() { echoes <- fake.Now().Sub(start); i.Wrote() })
	var got []time.Duration
	for sec := 1; sec <= 60 && len(got) < 2; sec++ {
		for fake.Pending() == 0 { // Run has armed its timer
			time.Sleep(time.Millisecond)
		}
		fake.Set(start.Add(time.Duration(sec) * time.Second))
		select {
		case at := <-echoes:
			got = append(got, at)
		case <-time.After(20 * time.Millisecond): // no echo due this second
		}
	}
	if want := []time.Duration{25 * time.Second, 54 * time.Second}; !slices.Equal(got, want) {
		t.Fatalf("echoes at %v, want %v", got, want)
	}
}
