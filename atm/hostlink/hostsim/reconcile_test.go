package hostsim_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/host"
	"github.com/cardless-atm/cardless/atm/hostlink"
	"github.com/cardless-atm/cardless/atm/hostlink/internal/linktest"
	"github.com/cardless-atm/cardless/atm/wire"
)

// reconFixture starts a host whose clock stands at now and whose business
// day is Shanghai's, and a signed-on client.
func reconFixture(t *testing.T, now time.Time) (*linktest.Fixture, *hostlink.Client) {
	t.Helper()
	f := &linktest.Fixture{Keys: linktest.NewKeys(t), Dir: t.TempDir(), HostLog: &linktest.LogBuffer{}, ATMLog: &linktest.LogBuffer{}}
	f.Config = linktest.Config(f.Keys, f.Dir, f.HostLog.Logger())
	f.Config.Now = func() time.Time { return now }
	f.Config.DayZone = "Asia/Shanghai"
	f.StartHost(t)
	return f, linktest.Start(t, f.ClientConfig(t), true)
}

// TestReconciliationTotals: over real TCP, after a few withdrawals the
// host answers a 0500 with the terminal's totals of the business day in
// its zone, computed from its own records: approvals (declines left out),
// the reversals with what they credited (a partial and a full one), the
// completion advices, the net debit; a withdrawal authorized after
// midnight in Shanghai (16:30 UTC) counts for the next day only. The
// totals agree with the host's running settlement totals.
func TestReconciliationTotals(t *testing.T) {
	base := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC) // 23:00 in Shanghai
	f, c := reconFixture(t, base.Add(2*time.Hour))
	ctx := context.Background()
	at := func(r host.AuthRequest, d time.Duration) host.AuthRequest { r.Time = base.Add(d); return r }

	paid := at(req(t, f, "C-ALICE", "1234", 30000), time.Minute)
	partial := at(req(t, f, "C-ALICE", "1234", 20000), 2*time.Minute)
	reversed := at(req(t, f, "C-ALICE", "1234", 10000), 3*time.Minute)
	open := at(req(t, f, "C-ALICE", "1234", 5000), 4*time.Minute)
	declined := at(req(t, f, "C-BOB", "4321", 9999), 5*time.Minute)
	tomorrow := at(req(t, f, "C-ALICE", "1234", 40000), 90*time.Minute) // 00:30 on the 22nd in Shanghai
	for _, r := range []host.AuthRequest{paid, partial, reversed, open, tomorrow} {
		if resp := authorize(t, c, r); !resp.Approved() {
			t.Fatalf("stan %s: %s", r.STAN, resp.ResponseCode)
		}
	}
	if resp := authorize(t, c, declined); resp.ResponseCode != wire.RCInsufficientFunds {
		t.Fatalf("declined: %s", resp.ResponseCode)
	}
	if err := c.Advise(ctx, host.Advice{STAN: nextSTAN(), Original: host.OriginalData{STAN: paid.STAN, Time: paid.Time},
		Amount: paid.Amount, Currency: "156"}); err != nil {
		t.Fatal(err)
	}
	for _, rv := range []host.Reversal{reversal(partial, 5000), reversal(reversed, 0)} {
		if err := c.Reverse(ctx, rv); err != nil {
			t.Fatal(err)
		}
	}

	ask := func(day string) host.Totals {
		t.Helper()
		tot, err := c.Reconcile(ctx, host.ReconRequest{STAN: nextSTAN(), Day: day, Currency: "156", Time: base.Add(2 * time.Hour)})
		if err != nil {
			t.Fatalf("reconcile %s: %v", day, err)
		}
		return tot
	}
	want := host.Totals{Approved: host.Count{Count: 4, Amount: 65000}, Reversals: host.Count{Count: 2, Amount: 25000},
		Advices: host.Count{Count: 1, Amount: 30000}, NetDebit: 40000}
	if got := ask("2026-11-21"); got != want {
		t.Fatalf("2026-11-21:\n got  %+v\n want %+v", got, want)
	}
	if got := ask("2026-11-22"); got != (host.Totals{Approved: host.Count{Count: 1, Amount: 40000}, NetDebit: 40000}) {
		t.Fatalf("2026-11-22: %+v", got)
	}
	if got := ask("2026-11-20"); got != (host.Totals{}) {
		t.Fatalf("2026-11-20: %+v", got)
	}
	run, err := f.Host.Totals("2026-11-21", linktest.TerminalID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Count != 4 || run.Approved != 65000 || run.Reversed != 25000 || run.Net != 40000 {
		t.Fatalf("running totals %+v disagree with the reconciliation", run)
	}

	// A currency the host does not serve: refused with 12.
	_, err = c.Reconcile(ctx, host.ReconRequest{STAN: nextSTAN(), Day: "2026-11-21", Currency: "840", Time: base})
	var rej *host.RejectedError
	if !errors.As(err, &rej) || rej.MTI != wire.MTIReconResponse || rej.ResponseCode != wire.RCInvalidTransaction || !errors.Is(err, host.ErrRejected) {
		t.Fatalf("unknown currency: %v", err)
	}
	// A day the MMDD of field 15 cannot name is not sent.
	if _, err := c.Reconcile(ctx, host.ReconRequest{STAN: nextSTAN(), Day: "2026-01-02", Currency: "156", Time: base}); !errors.Is(err, host.ErrUnavailable) {
		t.Fatalf("day 10 months back: %v", err)
	}
	if _, err := c.Reconcile(ctx, host.ReconRequest{STAN: nextSTAN(), Day: "21.11.2026", Currency: "156", Time: base}); !errors.Is(err, host.ErrUnavailable) {
		t.Fatalf("malformed day: %v", err)
	}
}

