package dispensersim_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensertest"
)

// afterClock adapts the suite's clock to the simulator's.
type afterClock struct{ c clock.Clock }

func (a afterClock) After(d time.Duration) <-chan time.Time { return a.c.NewTimer(d).C() }

// harness runs the simulator in process: it is its own driver.
func harness(t *testing.T, s dispensertest.Setup) *dispensertest.Device {
	cfg := dispensersim.Config{Units: s.Units, MaxNotes: s.MaxNotes, LowThreshold: s.LowThreshold,
		TokenKey: s.TokenKey, Exponent: s.Exponent, TakeDelay: s.TakeDelay,
		StateFile: filepath.Join(s.Dir, "dispenser.json"), Clock: afterClock{s.Clock}}
	open := func() *dispensersim.Sim {
		sim, err := dispensersim.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return sim
	}
	sim := open()
	return &dispensertest.Device{
		Dispenser: sim,
		Caps:      dispensertest.Caps{Present: true, Take: true, Retract: true},
		SetFaults: func(f dispensertest.Faults) error {
			if f.LinkLost {
				return fmt.Errorf("%w: an in-process device has no link to lose", errors.ErrUnsupported)
			}
			sim.SetFaults(dispensersim.Faults{Offline: f.Offline, Jam: f.Jam, JamAfter: f.JamAfter, ShortDispense: f.ShortDispense,
				CountUnknown: f.CountUnknown, NotesNotTaken: f.NotesNotTaken, ShutterFailure: f.ShutterFailure})
			return nil
		},
		Remaining: func() map[string]int {
			m := map[string]int{}
			for _, u := range sim.Counters() {
				m[u.ID] = u.Count
			}
			return m
		},
		Restart: func(t *testing.T) dispensertest.Dispenser {
			sim = open()
			return sim
		},
	}
}

func TestConformance(t *testing.T) { dispensertest.Run(t, harness) }
