package clock_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
)

var t0 = time.Date(2028, 2, 29, 23, 59, 50, 0, time.UTC)

func TestFakeTimerFiresOnlyWhenDue(t *testing.T) {
	c := clock.NewFake(t0)
	tm := c.NewTimer(10 * time.Second)
	c.Advance(9 * time.Second)
	select {
	case <-tm.C():
		t.Fatal("timer fired 1 s early")
	default:
	}
	c.Advance(time.Second)
	select {
	case got := <-tm.C():
		if !got.Equal(t0.Add(10 * time.Second)) {
			t.Fatalf("fired at %v", got)
		}
	default:
		t.Fatal("timer did not fire when due")
	}
	if c.Pending() != 0 {
		t.Fatalf("%d timers pending after firing", c.Pending())
	}
}

func TestFakeStopAndReset(t *testing.T) {
	c := clock.NewFake(t0)
	tm := c.NewTimer(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop of an active timer reported false")
	}
	if tm.Stop() {
		t.Fatal("second Stop reported true")
	}
	c.Advance(time.Hour)
	select {
	case <-tm.C():
		t.Fatal("stopped timer fired")
	default:
	}
	if tm.Reset(time.Minute) {
		t.Fatal("Reset of a stopped timer reported it active")
	}
	c.Advance(time.Minute)
	select {
	case <-tm.C():
	default:
		t.Fatal("reset timer did not fire")
	}
}

func TestFakeFiresInTimeOrderAndSetsNow(t *testing.T) {
	c := clock.NewFake(t0)
	var order []string
	done := make(chan string, 3)
	c.AfterFunc(3*time.Second, func() { done <- "c" })
	c.AfterFunc(1*time.Second, func() { done <- "a" })
	tm := c.NewTimer(2 * time.Second)
	c.Advance(5 * time.Second)
	for range 2 {
		order = append(order, <-done)
	}
	if got := <-tm.C(); !got.Equal(t0.Add(2 * time.Second)) {
		t.Fatalf("timer saw %v", got)
	}
	if fmt.Sprint(order) != "[a c]" && fmt.Sprint(order) != "[c a]" {
		t.Fatalf("callbacks %v", order)
	}
	if !c.Now().Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("now %v", c.Now())
	}
}

func TestFakeTicker(t *testing.T) {
	c := clock.NewFake(t0)
	tk := c.NewTicker(time.Second)
	var n atomic.Int32
	for range 3 {
		c.Advance(time.Second)
		select {
		case <-tk.C():
			n.Add(1)
		default:
		}
	}
	if n.Load() != 3 {
		t.Fatalf("%d ticks in 3 s", n.Load())
	}
	tk.Stop()
	c.Advance(time.Minute)
	select {
	case <-tk.C():
		t.Fatal("stopped ticker ticked")
	default:
	}
}

func TestFakeSetNeverGoesBack(t *testing.T) {
	c := clock.NewFake(t0)
	c.Set(t0.Add(-time.Hour))
	if !c.Now().Equal(t0) {
		t.Fatalf("clock went back to %v", c.Now())
	}
}

func TestFakeArmedSignalsANewTimer(t *testing.T) {
	c := clock.NewFake(t0)
	armed := c.Armed()
	go c.NewTimer(time.Second)
	<-armed // bounded by the test timeout; no sleep
	if c.Pending() != 1 {
		t.Fatalf("pending %d", c.Pending())
	}
}

func TestSleep(t *testing.T) {
	c := clock.NewFake(t0)
	done := make(chan bool)
	armed := c.Armed()
	go func() { done <- clock.Sleep(c, time.Minute, nil) }()
	<-armed
	c.Advance(time.Minute)
	if !<-done {
		t.Fatal("Sleep reported an interruption")
	}
	stop := make(chan struct{})
	close(stop)
	if clock.Sleep(c, time.Minute, stop) {
		t.Fatal("Sleep ignored done")
	}
}

func ExampleFake() {
	c := clock.NewFake(time.Date(2026, 12, 31, 23, 59, 55, 0, time.UTC))
	expiry := c.NewTimer(10 * time.Second)
	c.Advance(10 * time.Second)
	fmt.Println((<-expiry.C()).Format(time.RFC3339))
	// Output: 2027-01-01T00:00:05Z
}
