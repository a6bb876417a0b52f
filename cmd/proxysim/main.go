// Command proxysim runs the proxy server simulator (package
// proxyclient/proxysim): ATMs connect to one address, phones to another.
//
//	proxysim [--config configs/proxysim.json] [--atm ADDR] [--phone ADDR]
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("proxysim", flag.ContinueOnError)
	cfgPath := fs.String("config", "configs/proxysim.json", "configuration file (JSON)")
	atmAddr := fs.String("atm", "", "address for ATMs (overrides atmListen)")
	phoneAddr := fs.String("phone", "", "address for phones (overrides phoneListen)")
	verbose := fs.Bool("v", false, "debug logging (messages are masked)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	lvl := slog.LevelInfo
	if *verbose {
		lvl = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	cfg, atmListen, phoneListen, err := proxysim.LoadConfig(*cfgPath)
	if err != nil {
		log.Error("configuration", "err", err)
		return 2
	}
	if *atmAddr != "" {
		atmListen = *atmAddr
	}
	if *phoneAddr != "" {
		phoneListen = *phoneAddr
	}
	cfg.Logger = log
	s, err := proxysim.Start(cfg, atmListen, phoneListen)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info("shutting down")
	s.Close()
	return 0
}
