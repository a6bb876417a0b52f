package proxyclient_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/pinblock"
	"github.com/cardless-atm/cardless/proxyclient"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

func signedOn(a *atm) func() bool { return func() bool { return a.c.Status().SignedOn } }

func kcvsMatch(t *testing.T, e *env, a *atm) {
	t.Helper()
	tak, tek, ok := e.proxy.KeyKCVs("ATM1")
	st := a.c.Status()
	if !ok || st.KeyKCVs.TAK != tak || st.KeyKCVs.TEK != tek || tak == "" {
		t.Fatalf("key KCVs differ: ATM %+v, proxy TAK %s TEK %s", st.KeyKCVs, tak, tek)
	}
}

func withdraw(t *testing.T, e *env, amount int64) phonesim.Outcome {
	t.Helper()
	out, err := phonesim.Withdraw(context.Background(), e.phoneCfg(), qrText(t, "ATM1", amount), "CUST001", "1234")
	if err != nil {
		t.Fatalf("withdraw: %v", err)
	}
	return out
}

func TestSignOnKeyExchangeEcho(t *testing.T) {
	e := newEnv(t)
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, func(c *proxyclient.Config) { c.EchoInterval = 30 * time.Millisecond })
	waitFor(t, "sign-on", signedOn(a))
	waitFor(t, "proxy sees the terminal", func() bool { return e.proxy.Connected("ATM1") })
	kcvsMatch(t, e, a)
	first := a.c.Status().KeyKCVs

	waitFor(t, "two echoes", func() bool { return a.c.Status().Echoes >= 2 })

	// 161: the ATM asks for new keys.
	if err := a.c.RequestKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.c.Status().KeyKCVs == first {
		t.Fatal("keys did not change after 161")
	}
	kcvsMatch(t, e, a)
	if out := withdraw(t, e, 10000); !out.PaidInFull() {
		t.Fatalf("withdrawal under 161 keys: %+v", out)
	}

	// 162: the proxy pushes new keys.
	second := a.c.Status().KeyKCVs
	if err := e.proxy.PushKeys("ATM1"); err != nil {
		t.Fatal(err)
	}
	if a.c.Status().KeyKCVs == second {
		t.Fatal("keys did not change after 162")
	}
	kcvsMatch(t, e, a)
	if out := withdraw(t, e, 20000); !out.PaidInFull() {
		t.Fatalf("withdrawal under 162 keys: %+v", out)
	}
	// Only the current generation remains in the ATM's HSM.
	keys, err := a.hsm.Keys()
	if err != nil {
		t.Fatal(err)
	}
	working := 0
	for _, k := range keys {
		if k.Name != hsm.TMK && k.Name != proxyclient.NetMgmtKey && k.Name != proxyclient.KBPKKey {
			working++
		}
	}
	if working != 2 {
		t.Fatalf("ATM holds %d working keys after confirmation, want 2 (TAK and TEK)", working)
	}
	if got := len(a.h.calls()); got != 2 {
		t.Fatalf("handler called %d times, want 2", got)
	}
}

// TestReconnectAfterProxyRestart: the client signs on again by itself
// after the proxy went away, and tells Config.OnChange each time it signed
// on and each time the signed-on link went down, in that order.
func TestReconnectAfterProxyRestart(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var changes []bool // SignedOn as OnChange sees it
	var a *atm
	ready := make(chan struct{}) // a is set
	a = startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, func(c *proxyclient.Config) {
		c.OnChange = func() {
			<-ready
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, a.c.Status().SignedOn)
		}
	})
	close(ready)
	waitFor(t, "sign-on", signedOn(a))
	addr := e.proxy.ATMAddr()
	e.proxy.Close()
	waitFor(t, "link down", func() bool { return !a.c.Status().Connected })

	p2, err := proxysim.Start(e.proxyCfg, addr, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.proxy = p2
	t.Cleanup(p2.Close)
	waitFor(t, "second sign-on", func() bool { st := a.c.Status(); return st.SignOns >= 2 && st.SignedOn })
	waitFor(t, "new proxy sees the terminal", func() bool { return p2.Connected("ATM1") })
	// OnChange runs just after the sign-on is visible: wait for it.
	waitFor(t, "three link changes", func() bool { mu.Lock(); defer mu.Unlock(); return len(changes) >= 3 })
	mu.Lock()
	got := slices.Clone(changes)
	mu.Unlock()
	if want := []bool{true, false, true}; !slices.Equal(got, want) {
		t.Fatalf("OnChange saw SignedOn %v, want %v", got, want)
	}
	kcvsMatch(t, e, a)
	if out := withdraw(t, e, 5000); !out.PaidInFull() {
		t.Fatalf("withdrawal after reconnect: %+v", out)
	}
}

