// Package linktest sets up a host simulator and an ATM host link on
// loopback for the tests of hostlink and hostsim: fresh random keys, a
// temporary bbolt file, a phone that encrypts PIN blocks.
package linktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/hostlink"
	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/pinblock"
)

// TB is the part of testing.TB the helpers use, so that Examples can use
// them too.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

var _ TB = testing.TB(nil)

// TerminalID is the admitted terminal of the fixture.
const TerminalID = "ATM00001"

// Customers seeded by Config: balances in minor units of CNY (156).
var Customers = []hostsim.Customer{
	{ID: "C-ALICE", PIN: "1234", Name: "Alice", Balance: 500000, DailyLimit: 300000, PerTxnLimit: 200000},
	{ID: "C-BOB", PIN: "4321", Name: "Bob", Balance: 5000},
	{ID: "C-BLOCKED", PIN: "1111", Name: "Carol", Balance: 100000, Blocked: true},
	{ID: "C-PIN", PIN: "2222", Name: "Dave", Balance: 100000},
	{ID: hostsim.MagicSlow, PIN: "1234", Balance: 100000},
	{ID: hostsim.MagicDrop, PIN: "1234", Balance: 100000},
}

// Keys are one fixture's clear keys (test only; never printed).
type Keys struct {
	MAC, Data, AppPIN, Token []byte
}

// NewKeys returns fresh random keys with odd parity.
func NewKeys(t TB) Keys {
	return Keys{MAC: TDESKey(t), Data: TDESKey(t), AppPIN: TDESKey(t), Token: Random(t, 32)}
}

// Random returns n random bytes.
func Random(t TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TDESKey returns a random double-length key with odd parity.
func TDESKey(t TB) []byte {
	k := Random(t, 16)
	hsm.AdjustParity(k)
	return k
}

// Device is the test phone's device ID: Config binds it to every one of
// Customers.
const Device = "0D15EA5E0D15EA5E0D15EA5E0D15EA5E"

// Config returns a host configuration for keys with a database in dir.
func Config(k Keys, dir string, log *slog.Logger) hostsim.Config {
	var bound []hostsim.BoundDevice
	for _, c := range Customers {
		bound = append(bound, hostsim.BoundDevice{Customer: c.ID, Device: Device})
	}
	return hostsim.Config{
		DBPath: filepath.Join(dir, "host.db"),
		Terminals: map[string]hostsim.HostTerminal{
			TerminalID: {MACKey: hex.EncodeToString(k.MAC), DataKey: hex.EncodeToString(k.Data)},
		},
		AppPINKey:  hex.EncodeToString(k.AppPIN),
		TokenKey:   hex.EncodeToString(k.Token),
		Customers:  Customers,
		Currencies: map[string]hostsim.Currency{"156": {Alpha: "CNY", Exponent: 2}},
		Binding:    hostsim.Binding{Devices: bound},
		Logger:     log,
	}
}

// ATMModule returns an ATM security module holding the host-link keys.
func ATMModule(t TB, k Keys) *hsm.Soft {
	m := hsm.NewSoft()
	t.Cleanup(func() { m.Close() })
	if _, err := m.ImportClearKey(hsm.HostMAC, k.MAC); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ImportClearKey(hsm.HostData, k.Data); err != nil {
		t.Fatal(err)
	}
	return m
}

// PINBlock plays the phone: a format 1 block for pin encrypted under the
// app PIN key.
func PINBlock(t TB, k Keys, pin string) []byte {
	m := hsm.NewSoft()
	defer m.Close()
	if _, err := m.ImportClearKey(hsm.AppPINKey, k.AppPIN); err != nil {
		t.Fatal(err)
	}
	clearBlock, err := pinblock.Format1(pin, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := m.Encrypt(hsm.AppPINKey, clearBlock)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// Nonce returns a fresh dispenser command nonce (32 upper-case hex digits).
func Nonce(t TB) string {
	return strings.ToUpper(hex.EncodeToString(Random(t, 16)))
}

// LogBuffer is a concurrency-safe log sink whose text tests can search.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a debug-level text logger writing to b.
func (b *LogBuffer) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Fixture is a running host simulator and, optionally, a client.
type Fixture struct {
	Keys    Keys
	Dir     string
	HostLog *LogBuffer
	ATMLog  *LogBuffer
	Host    *hostsim.Server
	Config  hostsim.Config
	// JournalSeq and LastSTAN are what clients of ClientConfig report at
	// sign-on (LastSTAN 0: none yet).
	JournalSeq atomic.Uint64
	LastSTAN   atomic.Uint32
}

// NewFixture starts a host simulator on loopback with fresh keys.
func NewFixture(t testing.TB) *Fixture {
	f := &Fixture{Keys: NewKeys(t), Dir: t.TempDir(), HostLog: &LogBuffer{}, ATMLog: &LogBuffer{}}
	f.Config = Config(f.Keys, f.Dir, f.HostLog.Logger())
	f.StartHost(t)
	return f
}

// StartHost (re)starts the host on the fixture's configuration and database.
func (f *Fixture) StartHost(t TB) {
	h, err := hostsim.NewServer(f.Config)
	if err != nil {
		t.Fatal(err)
	}
	f.Host = h
	t.Cleanup(func() { h.Close() })
}

// ClientConfig returns a client configuration for the fixture's host.
func (f *Fixture) ClientConfig(t TB) hostlink.Config {
	return hostlink.Config{
		Addr:        f.Host.Addr(),
		TerminalID:  TerminalID,
		AcquirerID:  "12345678",
		HSM:         ATMModule(t, f.Keys),
		SendTimeout: 5 * time.Second,
		Logger:      f.ATMLog.Logger(),
		MinBackoff:  10 * time.Millisecond,
		MaxBackoff:  100 * time.Millisecond,
		Anchor: func() (wire.Anchor, error) {
			return wire.Anchor{JournalSeq: f.JournalSeq.Load(), STAN: f.STAN()}, nil
		},
	}
}

// Start creates a client for cfg, runs it until the test ends and, when
// wait is true, waits until it is signed on.
func Start(t TB, cfg hostlink.Config, wait bool) *hostlink.Client {
	c, err := hostlink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		c.Close()
		<-done
	})
	if wait {
		WaitFor(t, "client signed on", c.Connected)
	}
	return c
}

// WaitFor polls cond every 5 ms for at most 10 s.
func WaitFor(t TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// STAN formats LastSTAN.
func (f *Fixture) STAN() string { return fmt.Sprintf("%06d", f.LastSTAN.Load()) }
