// Command phonesim plays the customer's phone app: it reads the ATM's QR
// code and sends the withdrawal request to the proxy, and it binds the
// phone to a customer with a verification code (docs/binding.md).
//
//	phonesim --proxy ADDR (--qr-png FILE [--scan-for 5s] | --qr-text TEXT | --nfc [--vpcd ADDR] [--aid HEX] [--tap-for 30s]) --customer ID --pin PIN [--device ID] [--config FILE]
//	phonesim bind --customer ID --pin PIN [--device ID] [--bind URL] [--code-stdin] [--config FILE]
//	phonesim new-device
//
// With --nfc the phone is held to the ATM's contactless reader instead of
// scanning: it attaches to the vsmartcard vpcd virtual reader as a card
// and answers the SELECT and the session APDU as the bank's app does
// (docs/nfc.md), then completes the withdrawal online as after a scan.
//
// A withdrawal prints one JSON line (response_code, meaning, approved,
// amount, dispensed, auth_code, terminal, ...) and exits 0 only when it
// was approved and paid in full, 1 for any other outcome or failure, 2 for
// bad usage. bind prints one JSON line (the bank's answer: result,
// meaning, ...) and exits 0 only when the phone is bound; it reads the
// code from the host simulator's SMS inbox, or with --code-stdin from
// standard input (a person typing what the SMS says). new-device prints a
// new random device ID, as an app draws one at its first start. The PIN
// and the code are never printed.
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/host/bindapi"
	"github.com/cardless-atm/cardless/atm/nfc"
	"github.com/cardless-atm/cardless/atm/qr"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "bind":
			return bind(args[1:], stdin, stdout, stderr)
		case "new-device":
			if len(args) > 1 {
				fmt.Fprintln(stderr, "phonesim new-device: unexpected arguments")
				return 2
			}
			id, err := wire.NewDeviceID()
			if err != nil {
				fmt.Fprintln(stderr, "phonesim:", err)
				return 1
			}
			fmt.Fprintln(stdout, id)
			return 0
		}
	}
	return withdraw(args, stdout, stderr)
}

func withdraw(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("phonesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	proxy := fs.String("proxy", "", "proxy phone address host:port (default: from the config)")
	png := fs.String("qr-png", "", "PNG image of the ATM's QR code")
	scanFor := fs.Duration("scan-for", 5*time.Second, "with --qr-png: keep looking at the image this long for a withdrawal QR code (the screen may not show it yet)")
	text := fs.String("qr-text", "", "QR payload text")
	tap := fs.Bool("nfc", false, "tap: get the session over NFC from the ATM's reader (a vpcd virtual reader) instead of scanning")
	vpcd := fs.String("vpcd", fmt.Sprintf("127.0.0.1:%d", nfc.DefaultVPCDPort), "with --nfc: the vpcd virtual reader's card socket")
	aidHex := fs.String("aid", hex.EncodeToString(nfc.DefaultAID), "with --nfc: the bank app's AID (hex)")
	tapFor := fs.Duration("tap-for", 30*time.Second, "with --nfc: hold the phone to the reader at most this long")
	customer := fs.String("customer", "", "customer ID")
	pin := fs.String("pin", "", "PIN (4-12 digits)")
	device := fs.String("device", "", "the phone's device ID, 32 upper-case hex digits (default: deviceId of the config)")
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
	case btoi(*png != "")+btoi(*text != "")+btoi(*tap) != 1:
		return usage("give exactly one of --qr-png, --qr-text and --nfc")
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
	if *device != "" {
		if !wire.ValidDeviceID(*device) {
			return usage(fmt.Sprintf("--device must be %d upper-case hex digits", wire.DeviceIDLength))
		}
		cfg.DeviceID = *device
	}
	aid, err := hex.DecodeString(*aidHex)
	if err != nil || len(aid) < 5 || len(aid) > 16 {
		return usage("--aid must be 5-16 bytes in hex")
	}
	payload := *text
	if *tap {
		var err error
		if payload, err = phonesim.Tap(context.Background(), *vpcd, aid, *tapFor); err != nil {
			return fail(stdout, phonesim.Outcome{}, err)
		}
	}
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

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
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

// bind is `phonesim bind`: the phone binding flow of docs/binding.md.
func bind(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("phonesim bind", flag.ContinueOnError)
	fs.SetOutput(stderr)
	customer := fs.String("customer", "", "customer ID")
	pin := fs.String("pin", "", "PIN (4-12 digits)")
	device := fs.String("device", "", "the phone's device ID, 32 upper-case hex digits (default: deviceId of the config)")
	bindURL := fs.String("bind", "", "the bank's bind endpoint (default: bindUrl of the config)")
	codeStdin := fs.Bool("code-stdin", false, "read the verification code from standard input (default: from the host simulator's SMS inbox)")
	cfgPath := fs.String("config", "configs/phonesim.json", "configuration file (JSON)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "phonesim bind:", msg)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected arguments")
	case *customer == "":
		return usage("--customer is required")
	case *pin == "":
		return usage("--pin is required")
	}
	cfg, err := phonesim.LoadConfig(*cfgPath)
	if err != nil {
		return usage(err.Error())
	}
	if *device != "" {
		cfg.DeviceID = *device
	}
	if *bindURL != "" {
		cfg.BindURL = *bindURL
	}
	switch {
	case !wire.ValidDeviceID(cfg.DeviceID):
		return usage(fmt.Sprintf("--device (or deviceId in the config) must be %d upper-case hex digits", wire.DeviceIDLength))
	case cfg.BindURL == "":
		return usage("--bind is required (no bindUrl in the config)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	code := func(ctx context.Context, a bindapi.Answer) (string, error) {
		if !*codeStdin {
			return phonesim.ReadSMSCode(ctx, cfg, *customer)
		}
		fmt.Fprintf(stderr, "Enter the %d-digit code sent to %s: ", bindapi.CodeLength, a.SentTo)
		line, err := bufio.NewReader(io.LimitReader(stdin, 64)).ReadString('\n')
		if err != nil && line == "" {
			return "", fmt.Errorf("phonesim: no code on standard input: %w", err)
		}
		return strings.TrimSpace(line), nil
	}
	a, err := phonesim.Bind(ctx, cfg, *customer, *pin, code)
	var b []byte
	switch {
	case err == nil:
		b, _ = json.Marshal(a)
	case a.Result == "": // no answer from the bank
		b, _ = json.Marshal(struct {
			Err string `json:"phone_error"`
		}{err.Error()})
	default: // the phone's own failure after an answer
		b, _ = json.Marshal(struct {
			bindapi.Answer
			Err string `json:"phone_error"`
		}{a, err.Error()})
	}
	fmt.Fprintln(stdout, string(b))
	if err == nil && (a.Result == bindapi.Bound || a.Result == bindapi.AlreadyBound) {
		return 0
	}
	return 1
}
