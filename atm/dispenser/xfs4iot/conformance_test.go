package xfs4iot_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/backoff"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensertest"
	"github.com/cardless-atm/cardless/atm/dispenser/xfs4iot"
	"github.com/cardless-atm/cardless/atm/dispenser/xfs4iot/xfs4iotsim"
)

// startSim starts the device simulator for a suite setup: its storage
// units are unit1, unit2, ... and it reports them with the IDs CST1,
// CST2, ... the suite uses.
func startSim(t *testing.T, s dispensertest.Setup) (*xfs4iotsim.Server, xfs4iotsim.Config) {
	t.Helper()
	units := make([]dispenser.CashUnit, len(s.Units))
	for i, u := range s.Units {
		if u.ID != fmt.Sprintf("CST%d", i+1) {
			t.Fatalf("the simulator names unit %d CST%d, not %s", i+1, i+1, u.ID)
		}
		u.ID = fmt.Sprintf("unit%d", i+1)
		units[i] = u
	}
	cfg := xfs4iotsim.Config{Addr: "127.0.0.1:0", Units: units, MaxNotes: s.MaxNotes, LowThreshold: s.LowThreshold,
		TokenKey: s.TokenKey, Exponent: s.Exponent, TakeDelay: s.TakeDelay, StateFile: filepath.Join(s.Dir, "xfs4iotsim.json"),
		Clock: s.Clock}
	srv, err := xfs4iotsim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv, cfg
}

func harness(t *testing.T, s dispensertest.Setup) *dispensertest.Device {
	srv, _ := startSim(t, s)
	t.Cleanup(func() { srv.Close() })
	drv, err := xfs4iot.New(xfs4iot.Config{Publisher: srv.PublisherURL(), Exponent: s.Exponent, ResponseKey: s.TokenKey,
		Clock: s.Clock, Backoff: backoff.Policy{Min: time.Second, Max: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	return &dispensertest.Device{
		Dispenser: drv,
		Caps:      dispensertest.Caps{Present: true, Take: true, Retract: true},
		SetFaults: func(f dispensertest.Faults) error {
			if f.LinkLost {
				srv.DropLink("CashDispenser.Dispense")
			}
			srv.SetFaults(dispensersim.Faults{Offline: f.Offline, Jam: f.Jam, JamAfter: f.JamAfter, ShortDispense: f.ShortDispense,
				CountUnknown: f.CountUnknown, NotesNotTaken: f.NotesNotTaken, ShutterFailure: f.ShutterFailure})
			return nil
		},
		Remaining: func() map[string]int {
			m := map[string]int{}
			for i, u := range srv.Counters() {
				m[fmt.Sprintf("CST%d", i+1)] = u.Count
			}
			return m
		},
		Restart: func(t *testing.T) dispensertest.Dispenser {
			ns, err := srv.Restart()
			if err != nil {
				t.Fatal(err)
			}
			srv = ns
			t.Cleanup(func() { ns.Close() })
			return drv // it reconnects by itself
		},
	}
}

func TestConformance(t *testing.T) { dispensertest.Run(t, harness) }
