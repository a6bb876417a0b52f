package appliance

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm"
	"github.com/cardless-atm/cardless/atm/dispenser/xfs4iot"
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
	case "xfs4iot":
		x := cfg.Dispenser.XFS4IoT
		var key []byte
		if x.ResponseKeyFile != "" {
			var err error
			if key, err = readHexKey(x.ResponseKeyFile); err != nil {
				return nil, fmt.Errorf("dispenser.xfs4iot.responseKeyFile: %w", err)
			}
		}
		log.Info("dispenser driver xfs4iot", "publisher", x.Publisher, "ca_file", x.CAFile, "signed_present_status", key != nil)
		return xfs4iot.New(xfs4iot.Config{Publisher: x.Publisher, CAFile: x.CAFile, CommandTimeout: x.CommandTimeout.D(),
			Exponent: cfg.Exponent, ResponseKey: key, Clock: a.Clock, Logger: log})
	case "lcdm":
		l := cfg.Dispenser.LCDM
		key, err := readHexKey(l.TokenKeyFile)
		if err != nil {
			return nil, fmt.Errorf("dispenser.lcdm.tokenKeyFile: %w", err)
		}
		// A serial dispenser cannot check the host's token: the driver
		// does, with the key on this PC. Say so at every start.
		log.Warn("dispenser driver lcdm: the end-to-end token is checked by this PC, not inside the device (prefer XFS4IoT)",
			"port", l.Port, "model", l.Model)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return lcdm.Open(ctx, lcdm.Config{Port: l.Port, Model: l.Model, Units: l.Units, MaxNotes: l.MaxNotes, LowThreshold: l.LowThreshold,
			TokenKey: key, Exponent: cfg.Exponent, StateFile: filepath.Join(cfg.DataDir, "dispenser-lcdm.json"), Clock: a.Clock, Logger: log})
	}
	return nil, fmt.Errorf("dispenser: driver %q is not available in this build", cfg.Dispenser.Driver)
}

// readHexKey reads a key file holding hex digits (whitespace around them
// ignored). The key never appears in an error.
func readHexKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) < 16 {
		return nil, fmt.Errorf("%s must hold at least 32 hex digits", path)
	}
	return k, nil
}
