package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/internal/connlimit"
	"github.com/cardless-atm/cardless/proxyclient/fleet"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

const (
	phoneMAC  = "f83d7615cebc7fa2cdef801c0db5b36b" // development keys (configs/phonesim.json)
	phoneData = "8380df5efbf280234a9251169245cb7f"
	appPIN    = "16bca158190e340498917670c4b06e40"
)

// TestFleetAgainstProxysim: 30 simulated terminals sign on to the proxy
// simulator with their derived keys, and withdrawals from phones reach
// them and come back approved.
func TestFleetAgainstProxysim(t *testing.T) {
	seed := []byte("fleet test seed")
	p, err := proxysim.Start(proxysim.Config{Terminals: fleet.ProxyTerminals(seed, 30), PhoneMACKey: phoneMAC, PhoneDataKey: phoneData,
		KeyFormat: wire.KeyFormatTR31, ATMLimits: connlimit.Limits{MaxConns: 100, MaxPerSource: 100},
		PhoneLimits: connlimit.Limits{MaxConns: 200, MaxPerSource: 200}}, "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := fleet.Start(ctx, fleet.Options{ATMAddr: p.ATMAddr(), PhoneAddr: p.PhoneAddr(), Terminals: 30, Seed: seed,
		KeyFormat: wire.KeyFormatTR31, PhoneMACKey: phoneMAC, PhoneDataKey: phoneData, AppPINKey: appPIN})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	if _, err := f.WaitSignedOn(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := p.Stats().SignOns; n != 30 {
		t.Fatalf("the proxy saw %d sign-ons", n)
	}
	rs := f.Load(ctx, 40, time.Second)
	if len(rs) != 40 {
		t.Fatalf("%d results", len(rs))
	}
	for i, r := range rs {
		if r.Err != nil || r.RC != "00" {
			t.Fatalf("withdrawal %d: %q %v", i, r.RC, r.Err)
		}
	}
	if fleet.Percentile(rs, 99) <= 0 {
		t.Fatal("no latency measured")
	}
}
