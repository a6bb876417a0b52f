// Command proxysim runs the proxy server simulator (package
// proxyclient/proxysim): ATMs connect to one address, phones to another.
//
//	proxysim [--config configs/proxysim.json] [--atm ADDR] [--phone ADDR]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) > 0 && args[0] == "status" {
		return status(args[1:])
	}
	fs := flag.NewFlagSet("proxysim", flag.ContinueOnError)
	cfgPath := fs.String("config", "configs/proxysim.json", "configuration file (JSON)")
	atmAddr := fs.String("atm", "", "address for ATMs (overrides atmListen)")
	phoneAddr := fs.String("phone", "", "address for phones (overrides phoneListen)")
	verbose := fs.Bool("v", false, "debug logging (messages are masked)")
	statusAddr := fs.String("status", "127.0.0.1:6202", "loopback address of the terminal status endpoint (GET /terminals); empty: none")
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
	if *statusAddr != "" {
		ln, err := net.Listen("tcp", *statusAddr)
		if err != nil {
			log.Error("status endpoint", "err", err)
			return 1
		}
		srv := &http.Server{Handler: s.StatusHandler(), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("terminal status endpoint", "addr", ln.Addr().String())
	}
	<-ctx.Done()
	log.Info("shutting down")
	s.Close()
	return 0
}

// status: proxysim status [--addr ADDR] [TERMINAL]: prints what the
// running proxy knows of every terminal (or one): signed on, in service,
// alarms.
func status(args []string) int {
	fs := flag.NewFlagSet("proxysim status", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:6202", "the proxy's status endpoint")
	if err := fs.Parse(args); err != nil || fs.NArg() > 1 {
		fmt.Fprintln(os.Stderr, "usage: proxysim status [--addr ADDR] [TERMINAL]")
		return 2
	}
	path := "/terminals"
	if fs.NArg() == 1 {
		path += "/" + url.PathEscape(fs.Arg(0))
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + *addr + path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxysim status:", err)
		return 1
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "proxysim status:", resp.Status, err)
		return 1
	}
	return 0
}
