package wire

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/hsm"
)

func sampleReconRequest() *Reconciliation {
	return &Reconciliation{MTI: MTIReconRequest, TransmissionDateTime: "1122010203", STAN: "000126",
		SettlementDate: "1121", AcquirerID: "12345678", TerminalID: "ATM00001", SettlementCurrency: "156"}
}

func sampleReconResponse(tb testing.TB) *Reconciliation {
	tb.Helper()
	r := sampleReconRequest().Response()
	r.ResponseCode = RCApproved
	t := ReconTotals{Approved: Total{Count: 3, Amount: 90000}, Reversals: Total{Count: 1, Amount: 20000},
		Advices: Total{Count: 2, Amount: 70000}, NetDebit: 70000}
	if err := t.Put(&r); err != nil {
		tb.Fatal(err)
	}
	return &r
}

// TestReconciliationOnTheWire: a 0500 and its 0510 are sealed with the
// link's MAC key (not the network-management one), open on the other end
// with every field as sent, and the totals read back exactly. A changed
// total fails the MAC.
func TestReconciliationOnTheWire(t *testing.T) {
	a, b := pair(t)
	for _, v := range []*Reconciliation{sampleReconRequest(), sampleReconResponse(t)} {
		raw := mustSeal(t, a, v)
		m, err := b.Open(raw)
		if err != nil {
			t.Fatalf("%s: %v", v.MTI, err)
		}
		var got Reconciliation
		if err := Parse(m, &got); err != nil {
			t.Fatal(err)
		}
		if got.MACKeyKCV != mustKCV(t, "tak.1") {
			t.Fatalf("%s sealed with KCV %s, want the MAC key's", v.MTI, got.MACKeyKCV)
		}
		want := *v
		want.MACKeyKCV = got.MACKeyKCV
		if got != want {
			t.Fatalf("%s opened as\n %+v\nwant\n %+v", v.MTI, got, want)
		}
		if v.MTI == MTIReconResponse {
			tot, err := ParseReconTotals(got)
			if err != nil {
				t.Fatal(err)
			}
			if tot != (ReconTotals{Approved: Total{3, 90000}, Reversals: Total{1, 20000}, Advices: Total{2, 70000}, NetDebit: 70000}) {
				t.Fatalf("totals %+v", tot)
			}
			// Field 88 is "0000000000090000" on the wire: one digit changed
			// must not verify.
			i := strings.Index(string(raw), "0000000000090000")
			if i < 0 {
				t.Fatal("field 88 not found on the wire")
			}
			forged := []byte(string(raw))
			forged[i+11] = '8'
			if _, err := b.Open(forged); !errors.Is(err, ErrMAC) {
				t.Fatalf("forged total: %v, want ErrMAC", err)
			}
		}
	}
}

func mustKCV(tb testing.TB, key string) string {
	tb.Helper()
	m := newModule(tb)
	kcv, err := m.KCV(hsm.KeyName(key))
	if err != nil {
		tb.Fatal(err)
	}
	return kcv
}

// TestReconTotalsFields: the exact field values Put writes, and every
// malformed field refused by ParseReconTotals.
func TestReconTotalsFields(t *testing.T) {
	r := sampleReconResponse(t)
	want := Reconciliation{DebitsNumber: "0000000003", DebitsAmount: "0000000000090000", DebitsReversalNumber: "0000000001",
		DebitsReversalAmount: "0000000000020000", AdviceTotals: "0000000002" + "0000000000070000", NetSettlement: "D0000000000070000"}
	got := Reconciliation{DebitsNumber: r.DebitsNumber, DebitsAmount: r.DebitsAmount, DebitsReversalNumber: r.DebitsReversalNumber,
		DebitsReversalAmount: r.DebitsReversalAmount, AdviceTotals: r.AdviceTotals, NetSettlement: r.NetSettlement}
	if got != want {
		t.Fatalf("fields %+v\nwant %+v", got, want)
	}
	for name, mutate := range map[string]func(*Reconciliation){
		"76 missing":      func(r *Reconciliation) { r.DebitsNumber = "" },
		"88 short":        func(r *Reconciliation) { r.DebitsAmount = "90000" },
		"77 letters":      func(r *Reconciliation) { r.DebitsReversalNumber = "00000000O1" },
		"89 sign":         func(r *Reconciliation) { r.DebitsReversalAmount = "-000000000020000" },
		"124 short":       func(r *Reconciliation) { r.AdviceTotals = "0000000002" },
		"124 letters":     func(r *Reconciliation) { r.AdviceTotals = "0000000002000000000007000X" },
		"97 missing":      func(r *Reconciliation) { r.NetSettlement = "" },
		"97 no sign":      func(r *Reconciliation) { r.NetSettlement = "00000000000070000" },
		"97 minus":        func(r *Reconciliation) { r.NetSettlement = "-0000000000070000" },
		"97 credit of 0":  func(r *Reconciliation) { r.NetSettlement = "C0000000000000000" },
		"97 lower d":      func(r *Reconciliation) { r.NetSettlement = "d0000000000070000" },
		"97 one too long": func(r *Reconciliation) { r.NetSettlement = "D00000000000070000" },
	} {
		c := *r
		mutate(&c)
		if _, err := ParseReconTotals(c); !errors.Is(err, ErrFieldFormat) {
			t.Errorf("%s: %v, want ErrFieldFormat", name, err)
		}
	}
	credit := ReconTotals{NetDebit: -5}
	var c Reconciliation
	if err := credit.Put(&c); err != nil || c.NetSettlement != "C0000000000000005" {
		t.Fatalf("net credit: %q %v", c.NetSettlement, err)
	}
	for _, bad := range []ReconTotals{{Approved: Total{Count: -1}}, {Advices: Total{Amount: maxReconAmount + 1}},
		{Reversals: Total{Count: maxReconCount + 1}}, {NetDebit: -maxReconAmount - 1}} {
		if err := bad.Put(&c); !errors.Is(err, ErrFieldFormat) {
			t.Errorf("Put(%+v): %v", bad, err)
		}
	}
}

