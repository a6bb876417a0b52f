package wire

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckTPDU(t *testing.T) {
	for _, tc := range []struct {
		tpdu []byte
		ok   bool
	}{
		{nil, true},
		{[]byte{0x60, 0, 0x10, 0, 0}, true},
		{[]byte{}, false},
		{[]byte{0x60, 0, 0, 0}, false},
		{[]byte{0x60, 0, 0, 0, 0, 0}, false},
		{[]byte{0x61, 0, 0, 0, 0}, false},
	} {
		err := CheckTPDU(tc.tpdu)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadTPDU)) {
			t.Errorf("CheckTPDU(%x) = %v, want ok=%v", tc.tpdu, err, tc.ok)
		}
	}
}

func TestParseTPDU(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		ok   bool
	}{
		{"", nil, true},
		{"6000010000", []byte{0x60, 0, 1, 0, 0}, true},
		{"60000100ab", []byte{0x60, 0, 1, 0, 0xAB}, true},
		{"7000010000", nil, false},
		{"60000100", nil, false},
		{"600001000000", nil, false},
		{"60000100zz", nil, false},
		{"6000010", nil, false},
	} {
		got, err := ParseTPDU(tc.in)
		switch {
		case tc.ok && (err != nil || !bytes.Equal(got, tc.want) || (tc.want == nil) != (got == nil)):
			t.Errorf("ParseTPDU(%q) = %x, %v; want %x", tc.in, got, err, tc.want)
		case !tc.ok && (got != nil || !errors.Is(err, ErrBadTPDU)):
			t.Errorf("ParseTPDU(%q) = %x, %v; want ErrBadTPDU", tc.in, got, err)
		}
	}
}

func TestFramerRefusesBadTPDU(t *testing.T) {
	var b bytes.Buffer
	err := Framer{TPDU: []byte{0x61, 0, 0, 0, 0}}.WriteFrame(&b, []byte("0800"))
	var fe *FrameError
	if !errors.As(err, &fe) || !errors.Is(err, ErrFrameMalformed) || b.Len() != 0 {
		t.Fatalf("err = %v, wrote %d bytes; want a malformed-frame error and nothing written", err, b.Len())
	}
}

func TestAcceptAlso(t *testing.T) {
	a, b := pair(t)
	// b learns of gen2 before a switches: it accepts gen2 and still seals
	// with gen1.
	b.AcceptAlso(gen2)
	if b.Keys() != gen1 {
		t.Fatalf("AcceptAlso changed the current keys to %+v", b.Keys())
	}
	w := sampleWithdrawal()
	if _, err := b.Open(mustSeal(t, a, w)); err != nil {
		t.Fatalf("gen1 message refused: %v", err)
	}
	a.SetKeys(gen2)
	if _, err := b.Open(mustSeal(t, a, w)); err != nil {
		t.Fatalf("gen2 message refused after AcceptAlso: %v", err)
	}
	// a (current gen2, previous gen1) still opens what b seals (gen1).
	if _, err := a.Open(mustSeal(t, b, w)); err != nil {
		t.Fatalf("b no longer seals with gen1: %v", err)
	}
	b.DropPrevious()
	if _, err := b.Open(mustSeal(t, a, w)); !errors.Is(err, ErrMAC) {
		t.Fatalf("gen2 message after DropPrevious: err = %v, want ErrMAC", err)
	}
}

func TestNetMgmtResponse(t *testing.T) {
	req := NetMgmt{MTI: MTINetMgmtRequest, TransmissionDateTime: "1121063015", STAN: "000042",
		TerminalID: "ATM00001", NetMgmtCode: NetKeyChange, AdditionalData: "TAK=...", MACKeyKCV: "ABCDEF"}
	got := req.Response(RCSecurityViolation)
	want := NetMgmt{MTI: MTINetMgmtResponse, TransmissionDateTime: "1121063015", STAN: "000042",
		ResponseCode: RCSecurityViolation, TerminalID: "ATM00001", NetMgmtCode: NetKeyChange}
	if got != want {
		t.Fatalf("Response = %+v\nwant %+v", got, want)
	}
}

func TestWithdrawalResponse(t *testing.T) {
	req := *sampleWithdrawal()
	got := req.Response()
	want := Withdrawal{MTI: MTIFinancialResp, ProcessingCode: req.ProcessingCode, Amount: req.Amount,
		TransmissionDateTime: req.TransmissionDateTime, STAN: req.STAN, TerminalID: req.TerminalID, Currency: req.Currency}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("Response = %+v\nwant %+v", got, want)
	}
	// The answer builds and carries no request-only field.
	m := mustBuild(t, &got)
	for _, id := range []int{12, 13, 32, 37, 43, 52, 62, 120, 121} {
		if m.GetField(id) != nil {
			t.Errorf("0210 carries field %d of the request", id)
		}
	}
}

func TestPeekTerminal(t *testing.T) {
	p := NewProtector(newModule(t), gen1)
	sealed := mustSeal(t, p, sampleWithdrawal())
	tid, err := PeekTerminal(sealed)
	if err != nil || tid != "ATM00001" {
		t.Fatalf("PeekTerminal = %q, %v; want ATM00001", tid, err)
	}
	short := mustSeal(t, p, &NetMgmt{MTI: MTINetMgmtRequest, TransmissionDateTime: "1121063015", STAN: "000001", TerminalID: "ATM1", NetMgmtCode: NetSignOn})
	if tid, err := PeekTerminal(short); err != nil || tid != "ATM1" {
		t.Fatalf("PeekTerminal = %q, %v; want ATM1 (padding removed)", tid, err)
	}
	noTID := mustSeal(t, p, &NetMgmt{MTI: MTINetMgmtRequest, STAN: "000001", NetMgmtCode: NetSignOn})
	for name, raw := range map[string][]byte{"no field 41": noTID, "truncated": sealed[:30], "empty": nil, "garbage": []byte("0200\xff\xff\xff\xff")} {
		tid, err := PeekTerminal(raw)
		var me *MessageError
		if tid != "" || !errors.Is(err, ErrMalformed) || !errors.As(err, &me) {
			t.Errorf("%s: PeekTerminal = %q, %v; want a malformed-message error", name, tid, err)
		}
	}
}

// FuzzPeekTerminal: PeekTerminal never panics, returns a terminal ID or an
// error (never both), and agrees with Open on every message Open accepts.
func FuzzPeekTerminal(f *testing.F) {
	mod := newModule(f)
	p := NewProtector(mod, gen1)
	for _, raw := range seedMessages(f, p) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tid, err := PeekTerminal(data)
		if err != nil && tid != "" {
			t.Fatalf("terminal %q returned with an error", tid)
		}
		m, oerr := p.Open(data)
		if oerr != nil {
			return
		}
		want := ""
		if m.GetField(FieldTerminalID) != nil {
			s, _ := m.GetString(FieldTerminalID)
			want = string(bytes.TrimRight([]byte(s), " "))
		}
		if tid != want {
			t.Fatalf("PeekTerminal = %q, Open gives field 41 %q", tid, want)
		}
	})
}

// TestPeekTerminalSeeds checks that the committed FuzzPeekTerminal corpus
// exists: it holds inputs that once made the module panic or that sit at
// the edges (truncated field 41, bitmap with no fields).
func TestPeekTerminalSeeds(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzPeekTerminal", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no committed seeds for FuzzPeekTerminal: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.HasPrefix(b, []byte("go test fuzz v1\n")) {
			t.Errorf("seed %s is not a fuzz corpus file: %v", f, err)
		}
	}
}
