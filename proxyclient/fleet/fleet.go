// Package fleet is a load generator for a proxy: thousands of simulated
// terminals that sign on with their keys over real TCP, echo and answer
// dispense commands with a simulated core (approved at once), and phones
// sending withdrawals at a configured rate. cmd/fleetsim is its command;
// a bank's integrator points it at their own proxy with their terminals'
// keys.
//
// Terminal keys come from a seed (TMK = the first 16 bytes of
// HMAC-SHA256(seed, terminal ID), odd parity): ProxyTerminals gives the
// same keys to a proxy simulator's configuration. For test fleets only.
package fleet

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardless-atm/cardless/atm/qr"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/proxyclient"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

// TerminalID names terminal i of a fleet (FLT00001 ...).
func TerminalID(i int) string { return fmt.Sprintf("FLT%05d", i+1) }

// TMK derives a fleet terminal's master key from the seed.
func TMK(seed []byte, terminalID string) []byte {
	m := hmac.New(sha256.New, seed)
	m.Write([]byte(terminalID))
	k := m.Sum(nil)[:16]
	for i, b := range k { // odd parity, as DES keys carry
		b &^= 1
		p := b ^ b>>4
		p ^= p >> 2
		p ^= p >> 1
		k[i] = b | ^p&1
	}
	return k
}

// ProxyTerminals returns the proxy simulator's terminal table for a fleet
// of n terminals.
func ProxyTerminals(seed []byte, n int) map[string]proxysim.Terminal {
	out := make(map[string]proxysim.Terminal, n)
	for i := range n {
		id := TerminalID(i)
		out[id] = proxysim.Terminal{TMK: hex.EncodeToString(TMK(seed, id)), Location: "Fleet " + id}
	}
	return out
}

// Options configure a fleet.
type Options struct {
	ATMAddr, PhoneAddr string
	Terminals          int
	Seed               []byte
	KeyFormat          wire.KeyFormat // as the proxy sends working keys
	// Phone channel keys (hex), as the proxy has them.
	PhoneMACKey, PhoneDataKey, AppPINKey string
	// StartRate starts that many terminals per second (0: all at once).
	// Real ATMs do not all connect in the same millisecond; a proxy's
	// sign-on storm is measured at a rate it can take.
	StartRate float64
	Logger    *slog.Logger
}

// Fleet is a running set of simulated terminals.
type Fleet struct {
	opt     Options
	clients []*proxyclient.Client
	qrMAC   hsm.Module
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	handled atomic.Int64
}

// approver is the simulated core: every dispense command is paid at once.
type approver struct {
	f   *Fleet
	rrn atomic.Int64
}

func (a *approver) HandleWithdrawal(_ context.Context, c proxyclient.Command) proxyclient.Result {
	a.f.handled.Add(1)
	return proxyclient.Result{ResponseCode: wire.RCApproved, AuthCode: "FLEET1",
		RRN: fmt.Sprintf("%012d", a.rrn.Add(1)), Dispensed: c.Amount}
}

// Start connects every terminal; they sign on in the background (Wait
// waits for it).
func Start(ctx context.Context, o Options) (*Fleet, error) {
	if o.Terminals <= 0 {
		return nil, errors.New("fleet: no terminals")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &Fleet{opt: o, cancel: cancel}
	h := &approver{f: f}
	var gap time.Duration
	if o.StartRate > 0 {
		gap = time.Duration(float64(time.Second) / o.StartRate)
	}
	begin := time.Now()
	for i := range o.Terminals {
		id := TerminalID(i)
		m := hsm.NewSoft()
		if _, err := m.ImportClearKey(hsm.TMK, TMK(o.Seed, id)); err != nil {
			cancel()
			return nil, err
		}
		c, err := proxyclient.New(proxyclient.Config{Addr: o.ATMAddr, TerminalID: id, HSM: m, KeyFormat: o.KeyFormat,
			EchoInterval: 30 * time.Second, SendTimeout: 30 * time.Second, BackoffMin: time.Second, BackoffMax: 10 * time.Second,
			Handler: h, Logger: o.Logger})
		if err != nil {
			cancel()
			return nil, err
		}
		f.clients = append(f.clients, c)
		f.wg.Add(1)
		at := begin.Add(time.Duration(i) * gap)
		go func() {
			defer f.wg.Done()
			if d := time.Until(at); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
			c.Run(ctx)
		}()
	}
	return f, nil
}

// SignedOn counts the terminals signed on now.
func (f *Fleet) SignedOn() int {
	n := 0
	for _, c := range f.clients {
		if c.Status().SignedOn {
			n++
		}
	}
	return n
}

// WaitSignedOn waits (polling every 50 ms, up to limit) until every
// terminal is signed on, and returns how long it took.
func (f *Fleet) WaitSignedOn(ctx context.Context, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for f.SignedOn() < len(f.clients) {
		if time.Since(start) > limit {
			return time.Since(start), fmt.Errorf("fleet: %d of %d terminals signed on after %s", f.SignedOn(), len(f.clients), limit)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return time.Since(start), nil
}

// Stop disconnects every terminal.
func (f *Fleet) Stop() {
	f.cancel()
	f.wg.Wait()
}

// Result is one phone withdrawal of a load run.
type Result struct {
	Latency time.Duration
	RC      string
	Err     error
}

// Load sends withdrawals from phones at rate per second for d, spread
// over the terminals, and returns every result (phone -> proxy -> ATM ->
// proxy -> phone latency).
func (f *Fleet) Load(ctx context.Context, rate float64, d time.Duration) []Result {
	cfg := phonesim.Config{ProxyAddr: f.opt.PhoneAddr, MACKey: f.opt.PhoneMACKey, DataKey: f.opt.PhoneDataKey,
		AppPINKey: f.opt.AppPINKey, Timeout: 30 * time.Second}
	interval := time.Duration(float64(time.Second) / rate)
	n := int(d / interval)
	results := make([]Result, n)
	var wg sync.WaitGroup
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := range n {
		select {
		case <-ctx.Done():
			results = results[:i]
			wg.Wait()
			return results
		case <-tick.C:
		}
		id := TerminalID(i % len(f.clients))
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := f.qrFor(id, 10000)
			start := time.Now()
			out, err := phonesim.Withdraw(ctx, cfg, payload, fmt.Sprintf("1380%07d", i), "123456")
			results[i] = Result{Latency: time.Since(start), RC: out.ResponseCode, Err: err}
		}()
	}
	wg.Wait()
	return results
}

// qrFor makes the QR text a terminal would show (the simulated core does
// not check its MAC, so any key signs it).
func (f *Fleet) qrFor(terminal string, amount int64) string {
	var nonce [16]byte
	rand.Read(nonce[:])
	p := qr.Payload{TerminalID: terminal, Amount: amount, Currency: "156", Nonce: strings.ToUpper(hex.EncodeToString(nonce[:])),
		Expiry: time.Now().Add(2 * time.Minute).UTC().Truncate(time.Second)}
	s, _ := qr.Sign(&p, func(data []byte) ([]byte, error) {
		m := hmac.New(sha256.New, []byte("fleet qr key"))
		m.Write(data)
		return m.Sum(nil)[:8], nil
	})
	return s
}

// Percentile returns the p-th percentile (0-100) of the latencies of the
// successful results.
func Percentile(rs []Result, p float64) time.Duration {
	var l []time.Duration
	for _, r := range rs {
		if r.Err == nil && r.RC == wire.RCApproved {
			l = append(l, r.Latency)
		}
	}
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	i := int(float64(len(l)-1) * p / 100)
	return l[i]
}
