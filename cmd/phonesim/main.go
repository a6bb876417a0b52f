// Command phonesim plays the customer's phone app: it reads the ATM's QR
// code and sends the withdrawal request to the proxy.
//
//	phonesim --proxy ADDR (--qr-png FILE | --qr-text TEXT) --customer ID --pin PIN [--config FILE]
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
	"io"
	"os"
	"os/signal"

	"github.com/cardless-atm/cardless/proxyclient/phonesim"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("phonesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	proxy := fs.String("proxy", "", "proxy phone address host:port (default: from the config)")
	png := fs.String("qr-png", "", "PNG image of the ATM's QR code")
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
		f, err := os.Open(*png)
		if err != nil {
			return usage(err.Error())
		}
		payload, err = phonesim.DecodePNG(f)
		f.Close()
		if err != nil {
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
