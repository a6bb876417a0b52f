package hostlink_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/host"
	"github.com/cardless-atm/cardless/atm/hostlink"
	"github.com/cardless-atm/cardless/atm/hostlink/internal/linktest"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
)

// The link is the core's Reconciler: Balance reaches the host through it.
var _ atm.Reconciler = (*hostlink.Client)(nil)

// scriptedHost is a host on loopback that signs the terminal on and then
// answers each 0500 with answer(request), sealed with the terminal's MAC
// key, or with the key of seal when it is set (a forged answer).
type scriptedHost struct {
	ln net.Listener
}

func startScriptedHost(t *testing.T, keys linktest.Keys, seal *wire.Protector, answer func(wire.Reconciliation) wire.Reconciliation) *scriptedHost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	good := wire.NewProtector(linktest.ATMModule(t, keys), hostlink.Keys)
	if seal == nil {
		seal = good
	}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		in := &wire.Codec{Protector: good}
		out := &wire.Codec{Protector: seal}
		for {
			m, err := in.ReadMessage(conn)
			if err != nil {
				return
			}
			if m == nil {
				continue
			}
			var resp any
			switch wire.MTI(m) {
			case wire.MTINetMgmtRequest:
				var n wire.NetMgmt
				_ = wire.Parse(m, &n)
				a := n.Response(wire.RCApproved)
				if n.NetMgmtCode == wire.NetSignOn {
					a.Challenge, a.AdditionalData = "0123456789ABCDEF", wire.Anchor{}.String()
				}
				m, _ := wire.Build(&a)
				_ = (&wire.Codec{Protector: good}).WriteMessage(conn, m)
				continue
			case wire.MTIReconRequest:
				var r wire.Reconciliation
				_ = wire.Parse(m, &r)
				a := answer(r)
				resp = &a
			default:
				return
			}
			m, _ = wire.Build(resp)
			if err := out.WriteMessage(conn, m); err != nil {
				return
			}
		}
	}()
	return &scriptedHost{ln: ln}
}

// TestReconcileChecksTheAnswer: the client believes a 0510 only when its
// MAC verifies and it answers the question asked (terminal, day,
// currency, well-formed totals); otherwise the totals are unknown.
func TestReconcileChecksTheAnswer(t *testing.T) {
	keys := linktest.NewKeys(t)
	totals := wire.ReconTotals{Approved: wire.Total{Count: 1, Amount: 500}, NetDebit: 500}
	honest := func(r wire.Reconciliation) wire.Reconciliation {
		a := r.Response()
		a.ResponseCode = wire.RCApproved
		_ = totals.Put(&a)
		return a
	}
	forger := hsm.NewSoft()
	t.Cleanup(func() { forger.Close() })
	if _, err := forger.ImportClearKey(hsm.HostMAC, linktest.TDESKey(t)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		seal   *wire.Protector
		answer func(wire.Reconciliation) wire.Reconciliation
		want   error
	}{
		{"honest", nil, honest, nil},
		{"another day", nil, func(r wire.Reconciliation) wire.Reconciliation { a := honest(r); a.SettlementDate = "1120"; return a }, host.ErrOutcomeUnknown},
		{"another currency", nil, func(r wire.Reconciliation) wire.Reconciliation {
			a := honest(r)
			a.SettlementCurrency = "840"
			return a
		}, host.ErrOutcomeUnknown},
		{"another terminal", nil, func(r wire.Reconciliation) wire.Reconciliation { a := honest(r); a.TerminalID = "ATM00002"; return a }, host.ErrOutcomeUnknown},
		{"no totals", nil, func(r wire.Reconciliation) wire.Reconciliation {
			a := r.Response()
			a.ResponseCode = wire.RCApproved
			return a
		}, host.ErrOutcomeUnknown},
		{"refused", nil, func(r wire.Reconciliation) wire.Reconciliation {
			a := r.Response()
			a.ResponseCode = wire.RCFormatError
			return a
		}, host.ErrRejected},
		{"forged MAC", wire.NewProtector(forger, hostlink.Keys), honest, host.ErrOutcomeUnknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := startScriptedHost(t, keys, c.seal, c.answer)
			cfg := hostlink.Config{Addr: h.ln.Addr().String(), TerminalID: linktest.TerminalID, HSM: linktest.ATMModule(t, keys),
				SendTimeout: 300 * time.Millisecond, Anchor: func() (wire.Anchor, error) { return wire.Anchor{}, nil }}
			cl := linktest.Start(t, cfg, true)
			got, err := cl.Reconcile(context.Background(), host.ReconRequest{STAN: "000321", Day: "2026-11-21", Currency: "156",
				Time: time.Date(2026, 11, 21, 20, 0, 0, 0, time.UTC)})
			switch {
			case c.want == nil && (err != nil || got != (host.Totals{Approved: host.Count{Count: 1, Amount: 500}, NetDebit: 500})):
				t.Fatalf("totals %+v, err %v", got, err)
			case c.want != nil && !errors.Is(err, c.want):
				t.Fatalf("err %v, want %v", err, c.want)
			case c.want != nil && got != (host.Totals{}):
				t.Fatalf("totals %+v returned with the error", got)
			}
		})
	}
}
