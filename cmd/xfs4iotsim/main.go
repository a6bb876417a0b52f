// Command xfs4iotsim runs the XFS4IoT cash dispenser simulator (package
// atm/dispenser/xfs4iot/xfs4iotsim): a service publisher on
// ws://LISTEN/xfs4iot/v1.0 and the service ws://LISTEN/xfs4iot/v1.0/CashDispenser1.
// The wire contract is docs/xfs4iot.md. It logs JSON lines to stderr and
// runs until interrupted.
//
//	xfs4iotsim -token-key-file key.hex -state-file dispenser.json \
//	    -units unit1:CNY:10000:2000,unit2:CNY:5000:2000 -faults nottaken
package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/dispenser/xfs4iot/xfs4iotsim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "xfs4iotsim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("xfs4iotsim", flag.ContinueOnError)
	listen := fs.String("listen", xfs4iotsim.DefaultAddr, "listen address (host:port)")
	units := fs.String("units", "unit1:CNY:10000:2000,unit2:CNY:5000:2000",
		"cassettes loaded at first start, comma-separated ID:CURRENCY:VALUE_IN_MINOR_UNITS:COUNT (ignored when the state file exists)")
	keyFile := fs.String("token-key-file", "", "file holding the end-to-end token key in hex (required)")
	stateFile := fs.String("state-file", "xfs4iotsim-state.json", "the device's persistent memory (JSON)")
	faults := fs.String("faults", "", "faults: comma-separated offline, jam=N, short=N, countunknown, nottaken, shutter")
	exponent := fs.Int("exponent", 2, "currency exponent (minor-unit digits)")
	maxNotes := fs.Int("max-notes", 40, "most notes per dispense")
	low := fs.Int("low", 10, "low threshold (notes)")
	takeDelay := fs.Duration("take-delay", 3*time.Second, "how long the simulated customer takes to take presented notes")
	drop := fs.String("drop", "", "link fault: drop the connection of the first command of this name before its completion")
	service := fs.String("service", "CashDispenser1", "service name in the service URI")
	queue := fs.Int("queue", 8, "most commands queued or running")
	debug := fs.Bool("debug", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if *keyFile == "" {
		return errors.New("-token-key-file is required")
	}
	raw, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) < 16 {
		return errors.New("token key file must hold at least 16 bytes as hex") // never echo the content
	}
	us, err := parseUnits(*units)
	if err != nil {
		return err
	}
	f, err := parseFaults(*faults)
	if err != nil {
		return err
	}
	srv, err := xfs4iotsim.Start(xfs4iotsim.Config{
		Addr: *listen, ServiceName: *service, Units: us, MaxNotes: *maxNotes, LowThreshold: *low,
		TokenKey: key, Exponent: *exponent, TakeDelay: *takeDelay, StateFile: *stateFile, Faults: f,
		DropLinkOn: *drop, QueueLimit: *queue, Logger: log,
	})
	if err != nil {
		return err
	}
	log.Info("xfs4iotsim running", "publisher", srv.PublisherURL(), "service", srv.ServiceURL(), "faults", fmt.Sprintf("%+v", f))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	s := <-sig
	log.Info("xfs4iotsim stopping", "signal", s.String())
	return srv.Close()
}

func parseUnits(s string) ([]dispenser.CashUnit, error) {
	var out []dispenser.CashUnit
	for _, u := range strings.Split(s, ",") {
		p := strings.Split(strings.TrimSpace(u), ":")
		if len(p) != 4 {
			return nil, fmt.Errorf("unit %q: want ID:CURRENCY:VALUE:COUNT", u)
		}
		v, err1 := strconv.ParseInt(p[2], 10, 64)
		n, err2 := strconv.Atoi(p[3])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("unit %q: bad value or count", u)
		}
		out = append(out, dispenser.CashUnit{ID: p[0], Currency: p[1], Denomination: v, Count: n})
	}
	return out, nil
}

func parseFaults(s string) (dispensersim.Faults, error) {
	var f dispensersim.Faults
	if strings.TrimSpace(s) == "" {
		return f, nil
	}
	for _, item := range strings.Split(s, ",") {
		k, v, hasV := strings.Cut(strings.TrimSpace(item), "=")
		n := 0
		if hasV {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 0 {
				return f, fmt.Errorf("fault %q: bad number", item)
			}
		}
		switch k {
		case "offline":
			f.Offline = true
		case "jam":
			f.Jam, f.JamAfter = true, n
		case "short":
			if n == 0 {
				n = 1
			}
			f.ShortDispense = n
		case "countunknown":
			f.CountUnknown = true
		case "nottaken":
			f.NotesNotTaken = true
		case "shutter":
			f.ShutterFailure = true
		default:
			return f, fmt.Errorf("unknown fault %q", k)
		}
	}
	return f, nil
}
