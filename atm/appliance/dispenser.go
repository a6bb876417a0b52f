package appliance

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
)

// newDispenser starts the driver cfg.Dispenser.Driver names.
func (a *Appliance) newDispenser(cfg *Config, log *slog.Logger, crash func(string)) (atm.Dispenser, error) {
	switch cfg.Dispenser.Driver {
	case "sim":
		sim := cfg.Dispenser.Sim
		tokenKey, _ := hex.DecodeString(sim.TokenKey)
		f := sim.Faults
		s, err := dispensersim.New(dispensersim.Config{
			Units: sim.Units, Exponent: cfg.Exponent, MaxNotes: sim.MaxNotes, LowThreshold: sim.LowThreshold, TokenKey: tokenKey,
			Latency: sim.Latency.D(), TakeDelay: sim.TakeDelay.D(),
			StateFile: filepath.Join(cfg.DataDir, "dispenser-sim.json"),
			Faults: dispensersim.Faults{Offline: f.Offline, Jam: f.JamAfter > 0, JamAfter: f.JamAfter, ShortDispense: f.ShortDispense,
				CountUnknown: f.CountUnknown, NotesNotTaken: f.NotesNotTaken, ShutterFailure: f.ShutterFailure},
			AfterSave: deviceCrashHook(crash),
			Logger:    log,
		})
		if err != nil {
			return nil, err
		}
		a.DispenserSim = s
		return s, nil
	}
	return nil, fmt.Errorf("dispenser: driver %q is not available in this build", cfg.Dispenser.Driver)
}
