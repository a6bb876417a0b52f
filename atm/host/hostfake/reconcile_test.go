package hostfake_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/host"
	"github.com/cardless-atm/cardless/atm/host/hostfake"
)

var _ atm.Reconciler = (*hostfake.Host)(nil)

// TestReconcileTotalsOfTheCalls: the fake's totals are those of the calls
// it received for the day (in its zone) and currency: approvals, each
// acknowledged advice and reversal once per original; a decline and
// another day count nowhere; Faults replace the answer.
func TestReconcileTotalsOfTheCalls(t *testing.T) {
	ctx := context.Background()
	h := hostfake.New(key, "CNY", 2)
	h.Zone = time.FixedZone("UTC+8", 8*3600)
	day := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC) // 18:00 on the 21st at UTC+8
	auth := func(stan string, amount int64, at time.Time) host.AuthRequest {
		r := host.AuthRequest{STAN: stan, TerminalID: "ATM00001", Amount: amount, Currency: "156", DispenseNonce: nonce1, Time: at}
		if _, err := h.Authorize(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	paid := auth("000001", 30000, day)
	short := auth("000002", 20000, day)
	auth("000003", 10000, day.Add(7*time.Hour)) // 01:00 on the 22nd at UTC+8
	h.SetFaults(hostfake.Faults{ResponseCode: "51"})
	auth("000004", 5000, day)
	h.SetFaults(hostfake.Faults{})
	orig := func(r host.AuthRequest) host.OriginalData { return host.OriginalData{STAN: r.STAN, Time: r.Time} }
	for range 2 { // a resend counts once
		if err := h.Advise(ctx, host.Advice{STAN: "000010", Original: orig(paid), Amount: 30000, Currency: "156"}); err != nil {
			t.Fatal(err)
		}
		if err := h.Reverse(ctx, host.Reversal{STAN: "000011", Original: orig(short), Amount: 20000, Dispensed: 15000, Currency: "156"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := h.Reconcile(ctx, host.ReconRequest{STAN: "000020", TerminalID: "ATM00001", Day: "2026-11-21", Currency: "156"})
	want := host.Totals{Approved: host.Count{Count: 2, Amount: 50000}, Reversals: host.Count{Count: 1, Amount: 5000},
		Advices: host.Count{Count: 1, Amount: 30000}, NetDebit: 45000}
	if err != nil || got != want {
		t.Fatalf("totals %+v %v, want %+v", got, err, want)
	}
	if got, _ := h.Reconcile(ctx, host.ReconRequest{STAN: "000021", Day: "2026-11-22", Currency: "156"}); got != (host.Totals{Approved: host.Count{Count: 1, Amount: 10000}, NetDebit: 10000}) {
		t.Fatalf("the 22nd: %+v", got)
	}
	books := host.Totals{NetDebit: 1}
	h.SetFaults(hostfake.Faults{Totals: &books})
	if got, _ := h.Reconcile(ctx, host.ReconRequest{STAN: "000022", Day: "2026-11-21", Currency: "156"}); got != books {
		t.Fatalf("injected totals: %+v", got)
	}
	h.SetFaults(hostfake.Faults{ReconErr: host.ErrUnavailable})
	if got, err := h.Reconcile(ctx, host.ReconRequest{STAN: "000023", Day: "2026-11-21", Currency: "156"}); !errors.Is(err, host.ErrUnavailable) || got != (host.Totals{}) {
		t.Fatalf("injected error: %+v %v", got, err)
	}
}
