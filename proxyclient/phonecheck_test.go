package proxyclient_test

import (
	"net"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/proxyclient"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

// TestProxyRefusesReplayedStaleAndIncompletePhoneRequests: the proxy
// forwards a phone request once; the same bytes again get 94, so do a
// transmission time outside the window, and a request missing the
// customer (120) or the credential (52) gets 30. None reaches the ATM.
func TestProxyRefusesReplayedStaleAndIncompletePhoneRequests(t *testing.T) {
	e := newEnv(t)
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, nil)
	waitFor(t, "sign-on", signedOn(a))
	ph, err := phonesim.NewPhone(e.phoneCfg())
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	c, err := net.Dial("tcp", e.proxy.PhoneAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // a watchdog, not a wait
	codec := &wire.Codec{Protector: ph.Protector()}
	exchange := func(m *iso8583.Message) string {
		t.Helper()
		if err := codec.WriteMessage(c, m); err != nil {
			t.Fatal(err)
		}
		for {
			r, err := codec.ReadMessage(c)
			if err != nil {
				t.Fatal(err)
			}
			if r != nil {
				rc, _ := r.GetString(wire.FieldResponseCode)
				return rc
			}
		}
	}
	request := func(edit func(m *iso8583.Message)) *iso8583.Message {
		t.Helper()
		m, err := ph.Request(qrText(t, "ATM1", 10000), "CUST001", "1234")
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(m)
		}
		return m
	}
	genuine := request(nil)
	if rc := exchange(genuine); rc != wire.RCApproved {
		t.Fatalf("genuine request: %s", rc)
	}
	for _, tt := range []struct {
		name string
		m    *iso8583.Message
		rc   string
	}{
		{"the same request again", genuine, wire.RCDuplicate},
		{"a stale field 7", request(func(m *iso8583.Message) {
			_ = m.Field(wire.FieldTransmissionDT, wire.FormatTransmissionDT(time.Now().Add(-time.Hour)))
		}), wire.RCDuplicate},
		{"no customer", request(func(m *iso8583.Message) { m.UnsetField(wire.FieldCustomerID) }), proxysim.RCFormatError},
		{"no credential", request(func(m *iso8583.Message) { m.UnsetField(wire.FieldPINBlock) }), proxysim.RCFormatError},
	} {
		if rc := exchange(tt.m); rc != tt.rc {
			t.Errorf("%s: %s, want %s", tt.name, rc, tt.rc)
		}
	}
	if n := len(a.h.calls()); n != 1 {
		t.Fatalf("the ATM got %d commands, want the genuine one", n)
	}
}

// TestProxyRateLimitsRefusedSources: a source whose requests keep being
// refused (here: forged QRs the ATM answers 12) is answered 65 by the
// proxy once it reaches the limit, and its requests no longer reach the
// ATM, not even a genuine one.
func TestProxyRateLimitsRefusedSources(t *testing.T) {
	e := newEnv(t)
	e.proxy.Close()
	e.proxyCfg.PhoneRefusalLimit = 3
	var err error
	if e.proxy, err = proxysim.NewServer(e.proxyCfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.proxy.Close)
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, nil)
	waitFor(t, "sign-on", signedOn(a))
	a.h.mu.Lock()
	a.h.result = func(proxyclient.Command) proxyclient.Result {
		return proxyclient.Result{ResponseCode: wire.RCInvalidTransaction}
	}
	a.h.mu.Unlock()
	for i := range 3 {
		if out := withdraw(t, e, 10000); out.ResponseCode != wire.RCInvalidTransaction {
			t.Fatalf("forged request %d: %+v", i+1, out)
		}
	}
	a.h.mu.Lock()
	a.h.result = nil // the ATM would pay now
	a.h.mu.Unlock()
	if out := withdraw(t, e, 10000); out.ResponseCode != proxysim.RCRateLimited {
		t.Fatalf("request after 3 refusals: %+v, want 65", out)
	}
	if n := len(a.h.calls()); n != 3 {
		t.Fatalf("the ATM got %d commands, want the 3 refused ones", n)
	}
}