func TestDropLinkFaultReconnects(t *testing.T) {
	e := newEnv(t)
	e.proxy.SetFaults(proxysim.Faults{DropLinkAfter: 3})
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, func(c *proxyclient.Config) { c.EchoInterval = 20 * time.Millisecond })
	waitFor(t, "three sign-ons (link dropped after 3 messages each time)", func() bool { return a.c.Status().SignOns >= 3 })
}

func TestCorruptMACNeverReachesHandler(t *testing.T) {
	e := newEnv(t)
	e.proxy.Close()
	e.proxyCfg.ATMTimeout = 300 * time.Millisecond
	e.proxyCfg.Faults.CorruptMAC = true
	var err error
	if e.proxy, err = proxysim.NewServer(e.proxyCfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.proxy.Close)
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, nil)
	waitFor(t, "sign-on", signedOn(a))
	out := withdraw(t, e, 10000)
	if out.ResponseCode != wire.RCIssuerInoperative || out.Approved || out.Dispensed != 0 {
		t.Fatalf("outcome %+v, want 91 and nothing paid", out)
	}
	waitFor(t, "rejection counted", func() bool { return a.c.Status().Rejected >= 1 })
	if n := len(a.h.calls()); n != 0 {
		t.Fatalf("handler called %d times with a bad MAC", n)
	}
	// The link survives: without the fault the next command goes through.
	e.proxy.SetFaults(proxysim.Faults{})
	if out := withdraw(t, e, 10000); !out.PaidInFull() {
		t.Fatalf("after the fault: %+v", out)
	}
}

func TestWrongKCVKeepsOldKeys(t *testing.T) {
	e := newEnv(t)
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, nil)
	waitFor(t, "sign-on", signedOn(a))
	before := a.c.Status().KeyKCVs
	e.proxy.SetFaults(proxysim.Faults{BadKCV: true})
	// The ATM reported itself signed on, so the proxy routes to it: the
	// key change reaches the ATM (never ErrNoATM) and the ATM refuses it.
	if err := e.proxy.PushKeys("ATM1"); !errors.Is(err, proxysim.ErrKeyChangeRefused) {
		t.Fatalf("key change with a wrong KCV: %v, want %v", err, proxysim.ErrKeyChangeRefused)
	}
	if a.c.Status().KeyKCVs != before {
		t.Fatal("ATM keys changed after a refused key change")
	}
	kcvsMatch(t, e, a)
	e.proxy.SetFaults(proxysim.Faults{})
	if out := withdraw(t, e, 3000); !out.PaidInFull() {
		t.Fatalf("old keys no longer work: %+v", out)
	}
}

func TestUnknownTerminalAndWrongTMKRefused(t *testing.T) {
	e := newEnv(t)
	a := startATM(t, e.proxy.ATMAddr(), "ATM9", e.tmk, nil)
	waitFor(t, "refusal of ATM9", func() bool { return e.proxy.Stats().Refused >= 1 && a.c.Status().LastError != nil })
	b := startATM(t, e.proxy.ATMAddr(), "ATM1", devKey(t), nil) // wrong TMK: sign-on MAC fails
	waitFor(t, "refusal of a bad MAC", func() bool { return e.proxy.Stats().Refused >= 3 && b.c.Status().LastError != nil })
	if a.c.Status().SignOns != 0 || b.c.Status().SignOns != 0 || e.proxy.Connected("ATM1") || e.proxy.Stats().SignOns != 0 {
		t.Fatal("a refused terminal signed on")
	}
}