// TestReconciliationMAC: a 0500 whose MAC does not verify (one digit of
// field 15 changed after sealing) gets no answer and the connection stays
// up: the valid 0500 sent after it is the one answered, with the totals.
func TestReconciliationMAC(t *testing.T) {
	now := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	f, _ := reconFixture(t, now)
	r := dialReplayer(t, f)
	r.send(netMgmt(wire.NetSignOn, ""))
	m, err := r.read()
	if err != nil {
		t.Fatal(err)
	}
	var on wire.NetMgmt
	if err := wire.Parse(m, &on); err != nil || on.ResponseCode != wire.RCApproved {
		t.Fatalf("sign-on: %+v %v", on, err)
	}
	r.send(netMgmt(wire.NetEcho, on.Challenge))
	if _, err := r.read(); err != nil {
		t.Fatal(err)
	}

	recon := func(stan string) *wire.Reconciliation {
		return &wire.Reconciliation{MTI: wire.MTIReconRequest, TransmissionDateTime: wire.FormatTransmissionDT(now), STAN: stan,
			SettlementDate: "1121", TerminalID: linktest.TerminalID, SettlementCurrency: "156"}
	}
	forged, err := wire.Build(recon("000901"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := r.codec.Protector.Seal(forged)
	if err != nil {
		t.Fatal(err)
	}
	// MTI 4, bitmaps 32, field 7 10, field 11 6: field 15 starts at 52.
	if string(raw[52:56]) != "1121" {
		t.Fatalf("field 15 not at 52: %q", raw[:60])
	}
	raw[55] = '0'
	if err := r.codec.Framer.WriteFrame(r.conn, raw); err != nil {
		t.Fatal(err)
	}
	r.send(recon("000902"))
	m, err = r.read()
	if err != nil {
		t.Fatal(err)
	}
	var ans wire.Reconciliation
	if err := wire.Parse(m, &ans); err != nil {
		t.Fatal(err)
	}
	if ans.MTI != wire.MTIReconResponse || ans.STAN != "000902" || ans.ResponseCode != wire.RCApproved || ans.SettlementDate != "1121" {
		t.Fatalf("answer %+v: want the 0510 to the valid 0500 (stan 000902)", ans)
	}
	if tot, err := wire.ParseReconTotals(ans); err != nil || tot != (wire.ReconTotals{}) {
		t.Fatalf("totals %+v %v", tot, err)
	}
	// The forged one was read first, and refused for its MAC (the log
	// line is written as the frame is read, before the next one).
	want := `msg="message rejected" component=hostsim terminal=ATM00001 err="wire: message 0500 stan 000901: MAC verification failed (field 128)"`
	if !strings.Contains(f.HostLog.String(), want) {
		t.Fatalf("host log lacks %s:\n%s", want, f.HostLog.String())
	}
}
