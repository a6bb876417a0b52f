// Command atm is the ATM-resident cardless-withdrawal appliance.
//
//	atm --config configs/atm.json [--kiosk | --window | --headless]
//
// See the README for the configuration and the three ways it runs.
package main

import (
	_ "time/tzdata" // dayZone on machines without a zoneinfo database (Windows)

	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cardless-atm/cardless/atm/appliance"
)

func main() {
	cfgPath := flag.String("config", "configs/atm.json", "configuration file")
	kiosk := flag.Bool("kiosk", false, "full screen kiosk mode (overrides screen.mode)")
	window := flag.Bool("window", false, "windowed mode for a laptop (overrides screen.mode)")
	headless := flag.Bool("headless", false, "no window: render the screen to screen.png (overrides screen.mode)")
	newStore := flag.Bool("new-store", false, "create the store (dataDir/atm.db) if it does not exist: a new terminal's first start only")
	flag.Parse()

	cfg, err := appliance.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cfg.NewStore = *newStore
	switch {
	case *kiosk:
		cfg.Screen.Mode = "kiosk"
	case *window:
		cfg.Screen.Mode = "window"
	case *headless:
		cfg.Screen.Mode = "headless"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(appliance.Main(ctx, cfg))
}