func TestDuplicateSTANGets94(t *testing.T) {
	e := newEnv(t)
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, nil)
	waitFor(t, "sign-on", signedOn(a))
	now := time.Now()
	cmd := wire.Withdrawal{MTI: "0200", ProcessingCode: wire.ProcCashWithdrawal, Amount: wire.FormatAmount(700),
		TransmissionDateTime: wire.FormatTransmissionDT(now), STAN: "424242", TerminalID: "ATM1", Currency: "156",
		QRPayload: "X", CustomerID: "C"}
	r1, err := e.proxy.Command("ATM1", cmd)
	if err != nil || r1.ResponseCode != "00" {
		t.Fatalf("first: %+v %v", r1, err)
	}
	r2, err := e.proxy.Command("ATM1", cmd)
	if err != nil || r2.ResponseCode != wire.RCDuplicate {
		t.Fatalf("second: %+v %v, want 94", r2, err)
	}
	// A replay with an old transmission time and a fresh STAN: 94 too.
	old := cmd
	old.STAN, old.TransmissionDateTime = "424243", wire.FormatTransmissionDT(now.Add(-time.Hour))
	r3, err := e.proxy.Command("ATM1", old)
	if err != nil || r3.ResponseCode != wire.RCDuplicate {
		t.Fatalf("stale: %+v %v, want 94", r3, err)
	}
	if n := len(a.h.calls()); n != 1 {
		t.Fatalf("handler called %d times, want 1", n)
	}
	// The DuplicateCommand fault: the phone is paid once, the copy gets 94.
	e.proxy.SetFaults(proxysim.Faults{DuplicateCommand: true})
	if out := withdraw(t, e, 1000); !out.PaidInFull() {
		t.Fatalf("%+v", out)
	}
	if n := len(a.h.calls()); n != 2 {
		t.Fatalf("handler called %d times, want 2", n)
	}
	if e.proxy.Stats().DuplicatesRefused != 1 {
		t.Fatal("the duplicated command was not refused with 94")
	}
}

func TestPhoneRoundTrip(t *testing.T) {
	e := newEnv(t)
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, nil)
	a.h.result = func(c proxyclient.Command) proxyclient.Result {
		return proxyclient.Result{ResponseCode: "00", AuthCode: "123456", RRN: "RRN000000009", Dispensed: c.Amount - 5000}
	}
	waitFor(t, "sign-on", signedOn(a))
	text := qrText(t, "ATM1", 30000)
	phone := e.phoneCfg()
	phone.DeviceID = "A5DF01FC21E4290E59699A870ABD8CEF"
	out, err := phonesim.Withdraw(context.Background(), phone, text, "CUST-42", "987654")
	if err != nil {
		t.Fatal(err)
	}
	if !out.Approved || out.Amount != 30000 || out.Dispensed != 25000 || out.PaidInFull() ||
		out.AuthCode != "123456" || out.RRN != "RRN000000009" || out.Terminal != "ATM1" {
		t.Fatalf("outcome %+v", out)
	}
	calls := a.h.calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls", len(calls))
	}
	c := calls[0]
	if c.QRPayload != text || c.CustomerID != "CUST-42" || c.DeviceID != phone.DeviceID || c.Amount != 30000 || c.Currency != "156" || c.TerminalID != "ATM1" {
		t.Fatalf("command %+v", c)
	}
	// Field 52 reached the ATM opaque; only the app PIN key opens it.
	host := hsm.NewSoft()
	defer host.Close()
	k, _ := hex.DecodeString(e.appPIN)
	if _, err := host.ImportClearKey(hsm.AppPINKey, k); err != nil {
		t.Fatal(err)
	}
	clearBlock, err := host.Decrypt(hsm.AppPINKey, c.PINBlock)
	if err != nil {
		t.Fatal(err)
	}
	if pin, err := pinblock.Parse(clearBlock); err != nil || pin != "987654" {
		t.Fatal("the PIN block did not carry the PIN end to end")
	}
	if pin, err := pinblock.Parse(c.PINBlock); err == nil && pin == "987654" {
		t.Fatal("PIN block travelled in clear")
	}
}

