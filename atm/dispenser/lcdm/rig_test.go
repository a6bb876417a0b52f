//go:build unix

package lcdm_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensertest"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm/lcdmsim"
)

var (
	t0       = time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	tokenKey = []byte("0123456789abcdef0123456789abcdef")
)

// silenceStep is how far the fake clock moves when the simulator stays
// silent: beyond every driver timeout.
const silenceStep = 10 * time.Minute

// rig is a simulator on a pty and the driver on its tty.
type rig struct {
	t     *testing.T
	clk   *clock.Fake
	sim   *lcdmsim.Sim
	drv   *lcdm.Driver
	cfg   lcdm.Config
	units []dispenser.CashUnit
	// onSilent, when set, runs each time the simulator stays silent,
	// before the clock moves.
	onSilent atomic.Pointer[func()]
}

func defaultUnits() []dispenser.CashUnit {
	return []dispenser.CashUnit{
		{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 200},
		{ID: "CST2", Denomination: 5000, Currency: "CNY", Count: 200},
	}
}

// options of a rig beyond the units.
type options struct {
	faults   lcdmsim.Faults
	clk      *clock.Fake
	dir      string
	maxNotes int
	low      int
	nearEnd  int
	key      []byte
	exponent int
	logger   *slog.Logger
}

func newRig(t *testing.T, units []dispenser.CashUnit, f lcdmsim.Faults) *rig {
	t.Helper()
	return newRigOpts(t, units, options{faults: f})
}

func newRigOpts(t *testing.T, units []dispenser.CashUnit, o options) *rig {
	t.Helper()
	if o.clk == nil {
		o.clk = clock.NewFake(t0)
	}
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	if o.key == nil {
		o.key, o.exponent = tokenKey, 2
	}
	r := &rig{t: t, clk: o.clk, units: units}
	sim, err := lcdmsim.Start(lcdmsim.Config{
		Units: units, StateFile: filepath.Join(o.dir, "device.json"), Faults: o.faults, NearEnd: o.nearEnd,
		OnSilent: func() {
			if f := r.onSilent.Load(); f != nil {
				(*f)()
			}
			o.clk.Advance(silenceStep)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.sim = sim
	r.cfg = lcdm.Config{
		Port: sim.Path(), Units: units, TokenKey: o.key, Exponent: o.exponent, MaxNotes: o.maxNotes, LowThreshold: o.low,
		StateFile: filepath.Join(o.dir, "driver.json"), Clock: o.clk, Logger: o.logger,
	}
	r.drv = r.open()
	t.Cleanup(func() {
		r.drv.Close()
		sim.Close()
	})
	return r
}

func (r *rig) open() *lcdm.Driver {
	r.t.Helper()
	r.cfg.Port = r.sim.Path()
	d, err := lcdm.Open(context.Background(), r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// restartDriver closes the driver and opens a new one on the same state
// file and device.
func (r *rig) restartDriver() {
	r.t.Helper()
	r.drv.Close()
	r.drv = r.open()
}

// token gets a nonce from the driver and signs a token for amount.
func (r *rig) token(amount int64) string {
	r.t.Helper()
	n, err := r.drv.CommandNonce(context.Background())
	if err != nil {
		r.t.Fatalf("CommandNonce: %v", err)
	}
	tok, err := dispenser.BuildToken(n, amount, "CNY", 2, dispenser.HMACSHA256(tokenKey))
	if err != nil {
		r.t.Fatal(err)
	}
	return tok
}

func (r *rig) amount(m dispenser.Mix) int64 {
	a, err := m.Amount(r.units)
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

// dispense dispenses mix with a valid token.
func (r *rig) dispense(m dispenser.Mix) (dispenser.Result, error) {
	r.t.Helper()
	return r.drv.Dispense(context.Background(), m, r.token(r.amount(m)))
}

// Harness starts lcdmsim on a pty and the driver on it for the
// conformance suite.
func Harness(t *testing.T, s dispensertest.Setup) *dispensertest.Device {
	clk := s.Clock
	if clk == nil {
		clk = clock.NewFake(t0)
	}
	r := newRigOpts(t, s.Units, options{clk: clk, dir: s.Dir, maxNotes: s.MaxNotes, low: s.LowThreshold, key: s.TokenKey, exponent: s.Exponent})
	return &dispensertest.Device{
		Dispenser: r.drv,
		Caps:      dispensertest.Caps{Present: false, Take: false, Retract: false},
		SetFaults: func(f dispensertest.Faults) error {
			if f.NotesNotTaken || f.ShutterFailure {
				return fmt.Errorf("lcdmsim: no shutter and no take sensor: %w", errors.ErrUnsupported)
			}
			if f.LinkLost {
				// The answer to the next dispense is lost (the device
				// acts, then falls silent for it).
				sf := SimFaults(f)
				sf.NoAnswer = true
				r.sim.SetFaults(sf)
				return nil
			}
			r.sim.SetFaults(SimFaults(f))
			return nil
		},
		Remaining: r.sim.Remaining,
		Restart: func(t *testing.T) dispensertest.Dispenser {
			if err := r.sim.Restart(); err != nil {
				t.Fatal(err)
			}
			r.restartDriver()
			return r.drv
		},
	}
}

// SimFaults maps the suite's faults to the simulator's.
func SimFaults(f dispensertest.Faults) lcdmsim.Faults {
	var sf lcdmsim.Faults
	sf.Offline = f.Offline
	switch {
	case f.Jam:
		sf.Jam, sf.JamAfter = true, f.JamAfter
	case f.CountUnknown:
		// The last note sticks half out of the exit.
		sf.JamAtExit, sf.JamAtExitAfter = true, 1<<20
	case f.ShortDispense > 0:
		sf.ShortDispense = f.ShortDispense
	}
	return sf
}
