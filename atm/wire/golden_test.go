package wire

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var genGolden = flag.Bool("wire.golden", false, "rewrite testdata/golden/seal.txt")

// goldenInputs are the messages of TestSealGolden: every message type of
// the fuzz seeds, the longest encrypted value, and a message with empty
// and space-padded values.
func goldenInputs(t testing.TB) []struct {
	name string
	v    any
} {
	od := OriginalData{MTI: "0200", STAN: "000123", TransmitDT: "1121063015", AcquirerID: "12345678"}.String()
	long := sampleWithdrawal()
	long.CustomerID = strings.Repeat("x", MaxEncryptedPlain)
	long.QRPayload = strings.Repeat("Q", 7)
	odd := &Withdrawal{MTI: MTIFinancialResp, STAN: "000007", ResponseCode: RCApproved, TerminalID: "A", TerminalLocation: " x ", QRPayload: "12345678", CustomerID: "1234567"}
	return []struct {
		name string
		v    any
	}{
		{"0200", sampleWithdrawal()},
		{"0800-signon", &NetMgmt{MTI: MTINetMgmtRequest, TransmissionDateTime: "1121063015", STAN: "000001", TerminalID: "ATM00001", NetMgmtCode: NetSignOn}},
		{"0810-signon", &NetMgmt{MTI: MTINetMgmtResponse, TransmissionDateTime: "1121063015", STAN: "000001", ResponseCode: RCApproved, TerminalID: "ATM00001", NetMgmtCode: NetSignOn,
			AdditionalData: KeyBlock{TAK: bytes.Repeat([]byte{0xA1}, 16), TAKKCV: "ABC123", TEK: bytes.Repeat([]byte{0xB2}, 16), TEKKCV: "DEF456"}.String()}},
		{"0210", &Withdrawal{MTI: MTIFinancialResp, STAN: "000123", ResponseCode: RCApproved, AuthCode: "A1B2C3", TerminalID: "ATM00001", DispenseToken: "NONCE=254611E63B2531576314E86527338D61,TOKENFORMAT=1"}},
		{"0220", &Advice{MTI: MTIAdvice, STAN: "000124", Amount: FormatAmount(50000), TerminalID: "ATM00001", OriginalData: od}},
		{"0420", &Reversal{MTI: MTIReversal, STAN: "000125", Amount: FormatAmount(50000), ResponseCode: ReasonLateResponse, TerminalID: "ATM00001", OriginalData: od,
			ReplacementAmounts: ReplacementAmounts{Transaction: 30000, Settlement: 30000}.String()}},
		{"0500", sampleReconRequest()},
		{"0510", sampleReconResponse(t)},
		{"0200-longest", long},
		{"0210-odd", odd},
		{"0200-device", withDevice()},
	}
}

// TestSealGolden: Seal's output is byte-identical to the committed golden
// output, so peers, fuzz seeds and recorded traffic stay valid. The golden
// file is written (-wire.golden) from sealGeneric, the implementation
// through the iso8583 module, and Seal (the fast path) must give the same
// bytes.
func TestSealGolden(t *testing.T) {
	p := NewProtector(newModule(t), gen1)
	path := filepath.Join("testdata", "golden", "seal.txt")
	var b strings.Builder
	for _, in := range goldenInputs(t) {
		raw := mustSeal(t, p, in.v)
		generic, err := p.sealGeneric(mustBuild(t, in.v))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, generic) {
			t.Errorf("%s: Seal and sealGeneric differ", in.name)
		}
		fmt.Fprintf(&b, "%s %q\n", in.name, generic)
	}
	if *genGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := bufio.NewScanner(strings.NewReader(b.String()))
	exp := bufio.NewScanner(bytes.NewReader(want))
	for exp.Scan() {
		if !got.Scan() {
			t.Fatalf("missing golden line %q", strings.Fields(exp.Text())[0])
		}
		if got.Text() != exp.Text() {
			t.Errorf("Seal output differs from golden for %s", strings.Fields(exp.Text())[0])
		}
	}
	if got.Scan() {
		t.Fatal("more inputs than golden lines")
	}
}