func TestATMNotConnectedOrSlowGets91(t *testing.T) {
	e := newEnv(t)
	if out := withdraw(t, e, 1000); out.ResponseCode != wire.RCIssuerInoperative || out.Approved {
		t.Fatalf("no ATM: %+v, want 91", out)
	}
	e.proxy.Close()
	e.proxyCfg.ATMTimeout = 200 * time.Millisecond
	var err error
	if e.proxy, err = proxysim.NewServer(e.proxyCfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.proxy.Close)
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, nil)
	a.h.block = make(chan struct{})
	waitFor(t, "sign-on", signedOn(a))
	out := withdraw(t, e, 1000)
	close(a.h.block)
	if out.ResponseCode != wire.RCIssuerInoperative {
		t.Fatalf("slow ATM: %+v, want 91", out)
	}
}

// rawFrame writes a length header claiming n bytes followed by body.
func rawFrame(t *testing.T, addr string, n uint16, body []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var hdr [2]byte
	binary.BigEndian.PutUint16(hdr[:], n)
	_, _ = c.Write(append(hdr[:], body...))
	if len(body) < int(n) {
		// Truncated: half-close so the peer sees the end of the stream.
		_ = c.(*net.TCPConn).CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("peer did not close the bad connection: %v", err)
	}
}

func TestBadFramesRefusedServerKeepsServing(t *testing.T) {
	e := newEnv(t)
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, nil)
	waitFor(t, "sign-on", signedOn(a))
	rawFrame(t, e.proxy.ATMAddr(), 0xFFFF, bytes.Repeat([]byte{'0'}, 64)) // oversized
	rawFrame(t, e.proxy.ATMAddr(), 200, []byte("0800"))                   // truncated
	rawFrame(t, e.proxy.PhoneAddr(), 0xFFFF, nil)
	rawFrame(t, e.proxy.PhoneAddr(), 50, []byte("0200"))
	if !a.c.Status().SignedOn || a.c.Status().SignOns != 1 {
		t.Fatal("the admitted ATM was disturbed")
	}
	if out := withdraw(t, e, 1000); !out.PaidInFull() {
		t.Fatalf("server stopped serving: %+v", out)
	}
}

func TestBadFramesRefusedByClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a := startATM(t, ln.Addr().String(), "ATM1", devKey(t), nil)
	for i, frame := range [][]byte{
		{0xFF, 0xFF, '0', '8'}, // oversized
		{0x00, 0x40, '0', '8'}, // truncated
	} {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		// Read the sign-on, then answer garbage.
		var hdr [2]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint16(hdr[:]))); err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(frame)
		if i == 1 {
			_ = c.(*net.TCPConn).CloseWrite()
		}
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("frame %d: client did not close: %v", i, err)
		}
		c.Close()
	}
	// The client is still alive and dials again.
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if st := a.c.Status(); st.SignOns != 0 || st.LastError == nil {
		t.Fatalf("status %+v", st)
	}
}

func TestNewValidates(t *testing.T) {
	_, err := proxyclient.New(proxyclient.Config{TerminalID: "TOO-LONG-ID", TPDU: []byte{1}})
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"Addr", "TerminalID", "TPDU", "HSM", "Handler"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if _, err := proxysim.NewServer(proxysim.Config{}); err == nil {
		t.Fatal("empty proxysim config accepted")
	}
	if _, err := phonesim.Withdraw(context.Background(), phonesim.Config{}, "not a qr", "c", "1234"); !errors.Is(err, phonesim.ErrQR) {
		t.Fatalf("bad QR: %v", err)
	}
}

// TestEchoWhenIdleOnTheClock: the echo goes out after EchoInterval of the
// appliance's clock without a write, not before, and each one is answered.
func TestEchoWhenIdleOnTheClock(t *testing.T) {
	e := newEnv(t)
	fake := clock.NewFake(time.Date(2038, 1, 19, 3, 14, 0, 0, time.UTC))
	armed := fake.Armed()
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, func(c *proxyclient.Config) {
		c.Clock, c.EchoInterval = fake, 30*time.Second
	})
	waitFor(t, "sign-on", signedOn(a))
	waitArmed(t, armed) // the idle timer of the connection
	advance := func(d time.Duration, fires bool) {
		t.Helper()
		armed := fake.Armed()
		fake.Advance(d)
		if fires {
			waitArmed(t, armed)
		}
	}
	advance(29*time.Second, false)
	if n := a.c.Status().Echoes; n != 0 {
		t.Fatalf("%d echoes after 29 s idle", n)
	}
	advance(time.Second, true)
	if n := a.c.Status().Echoes; n != 1 {
		t.Fatalf("%d echoes after 30 s idle, want 1", n)
	}
	advance(29*time.Second, false)
	advance(time.Second, true)
	if n := a.c.Status().Echoes; n != 2 {
		t.Fatalf("%d echoes after 60 s idle, want 2", n)
	}
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

