//go:build unix

// Command lcdmsim runs a simulated Puloon LCDM-2000 cash dispenser on a
// pseudo-terminal, for the lcdm driver (atm/dispenser/lcdm) to open as its
// serial port. It prints the tty path on standard output and runs until
// interrupted.
//
//	lcdmsim -units CST1:10000:CNY:200,CST2:5000:CNY:200 -state /var/lib/atm/lcdm-device.json -link /tmp/lcdm.tty
//
// Fault flags: -offline, -no-answer, -pickup-after N, -jam-after N,
// -exit-jam-after N, -short N, -rejects N, -bad-bcc N, -nak N,
// -error 0x41 -error-after N (negative "after" values: off).
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm/lcdmsim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "lcdmsim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("lcdmsim", flag.ContinueOnError)
	units := fs.String("units", "CST1:10000:CNY:200,CST2:5000:CNY:200", "cassettes, upper first: ID:denomination:currency:count[,...] (only ID and count matter to the device)")
	stateFile := fs.String("state", "", "device memory (JSON); empty: memory only")
	link := fs.String("link", "", "also make this path a symbolic link to the tty")
	nearEnd := fs.Int("near-end", 0, "a cassette with at most this many notes reports near end (0: never)")
	verbose := fs.Bool("v", false, "log every dispense")
	var f lcdmsim.Faults
	fs.BoolVar(&f.Offline, "offline", false, "answer nothing")
	fs.BoolVar(&f.NoAnswer, "no-answer", false, "ACK dispense commands, carry them out, never answer")
	pickup := fs.Int("pickup-after", -1, "pickup error (0x32) after N notes")
	jam := fs.Int("jam-after", -1, "jam after N notes, the next note stuck inside (0x33)")
	exitJam := fs.Int("exit-jam-after", -1, "jam at the exit after N notes, count unknown (0x35)")
	fs.IntVar(&f.ShortDispense, "short", 0, "cassette runs out N notes before the request is complete")
	fs.IntVar(&f.Rejects, "rejects", 0, "divert the first N notes of each dispense command to the reject tray")
	fs.IntVar(&f.BadBCC, "bad-bcc", 0, "corrupt the BCC of the next N answers")
	fs.IntVar(&f.NakFrames, "nak", 0, "NAK the next N host frames")
	code := fs.String("error", "", "stop dispenses with this error code (e.g. 0x41)")
	fs.IntVar(&f.ErrorAfter, "error-after", 0, "notes delivered before -error stops the dispense")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f.PickupError, f.PickupAfter = *pickup >= 0, max(*pickup, 0)
	f.Jam, f.JamAfter = *jam >= 0, max(*jam, 0)
	f.JamAtExit, f.JamAtExitAfter = *exitJam >= 0, max(*exitJam, 0)
	if *code != "" {
		c, err := strconv.ParseUint(*code, 0, 8)
		if err != nil {
			return fmt.Errorf("-error %q: %w", *code, err)
		}
		f.Error = byte(c)
	}
	us, err := parseUnits(*units)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	sim, err := lcdmsim.Start(lcdmsim.Config{Units: us, StateFile: *stateFile, NearEnd: *nearEnd, Faults: f, Logger: log})
	if err != nil {
		return err
	}
	defer sim.Close()
	if *link != "" {
		_ = os.Remove(*link)
		if err := os.Symlink(sim.Path(), *link); err != nil {
			return err
		}
		defer os.Remove(*link)
	}
	fmt.Println(sim.Path())
	log.Warn("lcdmsim running", "tty", sim.Path(), "faults", f.String())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return nil
}

// parseUnits parses ID:denomination:currency:count[,...].
func parseUnits(s string) ([]dispenser.CashUnit, error) {
	var out []dispenser.CashUnit
	for _, part := range strings.Split(s, ",") {
		f := strings.Split(part, ":")
		if len(f) != 4 {
			return nil, fmt.Errorf("unit %q: want ID:denomination:currency:count", part)
		}
		den, err1 := strconv.ParseInt(f[1], 10, 64)
		n, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || f[0] == "" {
			return nil, fmt.Errorf("unit %q: bad number", part)
		}
		out = append(out, dispenser.CashUnit{ID: f[0], Denomination: den, Currency: f[2], Count: n})
	}
	if len(out) == 0 || len(out) > 2 {
		return nil, fmt.Errorf("%d units: the LCDM-2000 has one or two cassettes", len(out))
	}
	return out, nil
}
