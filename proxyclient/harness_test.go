package proxyclient_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/qr"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/proxyclient"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

// devKey returns a random double-length 3DES key with odd parity, as hex.
func devKey(t testing.TB) string {
	t.Helper()
	k := make([]byte, 16)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	hsm.AdjustParity(k)
	return hex.EncodeToString(k)
}

type env struct {
	tmk, phoneMAC, phoneData, appPIN string
	proxyCfg                         proxysim.Config
	proxy                            *proxysim.Server
}

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv with the proxy's configuration changed by mod.
func newEnvWith(t *testing.T, mod func(*proxysim.Config)) *env {
	t.Helper()
	e := &env{tmk: devKey(t), phoneMAC: devKey(t), phoneData: devKey(t), appPIN: devKey(t)}
	e.proxyCfg = proxysim.Config{
		Terminals:    map[string]proxysim.Terminal{"ATM1": {TMK: e.tmk, Location: "Test Branch"}},
		PhoneMACKey:  e.phoneMAC,
		PhoneDataKey: e.phoneData,
		ATMTimeout:   5 * time.Second,
		SendTimeout:  5 * time.Second,
	}
	if mod != nil {
		mod(&e.proxyCfg)
	}
	var err error
	e.proxy, err = proxysim.NewServer(e.proxyCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.proxy.Close() })
	return e
}

// recorder is a Handler that records commands and answers with result.
type recorder struct {
	mu     sync.Mutex
	cmds   []proxyclient.Command
	result func(proxyclient.Command) proxyclient.Result
	block  chan struct{} // if set, each call waits for it to close
}

func (r *recorder) HandleWithdrawal(ctx context.Context, cmd proxyclient.Command) proxyclient.Result {
	r.mu.Lock()
	r.cmds = append(r.cmds, cmd)
	r.mu.Unlock()
	if r.block != nil {
		<-r.block
	}
	if r.result != nil {
		return r.result(cmd)
	}
	return proxyclient.Result{ResponseCode: "00", AuthCode: "A1B2C3", RRN: "000000000001", Dispensed: cmd.Amount}
}

func (r *recorder) calls() []proxyclient.Command {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]proxyclient.Command(nil), r.cmds...)
}

type atm struct {
	c    *proxyclient.Client
	hsm  *hsm.Soft
	h    *recorder
	done chan error
}

func startATM(t *testing.T, addr, terminalID, tmkHex string, mod func(*proxyclient.Config)) *atm {
	t.Helper()
	m := hsm.NewSoft()
	t.Cleanup(func() { m.Close() })
	k, _ := hex.DecodeString(tmkHex)
	if _, err := m.ImportClearKey(hsm.TMK, k); err != nil {
		t.Fatal(err)
	}
	a := &atm{hsm: m, h: &recorder{}, done: make(chan error, 1)}
	cfg := proxyclient.Config{
		Addr: addr, TerminalID: terminalID, HSM: m, Handler: a.h,
		EchoInterval: time.Minute, SendTimeout: 5 * time.Second,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := proxyclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.c = c
	ctx, cancel := context.WithCancel(context.Background())
	go func() { a.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-a.done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return a
}

// waitFor polls cond (bounded: 10 s) and fails the test if it never holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) phoneCfg() phonesim.Config {
	return phonesim.Config{ProxyAddr: e.proxy.PhoneAddr(), MACKey: e.phoneMAC, DataKey: e.phoneData, AppPINKey: e.appPIN, Timeout: 20 * time.Second}
}

// qrText returns a well-formed QR payload for terminal and amount. The
// phone does not verify the QR MAC (only the ATM does), so any key serves.
func qrText(t *testing.T, terminal string, amount int64) string {
	t.Helper()
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	hsm.AdjustParity(key)
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	p := qr.Payload{TerminalID: terminal, Amount: amount, Currency: "156",
		Nonce: hex.EncodeToString(nonce), Expiry: time.Now().Add(2 * time.Minute)}
	p.Nonce = strings.ToUpper(p.Nonce)
	s, err := qr.Sign(&p, func(d []byte) ([]byte, error) { return hsm.RetailMAC(key, d, hsm.PaddingMethod2) })
	if err != nil {
		t.Fatal(err)
	}
	return s
}