// TestRefusalsCarryNoField95: a refusal or a decline pays nothing and says
// so with its response code; field 95 is for an approved partial payout
// only (protocol.md §7.2), and a decline keeps the host's field 37.
func TestRefusalsCarryNoField95(t *testing.T) {
	e := newEnv(t)
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, nil)
	waitFor(t, "sign-on", signedOn(a))
	for _, res := range []proxyclient.Result{
		{ResponseCode: wire.RCInvalidTransaction},
		{ResponseCode: "54"},
		{ResponseCode: "51", RRN: "000000000042"},
		{ResponseCode: "75"},
	} {
		a.h.mu.Lock()
		a.h.result = func(proxyclient.Command) proxyclient.Result { return res }
		a.h.mu.Unlock()
		out := withdraw(t, e, 10000)
		if out.ResponseCode != res.ResponseCode || out.Approved || out.Dispensed != 0 || out.RRN != res.RRN {
			t.Errorf("answer to %+v: %+v", res, out)
		}
	}
	// An approved partial payout does carry it.
	a.h.mu.Lock()
	a.h.result = func(proxyclient.Command) proxyclient.Result {
		return proxyclient.Result{ResponseCode: wire.RCApproved, AuthCode: "A1B2C3", RRN: "000000000043", Dispensed: 5000}
	}
	a.h.mu.Unlock()
	if out := withdraw(t, e, 10000); !out.Approved || out.Dispensed != 5000 {
		t.Fatalf("partial payout: %+v", out)
	}
}

// TestOutOfServiceToldToTheProxy: once the terminal has told the proxy it
// takes no customers, phone requests for it are answered 91 by the proxy
// and never reach it; told it is back, they do again. A state set while
// the link was down is told after the next sign-on.
func TestOutOfServiceToldToTheProxy(t *testing.T) {
	e := newEnv(t)
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, nil)
	waitFor(t, "sign-on", signedOn(a))
	ctx := context.Background()
	if err := a.c.SetService(ctx, false, "storage"); err != nil {
		t.Fatal(err)
	}
	if out := withdraw(t, e, 10000); out.ResponseCode != wire.RCIssuerInoperative {
		t.Fatalf("withdrawal at a terminal out of service: %+v, want 91", out)
	}
	if n := len(a.h.calls()); n != 0 {
		t.Fatalf("the terminal got %d commands while out of service", n)
	}
	if err := a.c.SetService(ctx, true, ""); err != nil {
		t.Fatal(err)
	}
	if out := withdraw(t, e, 10000); !out.PaidInFull() {
		t.Fatalf("withdrawal back in service: %+v", out)
	}

	// Out of service across a reconnect: told again after the sign-on.
	if err := a.c.SetService(ctx, false, "dispenser"); err != nil {
		t.Fatal(err)
	}
	addr := e.proxy.ATMAddr()
	e.proxy.Close()
	waitFor(t, "link down", func() bool { return !a.c.Status().Connected })
	p2, err := proxysim.Start(e.proxyCfg, addr, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.proxy = p2
	t.Cleanup(p2.Close)
	waitFor(t, "second sign-on", func() bool { st := a.c.Status(); return st.SignOns >= 2 && st.SignedOn })
	if out := withdraw(t, e, 10000); out.ResponseCode != wire.RCIssuerInoperative {
		t.Fatalf("after the reconnect: %+v, want 91 (still out of service)", out)
	}
	if n := len(a.h.calls()); n != 1 {
		t.Fatalf("the terminal got %d commands, want the one paid in service", n)
	}
}
