// Command phonesim plays the customer's phone app: it reads the ATM's QR
// code and sends the withdrawal request to the proxy.
//
//	phonesim --proxy ADDR (--qr-png FILE [--scan-for 5s] | --qr-text TEXT) --customer ID --pin PIN [--config FILE]
//
// It prints one JSON line (response_code, approved, amount, dispensed,
// auth_code, terminal, ...) and exits 0 only when the withdrawal was
// approved and paid in full, 1 for any other outcome or failure, 2 for bad
// usage. The PIN is never printed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/qr"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/cardless-atm/cardless/proxyclient/phonesim"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("phonesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	proxy := fs.String("proxy", "", "proxy phone address host:port (default: from the config)")
	png := fs.String("qr-png", "", "PNG image of the ATM's QR code")
	scanFor := fs.Duration("scan-for", 5*time.Second, "with --qr-png: keep looking at the image this long for a withdrawal QR code (the screen may not show it yet)")
	text := fs.String("qr-text", "", "QR payload text")
	customer := fs.String("customer", "", "customer ID")
	pin := fs.String("pin", "", "PIN (4-12 digits)")
	cfgPath := fs.String("config", "configs/phonesim.json", "configuration file (JSON)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "phonesim:", msg)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected arguments")
	case (*png == "") == (*text == ""):
		return usage("give exactly one of --qr-png and --qr-text")
	case *customer == "":
		return usage("--customer is required")
	case *pin == "":
		return usage("--pin is required")
	}
	cfg, err := phonesim.LoadConfig(*cfgPath)
	if err != nil {
		return usage(err.Error())
	}
	if *proxy != "" {
		cfg.ProxyAddr = *proxy
	}
	if cfg.ProxyAddr == "" {
		return usage("--proxy is required (no proxy in the config)")
	}
	payload := *text
	if *png != "" {
		var err error
		if payload, err = scan(*png, *scanFor, clock.Real{}); err != nil {
			return fail(stdout, phonesim.Outcome{}, err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	out, err := phonesim.Withdraw(ctx, cfg, payload, *customer, *pin)
	if err != nil {
		return fail(stdout, out, err)
	}
	b, _ := json.Marshal(out)
	fmt.Fprintln(stdout, string(b))
	if out.PaidInFull() {
		return 0
	}
	return 1
}

// fail prints the JSON line of a request that got no answer.
func fail(w io.Writer, out phonesim.Outcome, err error) int {
	b, _ := json.Marshal(struct {
		phonesim.Outcome
		Error string `json:"error"`
	}{out, err.Error()})
	fmt.Fprintln(w, string(b))
	return 1
}

// scan reads the image as a phone's camera keeps looking at the screen:
// until it shows a withdrawal QR code (one that qr.Parse takes), at most
// for d, every 200 ms.
func scan(path string, d time.Duration, clk clock.Clock) (string, error) {
	deadline := clk.Now().Add(d)
	for {
		payload, err := scanOnce(path)
		if err == nil {
			return payload, nil
		}
		if !clk.Now().Before(deadline) {
			return "", err
		}
		clock.Sleep(clk, 200*time.Millisecond, nil)
	}
}

func scanOnce(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	payload, err := phonesim.DecodePNG(f)
	if err != nil {
		return "", err
	}
	if _, err := qr.Parse(payload); err != nil {
		return "", fmt.Errorf("%w: %w", phonesim.ErrQR, err)
	}
	return payload, nil
}
