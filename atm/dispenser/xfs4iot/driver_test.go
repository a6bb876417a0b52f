package xfs4iot_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/backoff"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensertest"
	"github.com/cardless-atm/cardless/atm/dispenser/xfs4iot"
	"github.com/cardless-atm/cardless/atm/dispenser/xfs4iot/xfs4iotsim"
)

var (
	testKey = []byte("xfs4iot driver test token key 01")
	epoch   = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
)

type rig struct {
	t   *testing.T
	clk *clock.Fake
	srv *xfs4iotsim.Server
	drv *xfs4iot.Driver
	ctx context.Context
}

func newRig(t *testing.T, responseKey []byte, log *slog.Logger) *rig {
	t.Helper()
	clk := clock.NewFake(epoch)
	srv, _ := startSim(t, dispensertest.Setup{Units: dispensertest.Units(), MaxNotes: 40, LowThreshold: 5, TokenKey: testKey,
		Exponent: 2, TakeDelay: time.Second, Clock: clk, Dir: t.TempDir()})
	t.Cleanup(func() { srv.Close() })
	drv, err := xfs4iot.New(xfs4iot.Config{Publisher: srv.PublisherURL(), Exponent: 2, ResponseKey: responseKey, Clock: clk,
		Backoff: backoff.Policy{Min: time.Second, Max: 2 * time.Second}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return &rig{t: t, clk: clk, srv: srv, drv: drv, ctx: ctx}
}

func (r *rig) token(amount int64) (tok, nonce string) {
	r.t.Helper()
	nonce, err := r.drv.CommandNonce(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	tok, err = dispenser.BuildToken(nonce, amount, "CNY", 2, dispenser.HMACSHA256(testKey))
	if err != nil {
		r.t.Fatal(err)
	}
	return tok, nonce
}

// TestLinkLostMidDispenseIsCountUnknown: the device dispenses, the link
// drops before the completion: the driver says "count unknown", never
// "nothing paid", and after reconnecting the device's signed present
// status settles it, recognised by the session's token.
func TestLinkLostMidDispenseIsCountUnknown(t *testing.T) {
	r := newRig(t, testKey, nil)
	tok, nonce := r.token(20000)
	r.srv.DropLink("CashDispenser.Dispense")
	_, err := r.drv.Dispense(r.ctx, dispenser.Mix{"CST1": 2}, tok)
	var de *dispenser.DispenseError
	if !errors.As(err, &de) || de.CountKnown || !errors.Is(err, dispenser.ErrCountUnknown) {
		t.Fatalf("link lost mid-dispense: %v, want count unknown", err)
	}
	if stacker, _ := r.srv.Stacked(); !stacker.Equal(dispenser.Mix{"unit1": 2}) {
		t.Fatalf("the device stacked %s", stacker)
	}
	var ps dispenser.PresentStatus
	for range 10 {
		if ps, err = r.drv.PresentStatus(r.ctx); err == nil {
			break
		}
		r.clk.Advance(time.Second) // the reconnection backoff
	}
	if err != nil {
		t.Fatal(err)
	}
	if !ps.Of(nonce, tok) || !ps.CountKnown || ps.State != dispenser.PresentStacked || !ps.Dispensed.Equal(dispenser.Mix{"CST1": 2}) || ps.DispensedAmount != 20000 {
		t.Fatalf("present status after the reconnect: %+v", ps)
	}
	// A new process knows no nonces: the token's HMAC still ties the
	// dispense to its session.
	drv2, err := xfs4iot.New(xfs4iot.Config{Publisher: r.srv.PublisherURL(), Exponent: 2, ResponseKey: testKey, Clock: r.clk})
	if err != nil {
		t.Fatal(err)
	}
	defer drv2.Close()
	ps2, err := drv2.PresentStatus(r.ctx)
	if err != nil || ps2.Nonce != "" || !ps2.Of(nonce, tok) || ps2.Seq != ps.Seq {
		t.Fatalf("present status from a new driver: %+v, %v", ps2, err)
	}
	other, _ := dispenser.BuildToken(nonce, 30000, "CNY", 2, dispenser.HMACSHA256(testKey))
	if ps2.Of(nonce, other) {
		t.Fatal("another token matched the dispense")
	}
}

// TestPresentStatusNeedsAVerifiedResponse: without the response key, or
// with the wrong one, the device's account is not believed.
func TestPresentStatusNeedsAVerifiedResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  []byte
		want string
	}{
		{"no key", nil, "xfs4iot: present status not verified: no response key configured"},
		{"wrong key", []byte("some other key 0123456789abcdef0"), "xfs4iot: present status not verified: the response token's HMAC does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.key, nil)
			_, err := r.drv.PresentStatus(r.ctx)
			if !errors.Is(err, xfs4iot.ErrUnverified) || err.Error() != tc.want {
				t.Fatalf("PresentStatus: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestReconnectWaitsForTheBackoff: after the service goes away, commands
// fail at once with ErrDeviceNotReady (no dial storm) until the backoff
// has passed on the clock; then the driver reconnects by itself.
func TestReconnectWaitsForTheBackoff(t *testing.T) {
	var logs syncBuffer
	r := newRig(t, testKey, slog.New(slog.NewTextHandler(&logs, nil)))
	if _, err := r.drv.Status(r.ctx); err != nil {
		t.Fatal(err)
	}
	addr := r.srv.Addr()
	r.srv.Close()
	// The first commands find the link gone (the driver may not have
	// noticed yet) and dial once: refused. From then on, within the
	// backoff, no dial happens at all.
	var err error
	for range 3 {
		if _, err = r.drv.Status(r.ctx); strings.Contains(err.Error(), "next attempt in") {
			break
		}
		if !errors.Is(err, dispenser.ErrDeviceNotReady) {
			t.Fatalf("Status with the service gone: %v", err)
		}
	}
	if !errors.Is(err, dispenser.ErrDeviceNotReady) || !strings.Contains(err.Error(), "next attempt in") {
		t.Fatalf("Status within the backoff: %v", err)
	}
	srv, err := xfs4iotsim.Start(xfs4iotsim.Config{Addr: addr, Units: []dispenser.CashUnit{{ID: "unit1", Denomination: 10000, Currency: "CNY", Count: 5}},
		TokenKey: testKey, Exponent: 2, Clock: r.clk})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := r.drv.Status(r.ctx); err == nil {
		t.Fatal("reconnected before the backoff passed")
	}
	r.clk.Advance(2 * time.Second)
	st, err := r.drv.Status(r.ctx)
	if err != nil || st.Device != dispenser.StateOnline || len(st.Units) != 1 || st.Units[0].Count != 5 {
		t.Fatalf("after the backoff: %+v, %v", st, err)
	}
	if n := strings.Count(logs.String(), "xfs4iot cash dispenser connected"); n != 2 {
		t.Fatalf("%d connections logged, want 2:\n%s", n, logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the driver's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPublisherOnAStandardPort: a publisher URL without a port is looked
// for on the standard ports in order; the first that answers is used.
func TestPublisherOnAStandardPort(t *testing.T) {
	r := newRig(t, testKey, nil)
	_, port, _ := net.SplitHostPort(r.srv.Addr())
	p, _ := strconv.Atoi(port)
	closed := freePort(t)
	drv, err := xfs4iot.New(xfs4iot.Config{Publisher: "ws://127.0.0.1/xfs4iot/v1.0", Ports: []int{closed, p}, Exponent: 2, Clock: r.clk})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	if st, err := drv.Status(r.ctx); err != nil || st.Device != dispenser.StateOnline {
		t.Fatalf("Status through a discovered publisher: %+v %v", st, err)
	}
	none, _ := xfs4iot.New(xfs4iot.Config{Publisher: "ws://127.0.0.1/xfs4iot/v1.0", Ports: []int{closed}, Exponent: 2, Clock: r.clk})
	defer none.Close()
	if _, err := none.Status(r.ctx); !errors.Is(err, dispenser.ErrDeviceNotReady) {
		t.Fatalf("no publisher: %v", err)
	}
	if got := xfs4iot.StandardPorts("ws"); len(got) != 12 || got[0] != 80 || got[1] != 5846 || got[11] != 5856 {
		t.Fatalf("standard ports %v", got)
	}
	if got := xfs4iot.StandardPorts("wss"); got[0] != 443 {
		t.Fatalf("standard ports for wss %v", got)
	}
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}
