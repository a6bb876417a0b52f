// Command fleetsim load-tests a proxy with a fleet of simulated terminals
// and phones (package proxyclient/fleet):
//
//	fleetsim proxy-config --n 10000 --seed S [--base configs/proxysim.json] > fleet-proxysim.json
//	fleetsim run --atm ADDR --phone ADDR --n 10000 --seed S [--rates 10,50,100] [--duration 30s] [--proxy-pid PID]
//
// run signs every terminal on (the sign-on storm), reads the proxy's
// resident memory before and after when given its PID (memory per idle
// link), then sends withdrawals from phones at each rate and prints one
// JSON line per measurement. Terminal keys derive from the seed: for test
// fleets only.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/proxyclient/fleet"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fleetsim proxy-config|run [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "proxy-config":
		err = proxyConfig(os.Args[2:])
	case "run":
		err = run(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (proxy-config, run)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleetsim:", err)
		os.Exit(1)
	}
}

func proxyConfig(args []string) error {
	fs := flag.NewFlagSet("fleetsim proxy-config", flag.ContinueOnError)
	n := fs.Int("n", 1000, "terminals")
	seed := fs.String("seed", "fleet", "key seed")
	base := fs.String("base", "configs/proxysim.json", "proxysim configuration to start from")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*base)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return err
	}
	cfg["terminals"] = fleet.ProxyTerminals([]byte(*seed), *n)
	limit := *n + 100
	cfg["atmLimits"] = map[string]any{"maxConns": limit, "maxPerSource": limit}
	cfg["phoneLimits"] = map[string]any{"maxConns": 4096, "maxPerSource": 4096}
	cfg["_comment"] = fmt.Sprintf("proxysim for a test fleet of %d terminals (fleetsim); keys derived from a seed: NOT FOR PRODUCTION", *n)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(cfg)
}

func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return -1
}

func run(args []string) error {
	fs := flag.NewFlagSet("fleetsim run", flag.ContinueOnError)
	atm := fs.String("atm", "127.0.0.1:6200", "the proxy's ATM address")
	phone := fs.String("phone", "127.0.0.1:6201", "the proxy's phone address")
	n := fs.Int("n", 1000, "terminals")
	seed := fs.String("seed", "fleet", "key seed (as for proxy-config)")
	rates := fs.String("rates", "10,50,100", "withdrawals per second, one load step each")
	dur := fs.Duration("duration", 20*time.Second, "length of each load step")
	startRate := fs.Float64("start-rate", 1000, "terminals started per second (0: all at once)")
	pid := fs.Int("proxy-pid", 0, "the proxy's process ID, to read its memory (Linux)")
	macKey := fs.String("phone-mac-key", "f83d7615cebc7fa2cdef801c0db5b36b", "phone channel MAC key (hex)")
	dataKey := fs.String("phone-data-key", "8380df5efbf280234a9251169245cb7f", "phone channel data key (hex)")
	pinKey := fs.String("app-pin-key", "16bca158190e340498917670c4b06e40", "app PIN key (hex)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raiseFileLimit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := json.NewEncoder(os.Stdout)
	before := rss(*pid)
	f, err := fleet.Start(ctx, fleet.Options{ATMAddr: *atm, PhoneAddr: *phone, Terminals: *n, Seed: []byte(*seed),
		KeyFormat: wire.KeyFormatTR31, PhoneMACKey: *macKey, PhoneDataKey: *dataKey, AppPINKey: *pinKey, StartRate: *startRate})
	if err != nil {
		return err
	}
	defer f.Stop()
	go func() { // progress on stderr
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fmt.Fprintf(os.Stderr, "fleetsim: %d of %d signed on\n", f.SignedOn(), *n)
			}
		}
	}()
	storm, err := f.WaitSignedOn(ctx, 10*time.Minute)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // let the proxy settle before reading its memory
	after := rss(*pid)
	rec := map[string]any{"step": "sign-on storm", "terminals": *n, "start_rate": *startRate, "seconds": storm.Seconds()}
	if *pid > 0 && before > 0 && after > 0 {
		rec["proxy_rss_before"], rec["proxy_rss_after"] = before, after
		rec["bytes_per_link"] = (after - before) / int64(*n)
	}
	out.Encode(rec)
	for _, r := range strings.Split(*rates, ",") {
		rate, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || rate <= 0 {
			return fmt.Errorf("rate %q", r)
		}
		start := time.Now()
		rs := f.Load(ctx, rate, *dur)
		ok := 0
		for _, x := range rs {
			if x.Err == nil && x.RC == "00" {
				ok++
			}
		}
		out.Encode(map[string]any{"step": "load", "rate": rate, "sent": len(rs), "approved": ok,
			"achieved_per_s": float64(ok) / time.Since(start).Seconds(),
			"p50_ms":         ms(fleet.Percentile(rs, 50)), "p90_ms": ms(fleet.Percentile(rs, 90)), "p99_ms": ms(fleet.Percentile(rs, 99))})
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
