package backoff_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/backoff"
)

func TestStep(t *testing.T) {
	p := backoff.Policy{Min: 500 * time.Millisecond, Max: 30 * time.Second}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := p.Step(i + 1); got != w {
			t.Errorf("Step(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := p.Step(1000); got != 30*time.Second {
		t.Errorf("Step(1000) = %v (overflow?)", got)
	}
}

// The extremes of the random source give exactly the bounds of the
// jitter: half the step and the whole step.
func TestDelayBounds(t *testing.T) {
	lo := backoff.Policy{Min: time.Second, Max: 8 * time.Second, Rand: func(int64) int64 { return 0 }}
	hi := backoff.Policy{Min: time.Second, Max: 8 * time.Second, Rand: func(n int64) int64 { return n - 1 }}
	for n, step := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		if got := lo.Delay(n + 1); got != step/2 {
			t.Errorf("lowest Delay(%d) = %v, want %v", n+1, got, step/2)
		}
		if got := hi.Delay(n + 1); got != step {
			t.Errorf("highest Delay(%d) = %v, want %v", n+1, got, step)
		}
	}
}

// Property: with the real random source no delay is ever outside
// [Min/2, Max], for any bounds and attempt.
func TestDelayNeverExceedsMax(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		min := time.Duration(1 + r.Int64N(int64(time.Minute)))
		max := min + time.Duration(r.Int64N(int64(time.Hour)))
		p := backoff.Policy{Min: min, Max: max}
		n := 1 + r.IntN(80)
		if d := p.Delay(n); d < min/2 || d > max {
			t.Fatalf("Policy{%v, %v}.Delay(%d) = %v, outside [%v, %v]", min, max, n, d, min/2, max)
		}
	}
}

func TestBackoffResets(t *testing.T) {
	b := backoff.Backoff{Policy: backoff.Policy{Min: time.Second, Max: time.Minute, Rand: func(n int64) int64 { return n - 1 }}}
	got := []time.Duration{b.Next(), b.Next(), b.Next()}
	b.Reset()
	got = append(got, b.Next())
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
}

func ExamplePolicy_Delay() {
	p := backoff.Policy{Min: 500 * time.Millisecond, Max: 30 * time.Second}
	for n := 1; n <= 8; n++ {
		d := p.Delay(n)
		fmt.Println(n, p.Step(n), d >= p.Step(n)/2 && d <= p.Step(n))
	}
	// Output:
	// 1 500ms true
	// 2 1s true
	// 3 2s true
	// 4 4s true
	// 5 8s true
	// 6 16s true
	// 7 30s true
	// 8 30s true
}
