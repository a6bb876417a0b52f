// Command hostsim runs the bank host simulator (package hostsim).
//
//	hostsim --config configs/hostsim.json [--listen 127.0.0.1:6100] [--bind-listen 127.0.0.1:6101]
//	hostsim totals --db FILE --day YYYY-MM-DD [--terminal ID]
package main

import (
	_ "time/tzdata" // dayZone on machines without a zoneinfo database (Windows)

	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "totals" {
		os.Exit(totals(os.Args[2:]))
	}
	os.Exit(serve(os.Args[1:]))
}

func serve(args []string) int {
	fs := flag.NewFlagSet("hostsim", flag.ContinueOnError)
	cfgPath := fs.String("config", "configs/hostsim.json", "configuration file (JSON)")
	listen := fs.String("listen", "127.0.0.1:6100", "address to listen on")
	bindListen := fs.String("bind-listen", "127.0.0.1:6101", "loopback address of the phone binding endpoint and the simulated SMS inbox (docs/binding.md); empty: none")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := hostsim.LoadConfig(*cfgPath)
	if err != nil {
		log.Error("configuration", "err", err)
		return 1
	}
	cfg.Logger = log
	s, err := hostsim.NewUnstartedServer(cfg)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	if err := s.Start(*listen); err != nil {
		s.Close()
		log.Error("start", "err", err)
		return 1
	}
	if *bindListen != "" {
		if err := s.StartBind(*bindListen); err != nil {
			s.Close()
			log.Error("start", "err", err)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info("shutting down")
	if err := s.Close(); err != nil {
		log.Error("close", "err", err)
		return 1
	}
	return 0
}

func totals(args []string) int {
	fs := flag.NewFlagSet("hostsim totals", flag.ContinueOnError)
	db := fs.String("db", "", "host database file (the simulator must not be running on it)")
	day := fs.String("day", "", "day, YYYY-MM-DD (default: today in --zone)")
	zone := fs.String("zone", "UTC", "IANA time zone of the default day (the host's dayZone)")
	term := fs.String("terminal", "", "one terminal ID (default: all)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *db == "" {
		fmt.Fprintln(os.Stderr, "hostsim totals: --db is required")
		return 2
	}
	if *day == "" {
		loc, err := time.LoadLocation(*zone)
		if err != nil {
			fmt.Fprintf(os.Stderr, "hostsim totals: --zone %q: %v\n", *zone, err)
			return 2
		}
		*day = time.Now().In(loc).Format("2006-01-02")
	}
	if _, err := time.Parse("2006-01-02", *day); err != nil {
		fmt.Fprintf(os.Stderr, "hostsim totals: --day %q is not YYYY-MM-DD\n", *day)
		return 2
	}
	all, err := hostsim.ReadAllTotals(*db, *day)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostsim totals:", err)
		return 1
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		if *term == "" || id == *term {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	fmt.Printf("%-10s %-8s %6s %14s %14s %14s\n", "DAY", "TERMINAL", "COUNT", "APPROVED", "REVERSED", "NET")
	for _, id := range ids {
		t := all[id]
		fmt.Printf("%-10s %-8s %6d %14d %14d %14d\n", *day, id, t.Count, t.Approved, t.Reversed, t.Net)
	}
	return 0
}
