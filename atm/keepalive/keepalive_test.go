package keepalive_test

import (
	"slices"
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
