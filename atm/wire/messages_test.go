package wire

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestOriginalData(t *testing.T) {
	od := OriginalData{MTI: "0200", STAN: "000123", TransmitDT: "1121063015", AcquirerID: "12345678"}
	if err := od.Validate(); err != nil {
		t.Fatal(err)
	}
	s := od.String()
	if s != "0200000123112106301500012345678"+"00000000000" {
		t.Fatalf("field 90 = %q", s)
	}
	got, err := ParseOriginalData(s)
	if err != nil {
		t.Fatal(err)
	}
	want := od
	want.AcquirerID, want.ForwardingID = "00012345678", "00000000000"
	if got != want {
		t.Fatalf("got %+v want %+v", got, want)
	}
	for _, bad := range []string{"", s[:41], s + "0", strings.Replace(s, "0", "A", 1)} {
		if _, err := ParseOriginalData(bad); !errors.Is(err, ErrFieldFormat) {
			t.Errorf("ParseOriginalData(%q): %v", bad, err)
		}
	}
	if err := (OriginalData{MTI: "200", STAN: "000123", TransmitDT: "1121063015"}).Validate(); !errors.Is(err, ErrFieldFormat) {
		t.Fatal("short MTI accepted")
	}
}

func TestReplacementAmounts(t *testing.T) {
	r := ReplacementAmounts{Transaction: 30000, Settlement: 30000}
	s := r.String()
	if len(s) != 42 || s != "000000030000000000030000C00000000C00000000" {
		t.Fatalf("field 95 = %q", s)
	}
	got, err := ParseReplacementAmounts(s)
	if err != nil || got != r {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := ParseReplacementAmounts("000000030000000000030000D00000100C00000000"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", s[:41], strings.Replace(s, "C", "X", 1), "00000003000A" + s[12:]} {
		if _, err := ParseReplacementAmounts(bad); !errors.Is(err, ErrFieldFormat) {
			t.Errorf("ParseReplacementAmounts(%q): %v", bad, err)
		}
	}
}

func TestKeyBlock(t *testing.T) {
	k := KeyBlock{TAK: bytes.Repeat([]byte{0xA1}, 16), TAKKCV: "08D7B4", TEK: bytes.Repeat([]byte{0x0F}, 24), TEKKCV: "ABCDEF"}
	s := k.String()
	if !strings.HasPrefix(s, "TAK=A1A1") || !strings.Contains(s, ";TAKKCV=08D7B4;TEK=0F0F") || !strings.HasSuffix(s, ";TEKKCV=ABCDEF") {
		t.Fatalf("key block %q", s)
	}
	got, err := ParseKeyBlock(s)
	if err != nil || !bytes.Equal(got.TAK, k.TAK) || !bytes.Equal(got.TEK, k.TEK) || got.TAKKCV != k.TAKKCV || got.TEKKCV != k.TEKKCV {
		t.Fatalf("got %+v, %v", got, err)
	}
	for _, bad := range []string{"", "TAK=00", strings.ToLower(s), strings.Replace(s, "TEK=", "TPK=", 1), s + ";X=1",
		strings.Replace(s, "08D7B4", "08D7B", 1), strings.Replace(s, "TAK=A1", "TAK=A", 1)} {
		_, err := ParseKeyBlock(bad)
		if !errors.Is(err, ErrFieldFormat) {
			t.Errorf("ParseKeyBlock accepted a bad block: %v", err)
		}
		if err != nil && strings.Contains(err.Error(), "A1A1") {
			t.Errorf("error leaks key material: %v", err)
		}
	}
}

func TestFormatHelpers(t *testing.T) {
	if got := FormatAmount(50000); got != "000000050000" {
		t.Fatal(got)
	}
	if n, err := ParseAmount("000000050000"); err != nil || n != 50000 {
		t.Fatal(n, err)
	}
	if _, err := ParseAmount("5000"); !errors.Is(err, ErrFieldFormat) {
		t.Fatal(err)
	}
	if got := FormatSTAN(1000123); got != "000123" {
		t.Fatal(got)
	}
	if got := FormatTransmissionDT(testTime); got != "1121063015" {
		t.Fatal(got)
	}
	if FormatLocalTime(testTime) != "063015" || FormatLocalDate(testTime) != "1121" {
		t.Fatal("local time/date")
	}
}

func TestNextSTAN(t *testing.T) {
	var n atomic.Uint32
	n.Store(999996)
	for i, want := range []string{"999998", "999999", "000001", "000002"} {
		if got := NextSTAN(&n); got != want {
			t.Fatalf("wrap call %d: %s, want %s", i+1, got, want)
		}
	}
	// Never 000000, wherever the counter starts (even at the uint32 wrap).
	for _, start := range []uint32{0, 999998, 999999, 1999997, 1999998, math.MaxUint32 - 1, math.MaxUint32} {
		n.Store(start)
		if got := NextSTAN(&n); got == "000000" || len(got) != 6 || !IsDigits(got) {
			t.Errorf("after %d: %q", start, got)
		}
	}
}

func TestIsDigits(t *testing.T) {
	for s, want := range map[string]bool{"": true, "0123456789": true, "12a": false, " 1": false, "-1": false, "\u0661": false} {
		if IsDigits(s) != want || IsDigits([]byte(s)) != want {
			t.Errorf("IsDigits(%q) != %v", s, want)
		}
	}
}

func TestSpecEncodings(t *testing.T) {
	m := NewMessage(MTINetMgmtRequest)
	m.Field(FieldSTAN, "000001")
	m.Field(FieldTerminalID, "ATM1")
	m.BinaryField(FieldMAC64, []byte{1, 2, 3, 4, 5, 6, 7, 0xAB})
	raw, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	// Primary bitmap only (no field above 64): 16 hex digits; 41 space
	// padded; MAC as 16 upper-case hex digits.
	want := "0800" + "0020000000800001" + "000001" + "ATM1    " + "01020304050607AB"
	if string(raw) != want {
		t.Fatalf("packed\n got %s\nwant %s", raw, want)
	}
	m.Field(FieldNetMgmtCode, NetEcho)
	raw, err = m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), "0800"+"8020000000800001"+"0400000000000000") {
		t.Fatalf("secondary bitmap missing: %s", raw)
	}
	for _, id := range []int{FieldQRPayload, FieldCustomerID, FieldDeviceID, FieldDispenseToken, FieldAdditionalData} {
		m := NewMessage("0200")
		if err := m.Field(id, strings.Repeat("A", MaxVarLen)); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Pack(); err != nil {
			t.Fatalf("field %d cannot hold %d chars: %v", id, MaxVarLen, err)
		}
	}
}

