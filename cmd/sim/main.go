// Command sim runs the whole cardless-withdrawal system on a laptop (host,
// proxy, ATM, phone) and a complete withdrawal; `make sim` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cardless-atm/cardless/cmd/sim/internal/devsim"
)

func main() {
	o := devsim.Defaults()
	flag.StringVar(&o.Bin, "bin", o.Bin, "directory with the built programs")
	flag.StringVar(&o.Configs, "configs", o.Configs, "directory with the configuration files")
	flag.Int64Var(&o.Amount, "amount", o.Amount, "amount to withdraw, minor units")
	flag.BoolVar(&o.Window, "window", os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "", "open the ATM window")
	flag.StringVar(&o.Dispenser, "dispenser", o.Dispenser, "the dispenser: sim (inside the ATM), xfs4iot (the XFS4IoT device simulator over a WebSocket) or lcdm (the LCDM simulator on a pseudo-terminal)")
	flag.BoolVar(&o.NFC, "nfc", false, "give the ATM a contactless reader (a vpcd virtual reader through pcscd) and tap the demo phone instead of scanning")
	flag.IntVar(&o.VPCDPort, "vpcd-port", o.VPCDPort, "with --nfc, when no pcscd runs: the port the virtual reader takes the phone's card on")
	flag.BoolVar(&o.Once, "once", false, "stop after the demo withdrawal")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := devsim.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "sim:", err)
		os.Exit(1)
	}
}
