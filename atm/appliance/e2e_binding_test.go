package appliance_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/host/bindapi"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
)

// TestE2EPhoneBinding: a phone the customer never bound is declined 57
// end to end (phone -> proxy -> ATM -> host over loopback TCP), pays
// nothing and debits nothing; bound with the customer's PIN and the code
// from the simulated SMS, the same phone is paid. The phone's device ID
// travels encrypted and appears in no log, nor does the code.
func TestE2EPhoneBinding(t *testing.T) {
	s := startSystem(t, nil)
	if err := s.host.StartBind("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	phone := s.phone
	var err error
	if phone.DeviceID, err = wire.NewDeviceID(); err != nil {
		t.Fatal(err)
	}
	phone.BindURL = "http://" + s.host.BindAddr()
	withdraw := func(amount int64) phonesim.Outcome {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := phonesim.Withdraw(ctx, phone, s.qr(amount), li, "654321")
		if err != nil {
			t.Fatalf("phone: %v", err)
		}
		return out
	}

	before := s.balance(li)
	out := withdraw(10000)
	if out.ResponseCode != wire.RCPhoneNotBound || out.Meaning != wire.ResponseText(wire.RCPhoneNotBound) || out.Approved || out.Dispensed != 0 || out.RRN == "" {
		t.Fatalf("unbound phone: %+v", out)
	}
	if v := s.app.Core.View(); v.Session.State != atm.StateDeclined || v.Session.Paid != 0 {
		t.Fatalf("session %+v", v.Session)
	}
	s.settled()
	if got := s.balance(li); got != before {
		t.Fatalf("balance %d after a decline, want %d", got, before)
	}
	s.dismiss()

	ctx := context.Background()
	a, err := phonesim.Bind(ctx, phone, li, "654321", func(ctx context.Context, _ bindapi.Answer) (string, error) {
		return phonesim.ReadSMSCode(ctx, phone, li)
	})
	if err != nil || a.Result != bindapi.Bound {
		t.Fatalf("bind: %+v, %v", a, err)
	}
	out = withdraw(10000)
	if out.ResponseCode != wire.RCApproved || !out.PaidInFull() {
		t.Fatalf("bound phone: %+v", out)
	}
	s.settled()
	if got := s.balance(li); got != before-10000 {
		t.Fatalf("balance %d, want %d", got, before-10000)
	}
	msgs := s.host.SMS(li)
	if len(msgs) != 1 {
		t.Fatalf("%d SMS, want 1", len(msgs))
	}
	code, err := bindapi.CodeIn(msgs[0].Text)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{phone.DeviceID, code, "654321"} {
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("%q appears in the logs", secret)
		}
	}
}
