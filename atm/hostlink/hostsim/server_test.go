package hostsim_test

import (
	"context"
	"errors"
	"github.com/cardless-atm/cardless/atm/host"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/hostlink"
	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/hostlink/internal/linktest"
	"github.com/cardless-atm/cardless/atm/wire"
)

var stanSeq atomic.Uint32

func nextSTAN() string { return wire.FormatSTAN(stanSeq.Add(1)) }

func setup(t *testing.T) (*linktest.Fixture, *hostlink.Client) {
	f := linktest.NewFixture(t)
	return f, linktest.Start(t, f.ClientConfig(t), true)
}

func req(t *testing.T, f *linktest.Fixture, customer, pin string, amount int64) host.AuthRequest {
	return host.AuthRequest{STAN: nextSTAN(), Amount: amount, Currency: "156", CustomerID: customer,
		PINBlock: linktest.PINBlock(t, f.Keys, pin), DeviceID: linktest.Device, DispenseNonce: linktest.Nonce(t), Time: time.Now()}
}

func mustBalance(t *testing.T, h *hostsim.Server, id string) int64 {
	t.Helper()
	b, err := h.Balance(id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func authorize(t *testing.T, c *hostlink.Client, r host.AuthRequest) host.AuthResponse {
	t.Helper()
	resp, err := c.Authorize(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func reversal(r host.AuthRequest, dispensed int64) host.Reversal {
	return host.Reversal{STAN: nextSTAN(), Original: host.OriginalData{STAN: r.STAN, Time: r.Time},
		Amount: r.Amount, Dispensed: dispensed, Currency: "156", Reason: wire.ReasonPartialDispense}
}

func TestDeclines(t *testing.T) {
	f, c := setup(t)
	cases := []struct {
		name, customer, pin string
		amount              int64
		want                string
	}{
		{"unknown customer", "C-NOBODY", "1234", 10000, wire.RCInvalidAccount},
		{"blocked", "C-BLOCKED", "1111", 10000, wire.RCDoNotHonour},
		{"wrong PIN", "C-ALICE", "9999", 10000, wire.RCIncorrectPIN},
		{"zero amount", "C-ALICE", "1234", 0, wire.RCInvalidAmount},
		{"over per-transaction limit", "C-ALICE", "1234", 200001, wire.RCExceedsLimit},
		{"insufficient funds", "C-BOB", "4321", 5001, wire.RCInsufficientFunds},
		{"forced decline", hostsim.MagicDeclinePrefix + "91", "1234", 100, wire.RCIssuerInoperative},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before int64
			if tc.customer != "C-NOBODY" && !strings.HasPrefix(tc.customer, "FAULT") {
				before = mustBalance(t, f.Host, tc.customer)
			}
			resp := authorize(t, c, req(t, f, tc.customer, tc.pin, tc.amount))
			if resp.ResponseCode != tc.want {
				t.Fatalf("response code %s, want %s", resp.ResponseCode, tc.want)
			}
			if resp.Token != "" || resp.AuthCode != "" {
				t.Fatalf("declined answer carries a token or auth code: %+v", resp)
			}
			if before != 0 && mustBalance(t, f.Host, tc.customer) != before {
				t.Fatal("a decline changed the balance")
			}
		})
	}
}

func TestDailyLimit(t *testing.T) {
	f, c := setup(t)
	// Alice: daily limit 3000.00, per transaction 2000.00.
	if r := authorize(t, c, req(t, f, "C-ALICE", "1234", 200000)); !r.Approved() {
		t.Fatalf("first withdrawal: %s", r.ResponseCode)
	}
	r2 := req(t, f, "C-ALICE", "1234", 150000)
	if r := authorize(t, c, r2); r.ResponseCode != wire.RCExceedsLimit {
		t.Fatalf("second withdrawal: %s, want 61", r.ResponseCode)
	}
	if r := authorize(t, c, req(t, f, "C-ALICE", "1234", 100000)); !r.Approved() {
		t.Fatalf("withdrawal up to the limit: %s", r.ResponseCode)
	}
}

func TestPINTriesExceeded(t *testing.T) {
	f, c := setup(t)
	codes := []string{}
	for range 3 {
		codes = append(codes, authorize(t, c, req(t, f, "C-PIN", "0000", 100)).ResponseCode)
	}
	codes = append(codes, authorize(t, c, req(t, f, "C-PIN", "2222", 100)).ResponseCode)
	want := []string{"55", "55", "75", "75"}
	if strings.Join(codes, ",") != strings.Join(want, ",") {
		t.Fatalf("codes %v, want %v", codes, want)
	}
}

func TestDuplicateAuthorizationDebitsOnce(t *testing.T) {
	f, c := setup(t)
	before := mustBalance(t, f.Host, "C-ALICE")
	r := req(t, f, "C-ALICE", "1234", 10000)
	a1 := authorize(t, c, r)
	a2 := authorize(t, c, r)
	if !a1.Approved() || a1 != a2 {
		t.Fatalf("duplicate answered differently: %+v vs %+v", a1, a2)
	}
	if got := mustBalance(t, f.Host, "C-ALICE"); got != before-10000 {
		t.Fatalf("balance %d, want one debit (%d)", got, before-10000)
	}
	// Same STAN, other content: 94, nothing debited.
	other := r
	other.Amount = 20000
	if a := authorize(t, c, other); a.ResponseCode != wire.RCDuplicate {
		t.Fatalf("STAN reuse answered %s, want 94", a.ResponseCode)
	}
	if got := mustBalance(t, f.Host, "C-ALICE"); got != before-10000 {
		t.Fatalf("balance %d after STAN reuse", got)
	}
	// The same STAN at another transmission time is another transaction:
	// the terminal's STAN wraps after 999999 and must not lock it out.
	later := r
	later.Time = r.Time.Add(26 * time.Hour)
	later.DispenseNonce = linktest.Nonce(t)
	if a := authorize(t, c, later); !a.Approved() {
		t.Fatalf("wrapped STAN answered %s, want an approval", a.ResponseCode)
	}
	if got := mustBalance(t, f.Host, "C-ALICE"); got != before-20000 {
		t.Fatalf("balance %d, want two debits", got)
	}
}

func TestCompletionAndReversalExactlyOnce(t *testing.T) {
	f, c := setup(t)
	ctx := context.Background()
	before := mustBalance(t, f.Host, "C-ALICE")

	r1 := req(t, f, "C-ALICE", "1234", 10000)
	authorize(t, c, r1)
	adv := host.Advice{STAN: nextSTAN(), Original: host.OriginalData{STAN: r1.STAN, Time: r1.Time},
		Amount: 10000, Currency: "156"}
	for i := range 2 {
		if err := c.Advise(ctx, adv); err != nil {
			t.Fatalf("advice send %d: %v", i+1, err)
		}
	}
	if got := mustBalance(t, f.Host, "C-ALICE"); got != before-10000 {
		t.Fatalf("balance %d after completion", got)
	}

	// Partial reversal: 300.00 authorized, 100.00 paid out: 200.00 back, once.
	r2 := req(t, f, "C-ALICE", "1234", 30000)
	authorize(t, c, r2)
	rev := reversal(r2, 10000)
	for i := range 2 {
		if err := c.Reverse(ctx, rev); err != nil {
			t.Fatalf("reversal send %d: %v", i+1, err)
		}
	}
	if got, want := mustBalance(t, f.Host, "C-ALICE"), before-10000-10000; got != want {
		t.Fatalf("balance %d after partial reversal, want %d", got, want)
	}

	// Full reversal.
	r3 := req(t, f, "C-ALICE", "1234", 5000)
	authorize(t, c, r3)
	for range 2 {
		if err := c.Reverse(ctx, reversal(r3, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := mustBalance(t, f.Host, "C-ALICE"), before-20000; got != want {
		t.Fatalf("balance %d after full reversal, want %d", got, want)
	}

	day := time.Now().UTC().Format("2006-01-02")
	tot, err := f.Host.Totals(day, linktest.TerminalID)
	if err != nil {
		t.Fatal(err)
	}
	want := hostsim.Totals{Count: 3, Approved: 45000, Reversed: 25000, Net: 20000}
	if tot != want {
		t.Fatalf("totals %+v, want %+v", tot, want)
	}
	debits, err := f.Host.Debits()
	if err != nil {
		t.Fatal(err)
	}
	wantDebits := []hostsim.Debit{
		{Terminal: linktest.TerminalID, STAN: r1.STAN, Nonce: r1.DispenseNonce, Net: 10000},
		{Terminal: linktest.TerminalID, STAN: r2.STAN, Nonce: r2.DispenseNonce, Net: 10000},
		{Terminal: linktest.TerminalID, STAN: r3.STAN, Nonce: r3.DispenseNonce, Net: 0},
	}
	if !slices.Equal(debits, wantDebits) {
		t.Fatalf("Debits\n%+v\nwant\n%+v", debits, wantDebits)
	}
}

func TestReversalOfUnknownOriginal(t *testing.T) {
	f, c := setup(t)
	r := req(t, f, "C-ALICE", "1234", 10000)
	if err := c.Reverse(context.Background(), reversal(r, 0)); err != nil {
		t.Fatalf("reversal of an unknown original must be acknowledged: %v", err)
	}
	if !strings.Contains(f.HostLog.String(), "reversal for an unknown original") {
		t.Fatal("unknown original not logged")
	}
	// The 0200 arriving late is not approved.
	if a := authorize(t, c, r); a.Approved() {
		t.Fatal("a 0200 arriving after its reversal was approved")
	}
	if got := mustBalance(t, f.Host, "C-ALICE"); got != 500000 {
		t.Fatalf("balance %d changed", got)
	}
	// A completion for an unknown original is acknowledged too.
	adv := host.Advice{STAN: nextSTAN(), Original: host.OriginalData{STAN: "999999", Time: time.Now()},
		Amount: 100, Currency: "156"}
	if err := c.Advise(context.Background(), adv); err != nil {
		t.Fatal(err)
	}
}

func TestRejectedReversal(t *testing.T) {
	_, c := setup(t)
	// The host only knows 0200 originals: a reversal of a "0100" is refused (12).
	rev := host.Reversal{STAN: nextSTAN(), Original: host.OriginalData{MTI: "0100", STAN: "000001", Time: time.Now()},
		Amount: 100, Currency: "156", Reason: wire.ReasonLateResponse}
	err := c.Reverse(context.Background(), rev)
	var re *host.RejectedError
	if !errors.Is(err, host.ErrRejected) || !errors.As(err, &re) || re.ResponseCode != wire.RCInvalidTransaction || re.MTI != wire.MTIReversalResp {
		t.Fatalf("err = %v, want a RejectedError 0430/12", err)
	}
}

func TestRestartKeepsBalances(t *testing.T) {
	f, c := setup(t)
	authorize(t, c, req(t, f, "C-ALICE", "1234", 12345))
	if err := f.Host.Close(); err != nil {
		t.Fatal(err)
	}
	f.StartHost(t)
	if got := mustBalance(t, f.Host, "C-ALICE"); got != 500000-12345 {
		t.Fatalf("balance after restart %d, want %d (customers must not be reseeded)", got, 500000-12345)
	}
	day := time.Now().UTC().Format("2006-01-02")
	f.Host.Close()
	tot, err := hostsim.ReadTotals(f.Config.DBPath, day, linktest.TerminalID)
	if err != nil {
		t.Fatal(err)
	}
	if tot.Count != 1 || tot.Net != 12345 {
		t.Fatalf("totals %+v", tot)
	}
}

func TestSetFaultsDecline(t *testing.T) {
	f, c := setup(t)
	f.Host.SetFaults(hostsim.Faults{Decline: wire.RCSystemMalfunction})
	if a := authorize(t, c, req(t, f, "C-ALICE", "1234", 100)); a.ResponseCode != wire.RCSystemMalfunction {
		t.Fatalf("code %s", a.ResponseCode)
	}
	f.Host.SetFaults(hostsim.Faults{})
	if a := authorize(t, c, req(t, f, "C-ALICE", "1234", 100)); !a.Approved() {
		t.Fatalf("code %s", a.ResponseCode)
	}
}

func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.json")
	bad := `{"dbPath":"","terminals":{"T1":{"macKey":"00","dataKey":"zz"}},"appPinKey":"","tokenKey":"01",
	"customers":[{"id":"A","pin":"12"}],"currencies":{"15":{"alpha":"X","exponent":9}},"faults":{"slowAnswer":"soon"},
	"binding":{"codeTtl":"20s","maxTries":11,"maxCodesPerDay":-1,"devices":[{"customer":"B","device":"abc"}]}}`
	if err := os.WriteFile(p, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := hostsim.LoadConfig(p); err == nil || !strings.Contains(err.Error(), "slowAnswer") {
		t.Fatalf("bad duration not named: %v", err)
	}
	bad = strings.Replace(bad, `"soon"`, `"2s"`, 1)
	os.WriteFile(p, []byte(bad), 0o600)
	_, err := hostsim.LoadConfig(p)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"dbPath", "T1.macKey", "T1.dataKey", "appPinKey", "tokenKey", "customers[0].pin", `"15"`, "alpha", "exponent",
		"binding.codeTtl", "binding.maxTries", "binding.maxCodesPerDay", "binding.devices[0].customer", "binding.devices[0].device"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	os.WriteFile(p, []byte(`{"unknownField":1}`), 0o600)
	if _, err := hostsim.LoadConfig(p); err == nil || !strings.Contains(err.Error(), "unknownField") {
		t.Fatalf("unknown field accepted: %v", err)
	}
	for b, want := range map[string]string{`{"binding":{"codeTtl":"5m","bogus":1}}`: "bogus", `{"binding":{"codeTtl":"soon"}}`: "binding.codeTtl"} {
		os.WriteFile(p, []byte(b), 0o600)
		if _, err := hostsim.LoadConfig(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want an error naming %s", b, err, want)
		}
	}
}

func TestShippedConfigLoads(t *testing.T) {
	c, err := hostsim.LoadConfig(filepath.Join("..", "..", "..", "configs", "hostsim.json"))
	if err != nil {
		t.Fatal(err)
	}
	c.DBPath = filepath.Join(t.TempDir(), "host.db")
	s, err := hostsim.NewServer(c)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// TestAdviceAndReversalExclude: an authorization ends either with its
// completion advice or with its reversal, never both. The host refuses
// (12, with an alarm in its log) a reversal after the completion, which
// would credit cash the customer took, and a completion after a reversal;
// the balance is untouched by the refused one.
func TestAdviceAndReversalExclude(t *testing.T) {
	f, c := setup(t)
	ctx := context.Background()
	before := mustBalance(t, f.Host, "C-ALICE")

	r1 := req(t, f, "C-ALICE", "1234", 10000)
	authorize(t, c, r1)
	if err := c.Advise(ctx, host.Advice{STAN: nextSTAN(), Original: host.OriginalData{STAN: r1.STAN, Time: r1.Time},
		Amount: 10000, Currency: "156"}); err != nil {
		t.Fatal(err)
	}
	var rej *host.RejectedError
	if err := c.Reverse(ctx, reversal(r1, 0)); !errors.As(err, &rej) || rej.ResponseCode != wire.RCInvalidTransaction {
		t.Fatalf("reversal after completion: %v, want a rejection 12", err)
	}
	if got := mustBalance(t, f.Host, "C-ALICE"); got != before-10000 {
		t.Fatalf("balance %d after a refused reversal, want %d", got, before-10000)
	}

	r2 := req(t, f, "C-ALICE", "1234", 20000)
	authorize(t, c, r2)
	if err := c.Reverse(ctx, reversal(r2, 0)); err != nil {
		t.Fatal(err)
	}
	err := c.Advise(ctx, host.Advice{STAN: nextSTAN(), Original: host.OriginalData{STAN: r2.STAN, Time: r2.Time},
		Amount: 20000, Currency: "156"})
	if !errors.As(err, &rej) || rej.ResponseCode != wire.RCInvalidTransaction {
		t.Fatalf("completion after reversal: %v, want a rejection 12", err)
	}
	if got := mustBalance(t, f.Host, "C-ALICE"); got != before-10000 {
		t.Fatalf("balance %d, want %d", got, before-10000)
	}
}