// TestSettlementDateYear: field 15 has no year; the receiver takes the
// one nearest its own date in its zone.
func TestSettlementDateYear(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mmdd string
		now  time.Time
		zone *time.Location
		want string
	}{
		{"1231", time.Date(2027, 1, 1, 3, 0, 0, 0, time.UTC), time.UTC, "2026-12-31"},
		{"0101", time.Date(2026, 12, 31, 22, 0, 0, 0, time.UTC), time.UTC, "2027-01-01"},
		{"1121", time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), time.UTC, "2026-11-21"},
		// 2026-12-31 17:00 UTC is already 2027-01-01 in Shanghai: "0101" is today there.
		{"0101", time.Date(2026, 12, 31, 17, 0, 0, 0, time.UTC), shanghai, "2027-01-01"},
		{"0229", time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC), time.UTC, "2028-02-29"},
	} {
		got, err := ParseSettlementDate(c.mmdd, c.now, c.zone)
		if err != nil || got != c.want {
			t.Errorf("ParseSettlementDate(%s, %v): %q %v, want %s", c.mmdd, c.now, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "121", "12311", "1332", "0230", "0229", "12a1"} {
		if _, err := ParseSettlementDate(bad, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), nil); !errors.Is(err, ErrFieldFormat) {
			t.Errorf("ParseSettlementDate(%q): %v", bad, err)
		}
	}
	if s, err := FormatSettlementDate("2026-12-31"); err != nil || s != "1231" {
		t.Fatalf("FormatSettlementDate: %q %v", s, err)
	}
	if _, err := FormatSettlementDate("31.12.2026"); !errors.Is(err, ErrFieldFormat) {
		t.Fatal("bad day formatted")
	}
}

// FuzzParseReconTotals: the totals parser never panics, and totals it
// accepts are written back by Put into exactly the fields it read.
func FuzzParseReconTotals(f *testing.F) {
	r := sampleReconResponse(f)
	f.Add(r.DebitsNumber, r.DebitsAmount, r.DebitsReversalNumber, r.DebitsReversalAmount, r.AdviceTotals, r.NetSettlement)
	f.Add("0000000000", "0000000000000000", "0000000000", "0000000000000000", "00000000000000000000000000", "C0000000000000001")
	f.Fuzz(func(t *testing.T, n76, a88, n77, a89, f123, f97 string) {
		in := Reconciliation{DebitsNumber: n76, DebitsAmount: a88, DebitsReversalNumber: n77, DebitsReversalAmount: a89,
			AdviceTotals: f123, NetSettlement: f97}
		tot, err := ParseReconTotals(in)
		if err != nil {
			return
		}
		var out Reconciliation
		if err := tot.Put(&out); err != nil {
			t.Fatalf("accepted totals %+v cannot be written: %v", tot, err)
		}
		if out != in {
			t.Fatalf("%+v parsed as %+v, written as %+v", in, tot, out)
		}
	})
}

// FuzzParseSettlementDate: a field 15 it accepts formats back to itself.
func FuzzParseSettlementDate(f *testing.F) {
	f.Add("1231", int64(1798761600))
	f.Add("0229", int64(1835481600))
	f.Fuzz(func(t *testing.T, s string, unix int64) {
		now := time.Unix(unix%(1<<40), 0)
		day, err := ParseSettlementDate(s, now, time.UTC)
		if err != nil {
			return
		}
		back, err := FormatSettlementDate(day)
		if err != nil || back != s {
			t.Fatalf("%q read as %s, formats as %q (%v)", s, day, back, err)
		}
	})
}
