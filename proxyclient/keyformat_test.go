package proxyclient_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/proxyclient"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

// TestLegacyKeyFormat: a terminal and a proxy both configured for the
// legacy format (keys 3DES-ECB under the TMK with KCVs) sign on and
// withdraw.
func TestLegacyKeyFormat(t *testing.T) {
	e := newEnvWith(t, func(c *proxysim.Config) { c.KeyFormat = wire.KeyFormatLegacy })
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, func(c *proxyclient.Config) { c.KeyFormat = wire.KeyFormatLegacy })
	waitFor(t, "sign-on", signedOn(a))
	kcvsMatch(t, e, a)
	if out := withdraw(t, e, 5000); !out.PaidInFull() {
		t.Fatalf("withdrawal under legacy keys: %+v", out)
	}
}

// TestKeyFormatMismatchRefused: a terminal takes keys only in its
// configured format; the other is refused with an error that says so,
// never accepted as a fallback.
func TestKeyFormatMismatchRefused(t *testing.T) {
	for _, tc := range []struct {
		proxy, atm wire.KeyFormat
		want       string
	}{
		{wire.KeyFormatLegacy, wire.KeyFormatTR31, `proxyclient: sign-on: proxyclient: key exchange failed: wrong key format: the proxy sent working keys in the "legacy" format; this terminal takes "tr31" only (proxy.keyBlocks)`},
		{wire.KeyFormatTR31, wire.KeyFormatLegacy, `proxyclient: sign-on: proxyclient: key exchange failed: wrong key format: the proxy sent working keys in the "tr31" format; this terminal takes "legacy" only (proxy.keyBlocks)`},
	} {
		t.Run(string(tc.atm), func(t *testing.T) {
			e := newEnvWith(t, func(c *proxysim.Config) { c.KeyFormat = tc.proxy })
			a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, func(c *proxyclient.Config) { c.KeyFormat = tc.atm })
			waitFor(t, "a refused sign-on", func() bool { return a.c.Status().LastError != nil })
			err := a.c.Status().LastError
			if !errors.Is(err, proxyclient.ErrKeyExchange) || err.Error() != tc.want {
				t.Fatalf("LastError = %v\nwant %s", err, tc.want)
			}
			if a.c.Status().SignOns != 0 {
				t.Fatal("signed on with keys in the wrong format")
			}
		})
	}
}

// TestSwappedKeyUsageRefused: verifiable key blocks that make the MAC key
// a data key (and the other way round) are refused, and the ATM keeps the
// keys it has.
func TestSwappedKeyUsageRefused(t *testing.T) {
	e := newEnv(t)
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, nil)
	waitFor(t, "sign-on", signedOn(a))
	before := a.c.Status().KeyKCVs
	e.proxy.SetFaults(proxysim.Faults{SwapKeyUsage: true})
	if err := e.proxy.PushKeys("ATM1"); !errors.Is(err, proxysim.ErrKeyChangeRefused) {
		t.Fatalf("key change with swapped usages: %v, want %v", err, proxysim.ErrKeyChangeRefused)
	}
	if a.c.Status().KeyKCVs != before {
		t.Fatal("ATM keys changed after a refused key change")
	}
	keys, err := a.hsm.Keys()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range keys {
		names = append(names, string(k.Name))
	}
	if got := strings.Join(names, " "); got != "tak.1 tek.1 tmk tmk.kbpk tmk.mac" {
		t.Fatalf("keys after the refusal: %s (the refused blocks' keys must be gone)", got)
	}
	e.proxy.SetFaults(proxysim.Faults{})
	if out := withdraw(t, e, 3000); !out.PaidInFull() {
		t.Fatalf("old keys no longer work: %+v", out)
	}
	// The working keys the ATM holds cannot be used out of their usage.
	if _, err := a.hsm.Encrypt("tak.1", make([]byte, 8)); !errors.Is(err, hsm.ErrKeyUsage) {
		t.Fatalf("encrypt with the TAK: %v, want ErrKeyUsage", err)
	}
}