func TestParseTransmissionDT(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tt := range []struct {
		field, now, want string
	}{
		{"1231235959", "2027-01-01T00:00:01Z", "2026-12-31T23:59:59Z"}, // sent last year
		{"0101000001", "2026-12-31T23:59:59Z", "2027-01-01T00:00:01Z"}, // sender's clock ahead
		{"0229235950", "2028-02-29T23:59:55Z", "2028-02-29T23:59:50Z"}, // leap day
		{"1121090000", "2026-11-21T09:00:00Z", "2026-11-21T09:00:00Z"},
	} {
		got, err := ParseTransmissionDT(tt.field, at(tt.now))
		if err != nil || !got.Equal(at(tt.want)) {
			t.Errorf("ParseTransmissionDT(%s, %s) = %v, %v; want %s", tt.field, tt.now, got, err, tt.want)
		}
		if back := FormatTransmissionDT(got); err == nil && back != tt.field {
			t.Errorf("round trip %s -> %s", tt.field, back)
		}
	}
	for _, bad := range []string{"", "123123595", "12312359599", "1231a35959", "1332000000", "0229120000"} {
		if _, err := ParseTransmissionDT(bad, at("2026-12-03T00:00:00Z")); err == nil {
			t.Errorf("ParseTransmissionDT(%q) accepted", bad)
		}
	}
}

func TestAnchor(t *testing.T) {
	a := Anchor{JournalSeq: 120, STAN: "000050"}
	if got := a.String(); got != "JSEQ=000000000120;STAN=000050" {
		t.Fatalf("String %q", got)
	}
	if b, err := ParseAnchor(a.String()); err != nil || b != a {
		t.Fatalf("ParseAnchor %+v %v", b, err)
	}
	for _, bad := range []string{"", "JSEQ=120", "JSEQ=000000000120;STAN=50", "JSEQ=00000000012X;STAN=000050", "STAN=000050;JSEQ=000000000120"} {
		if _, err := ParseAnchor(bad); err == nil {
			t.Errorf("ParseAnchor(%q) accepted", bad)
		}
	}
	for _, tt := range []struct {
		a, b   string
		behind bool
	}{
		{"000040", "000050", true},
		{"000050", "000050", false},
		{"000060", "000050", false},
		{"999990", "000005", true}, // the host's STAN wrapped past the terminal's
		{"000005", "999990", false},
		{"000000", "000050", false}, // nothing allocated: not evidence
		{"000040", "", false},
	} {
		if got := STANBehind(tt.a, tt.b); got != tt.behind {
			t.Errorf("STANBehind(%s, %s) = %v", tt.a, tt.b, got)
		}
	}
}
