//go:build cgo

package appliance_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/p11/softhsm"
)

// TestE2EKeysInSoftHSM2 runs a withdrawal with every key of the ATM in a
// SoftHSM2 token: the development keys are loaded into it at start, the
// working keys of the proxy link are imported under the TMK at sign-on,
// and every MAC, encryption and journal HMAC is computed by the token.
func TestE2EKeysInSoftHSM2(t *testing.T) {
	if testing.Short() {
		t.Skip("SoftHSM2")
	}
	softhsm.Token(t, "atm-e2e")
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte(softhsm.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startSystem(t, func(cfg *appliance.Config) {
		cfg.Keys.PKCS11 = &appliance.PKCS11Keys{Module: softhsm.Library, TokenLabel: "atm-e2e", PINFile: pinFile, ClearKeyFallback: true}
	})
	before := s.balance(zhang)
	out := s.withdraw(s.qr(30000), zhang, "123456")
	if out.ResponseCode != "00" || !out.PaidInFull() {
		t.Fatalf("outcome %+v", out)
	}
	s.settled()
	if got := s.balance(zhang); got != before-30000 {
		t.Fatalf("balance %d, want %d", got, before-30000)
	}
	lister, ok := s.app.HSM.(interface{ Keys() ([]hsm.KeyInfo, error) })
	if !ok {
		t.Fatalf("the appliance's module is %T, not the token", s.app.HSM)
	}
	keys, err := lister.Keys()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range keys {
		n := string(k.Name)
		if k.Usage != "" {
			n += "/" + k.Usage
		}
		names = append(names, n)
	}
	// The dev keys, the journal key, the TMK's network-management and key
	// block protection variants (tmk.mac, tmk.kbpk) and the first working
	// keys, from TR-31 blocks, bound to their usages.
	if got, want := strings.Join(names, " "), "host.data host.mac journal.hmac qr.mac tak.1/M3C tek.1/D0B tmk tmk.kbpk tmk.mac"; got != want {
		t.Errorf("keys in the token: %q, want %q", got, want)
	}
	if !strings.Contains(s.logs.String(), "keys.pkcs11.clearKeyFallback is on") {
		t.Error("the start-up log does not name the clear-key fallback")
	}
	if strings.Contains(s.logs.String(), softhsm.PIN) {
		t.Error("the PIN appears in the logs")
	}
}
