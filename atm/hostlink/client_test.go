package hostlink_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/host"
	"github.com/cardless-atm/cardless/atm/hostlink"
	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/hostlink/internal/linktest"
	"github.com/cardless-atm/cardless/atm/wire"
)

var stanSeq atomic.Uint32

func nextSTAN() string { return wire.FormatSTAN(stanSeq.Add(1)) }

func authReq(t *testing.T, f *linktest.Fixture, customer, pin string, amount int64) host.AuthRequest {
	return host.AuthRequest{
		STAN: nextSTAN(), Amount: amount, Currency: "156", CustomerID: customer,
		PINBlock: linktest.PINBlock(t, f.Keys, pin), DeviceID: linktest.Device, DispenseNonce: linktest.Nonce(t),
		Time: time.Now(),
	}
}

func balance(t *testing.T, f *linktest.Fixture, id string) int64 {
	t.Helper()
	b, err := f.Host.Balance(id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAuthorizeApproveDebitsAndSignsToken(t *testing.T) {
	f := linktest.NewFixture(t)
	c := linktest.Start(t, f.ClientConfig(t), true)
	before := balance(t, f, "C-ALICE")
	req := authReq(t, f, "C-ALICE", "1234", 10000)

	resp, err := c.Authorize(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Approved() || len(resp.AuthCode) != 6 || len(resp.RRN) != 12 {
		t.Fatalf("response %+v", resp)
	}
	if got := balance(t, f, "C-ALICE"); got != before-10000 {
		t.Fatalf("balance %d, want %d", got, before-10000)
	}

	// The token, checked independently of the dispenser package.
	tok := resp.Token
	i := strings.Index(tok, "HMACSHA256=")
	if i < 0 {
		t.Fatalf("token without HMAC: %q", tok)
	}
	signed := tok[:i+len("HMACSHA256=")]
	m := hmac.New(sha256.New, f.Keys.Token)
	m.Write([]byte(signed))
	if want := strings.ToUpper(hex.EncodeToString(m.Sum(nil))); tok[i+len("HMACSHA256="):] != want {
		t.Fatal("token HMAC does not verify under the token key")
	}
	wantPrefix := "NONCE=" + req.DispenseNonce + ",TOKENFORMAT=1,"
	if !strings.HasPrefix(tok, wantPrefix) || !strings.Contains(tok, ",DISPENSE1=100.00CNY,") {
		t.Fatalf("token content %q", tok)
	}
	if !strings.Contains(tok, fmt.Sprintf("TOKENLENGTH=%04d", len(tok))) {
		t.Fatalf("token length field wrong: %q", tok)
	}

	// Secrets never reach either log.
	logs := f.HostLog.String() + f.ATMLog.String()
	for _, secret := range [][]byte{f.Keys.MAC, f.Keys.Data, f.Keys.AppPIN, f.Keys.Token} {
		if strings.Contains(strings.ToUpper(logs), strings.ToUpper(hex.EncodeToString(secret))) {
			t.Fatal("a key appears in the logs")
		}
	}
	if strings.Contains(logs, "C-ALICE") {
		t.Fatal("customer ID logged unmasked")
	}
}

func TestNotConnectedIsUnavailable(t *testing.T) {
	f := linktest.NewFixture(t)
	c, err := hostlink.New(f.ClientConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Authorize(context.Background(), authReq(t, f, "C-ALICE", "1234", 10000))
	if !errors.Is(err, host.ErrUnavailable) || errors.Is(err, host.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	err = c.Reverse(context.Background(), host.Reversal{STAN: nextSTAN(), Original: host.OriginalData{STAN: "000001", Time: time.Now()},
		Amount: 100, Currency: "156", Reason: wire.ReasonLateResponse})
	if !errors.Is(err, host.ErrUnavailable) {
		t.Fatalf("reverse err = %v, want ErrUnavailable", err)
	}
}

// TestHostGoneIsUnavailableThenReconnects: a request while the host is
// gone is ErrUnavailable; the client comes back by itself, and tells
// Config.OnChange each time the link came up or went down, in that order.
func TestHostGoneIsUnavailableThenReconnects(t *testing.T) {
	f := linktest.NewFixture(t)
	cfg := f.ClientConfig(t)
	var mu sync.Mutex
	var changes []bool // Connected as OnChange sees it
	var c *hostlink.Client
	ready := make(chan struct{})
	cfg.OnChange = func() {
		<-ready
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, c.Connected())
	}
	c = linktest.Start(t, cfg, true)
	close(ready)
	addr := f.Host.Addr()
	f.Host.Close()
	linktest.WaitFor(t, "link down", func() bool { return !c.Connected() })
	_, err := c.Authorize(context.Background(), authReq(t, f, "C-ALICE", "1234", 10000))
	if !errors.Is(err, host.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	// Same database, same address: the client comes back by itself.
	h, err := hostsim.NewUnstartedServer(f.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.Start(addr); err != nil {
		t.Skipf("port %s not reusable: %v", addr, err)
	}
	f.Host = h
	linktest.WaitFor(t, "reconnect", c.Connected)
	resp, err := c.Authorize(context.Background(), authReq(t, f, "C-ALICE", "1234", 10000))
	if err != nil || !resp.Approved() {
		t.Fatalf("after reconnect: %+v %v", resp, err)
	}
	linktest.WaitFor(t, "three link changes", func() bool { mu.Lock(); defer mu.Unlock(); return len(changes) >= 3 })
	mu.Lock()
	defer mu.Unlock()
	if want := []bool{true, false, true}; !slices.Equal(changes, want) {
		t.Fatalf("OnChange saw Connected %v, want %v", changes, want)
	}
}

func TestNoAnswerIsOutcomeUnknown(t *testing.T) {
	f := linktest.NewFixture(t)
	c := linktest.Start(t, f.ClientConfig(t), true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Authorize(ctx, authReq(t, f, hostsim.MagicNoAnswer, "1234", 10000))
	if !errors.Is(err, host.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want ErrOutcomeUnknown", err)
	}
}

func TestSlowAnswerIsOutcomeUnknownAndReversalRestores(t *testing.T) {
	f := linktest.NewFixture(t)
	cfg := f.ClientConfig(t)
	cfg.SendTimeout = 300 * time.Millisecond // the host answers FAULT-SLOW after 5 s
	c := linktest.Start(t, cfg, true)
	before := balance(t, f, hostsim.MagicSlow)
	req := authReq(t, f, hostsim.MagicSlow, "1234", 20000)
	_, err := c.Authorize(context.Background(), req)
	if !errors.Is(err, host.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want ErrOutcomeUnknown", err)
	}
	// The host did approve (slowly): the debit stands until reversed.
	linktest.WaitFor(t, "debit", func() bool { return balance(t, f, hostsim.MagicSlow) == before-20000 })
	rev := host.Reversal{STAN: nextSTAN(), Original: host.OriginalData{STAN: req.STAN, Time: req.Time},
		Amount: 20000, Currency: "156", Reason: wire.ReasonLateResponse}
	if err := c.Reverse(context.Background(), rev); err != nil {
		t.Fatal(err)
	}
	if got := balance(t, f, hostsim.MagicSlow); got != before {
		t.Fatalf("balance after reversal %d, want %d", got, before)
	}
}

func TestDropAfterApproveIsOutcomeUnknown(t *testing.T) {
	f := linktest.NewFixture(t)
	c := linktest.Start(t, f.ClientConfig(t), true)
	before := balance(t, f, hostsim.MagicDrop)
	req := authReq(t, f, hostsim.MagicDrop, "1234", 30000)
	_, err := c.Authorize(context.Background(), req)
	if !errors.Is(err, host.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want ErrOutcomeUnknown", err)
	}
	if got := balance(t, f, hostsim.MagicDrop); got != before-30000 {
		t.Fatalf("balance %d: the debit must stand until the reversal", got)
	}
	linktest.WaitFor(t, "reconnect", c.Connected)
	rev := host.Reversal{STAN: nextSTAN(), Original: host.OriginalData{STAN: req.STAN, Time: req.Time},
		Amount: 30000, Currency: "156", Reason: wire.ReasonLateResponse}
	var rerr error
	linktest.WaitFor(t, "reversal accepted", func() bool {
		rerr = c.Reverse(context.Background(), rev)
		return !errors.Is(rerr, host.ErrUnavailable)
	})
	if rerr != nil {
		t.Fatal(rerr)
	}
	if got := balance(t, f, hostsim.MagicDrop); got != before {
		t.Fatalf("balance after reversal %d, want %d", got, before)
	}
}

func TestBadMACRefused(t *testing.T) {
	f := linktest.NewFixture(t)
	cfg := f.ClientConfig(t)
	wrong := f.Keys
	wrong.MAC = linktest.TDESKey(t)
	cfg.HSM = linktest.ATMModule(t, wrong)
	c := linktest.Start(t, cfg, false)
	linktest.WaitFor(t, "refusal logged", func() bool {
		return strings.Contains(f.HostLog.String(), "terminal refused")
	})
	if c.Connected() {
		t.Fatal("client with a wrong MAC key is signed on")
	}
	_, err := c.Authorize(context.Background(), authReq(t, f, "C-ALICE", "1234", 10000))
	if !errors.Is(err, host.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(f.HostLog.String(), "does not verify") {
		t.Fatalf("refusal reason not logged:\n%s", f.HostLog.String())
	}
}

func TestUnknownTerminalRefused(t *testing.T) {
	f := linktest.NewFixture(t)
	cfg := f.ClientConfig(t)
	cfg.TerminalID = "ATM99999"
	c := linktest.Start(t, cfg, false)
	linktest.WaitFor(t, "refusal logged", func() bool {
		return strings.Contains(f.HostLog.String(), "terminal not admitted")
	})
	if c.Connected() {
		t.Fatal("unknown terminal is signed on")
	}
}

func TestInvalidRequestNotSent(t *testing.T) {
	f := linktest.NewFixture(t)
	c := linktest.Start(t, f.ClientConfig(t), true)
	req := authReq(t, f, "C-ALICE", "1234", 10000)
	req.STAN = "12AB"
	if _, err := c.Authorize(context.Background(), req); !errors.Is(err, host.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if got := balance(t, f, "C-ALICE"); got != 500000 {
		t.Fatalf("balance %d changed", got)
	}
}

func TestNewValidates(t *testing.T) {
	_, err := hostlink.New(hostlink.Config{TerminalID: "TOO-LONG-ID", AcquirerID: "x"})
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, want := range []string{"Addr", "TerminalID", "AcquirerID", "HSM"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestEchoWhenIdle(t *testing.T) {
	f := linktest.NewFixture(t)
	cfg := f.ClientConfig(t)
	cfg.EchoInterval = 20 * time.Millisecond
	c := linktest.Start(t, cfg, true)
	linktest.WaitFor(t, "echo answered", func() bool {
		return strings.Contains(f.HostLog.String(), "code=301 rc=00")
	})
	if !c.Connected() {
		t.Fatal("link dropped after echoes")
	}
}

// The reconnect waits its backoff on the link's clock: with a fake clock
// and a one-minute step (a delay between 30 s and 60 s), the client does
// not reconnect to a host that is back before the clock has moved 30 s,
// and does once it has moved 60 s (a timer on the system clock would not
// fire within the test's 10 s wait).
func TestReconnectWaitsForBackoffOnTheClock(t *testing.T) {
	f := linktest.NewFixture(t)
	cfg := f.ClientConfig(t)
	fake := clock.NewFake(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	cfg.Clock, cfg.MinBackoff, cfg.MaxBackoff = fake, time.Minute, time.Minute
	c := linktest.Start(t, cfg, true)
	addr := f.Host.Addr()
	armed := fake.Armed()
	f.Host.Close()
	linktest.WaitFor(t, "link down", func() bool { return !c.Connected() })
	<-armed // the client waits for its backoff
	h, err := hostsim.NewUnstartedServer(f.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.Start(addr); err != nil {
		t.Skipf("port %s not reusable: %v", addr, err)
	}
	fake.Advance(29 * time.Second)
	// Give a wrongly early reconnect the time to happen (it would take
	// milliseconds on loopback).
	for i := 0; i < 40; i++ {
		if c.Connected() {
			t.Fatal("reconnected before the backoff's lower bound (30 s of the clock)")
		}
		time.Sleep(5 * time.Millisecond)
	}
	fake.Advance(31 * time.Second)
	linktest.WaitFor(t, "reconnect once the backoff ran out", c.Connected)
}

// TestEchoWhenIdleOnTheClock: the echo (0800 301) goes out when the link
// has written nothing for EchoInterval of the appliance's clock, not
// before, and an authorization postpones it.
func TestEchoWhenIdleOnTheClock(t *testing.T) {
	f := linktest.NewFixture(t)
	cfg := f.ClientConfig(t)
	fake := clock.NewFake(time.Date(2026, 12, 31, 23, 59, 55, 0, time.UTC))
	cfg.Clock, cfg.EchoInterval = fake, 30*time.Second
	armed := fake.Armed()
	c := linktest.Start(t, cfg, true)
	waitArmed(t, armed) // the idle timer of the new connection
	codes := func() []string { return f.Host.NetMgmt(linktest.TerminalID) }
	want := func(what string, w ...string) {
		t.Helper()
		linktest.WaitFor(t, what, func() bool { return slices.Equal(codes(), w) })
	}
	// advance moves the clock; when the idle timer falls due, it waits
	// for the loop to re-arm it, after any echo it sent was answered.
	advance := func(d time.Duration, fires bool) {
		t.Helper()
		armed := fake.Armed()
		fake.Advance(d)
		if fires {
			waitArmed(t, armed)
		}
	}
	want("sign-on and its confirmation", "001", "301")
	advance(29*time.Second, false)
	advance(time.Second, true)
	want("an echo after 30 s idle", "001", "301", "301")
	advance(20*time.Second, false)
	if _, err := c.Authorize(context.Background(), authReq(t, f, "C-ALICE", "1234", 10000)); err != nil {
		t.Fatal(err)
	}
	advance(10*time.Second, true) // idle only 10 s
	if got := codes(); !slices.Equal(got, []string{"001", "301", "301"}) {
		t.Fatalf("codes %q: an echo 10 s after an authorization", got)
	}
	advance(20*time.Second, true)
	want("an echo 30 s after the authorization", "001", "301", "301", "301")
}

// waitArmed waits for the fake clock to arm a timer, with a watchdog in
// real time that only a defect reaches.
func waitArmed(t *testing.T, armed <-chan struct{}) {
	t.Helper()
	select {
	case <-armed:
	case <-time.After(10 * time.Second):
		t.Fatal("no timer was armed on the clock")
	}
}
