package phonesim

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/qr"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/pinblock"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the worked example in docs/phone.md")

const docsPath = "../../docs/phone.md"

// TestDocsWorkedExample rebuilds the worked example of docs/phone.md (a
// request and its answer, sealed with the development keys) and fails when
// the page no longer shows exactly these frames; -update-docs rewrites it.
func TestDocsWorkedExample(t *testing.T) {
	cfg, err := LoadConfig("../../configs/phonesim.json")
	if err != nil {
		t.Fatal(err)
	}
	ph, err := NewPhone(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	payload := qr.Payload{TerminalID: "ATM00001", Amount: 50000, Currency: "156",
		Nonce: "6F1C2B8E4D0A93775E21C4B8A0F3D912", Expiry: time.Date(2026, 12, 3, 10, 17, 0, 0, time.UTC),
		MAC: "3A91C7E05B2D48F6"}.String()
	clearBlock, err := pinblock.Format1("123456", bytes.NewReader(bytes.Repeat([]byte{0x5A}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	encBlock, err := ph.m.Encrypt(hsm.AppPINKey, clearBlock)
	if err != nil {
		t.Fatal(err)
	}
	req := wire.Withdrawal{
		MTI: wire.MTIFinancialRequest, ProcessingCode: wire.ProcCashWithdrawal, Amount: wire.FormatAmount(50000),
		TransmissionDateTime: "1203101500", STAN: "000042", LocalTime: "181500", LocalDate: "1203",
		TerminalID: "ATM00001", Currency: "156", PINBlock: encBlock, QRPayload: payload, CustomerID: "13800000001",
		DeviceID: cfg.DeviceID,
	}
	ans := req.Response()
	ans.ResponseCode, ans.AuthCode, ans.RRN = wire.RCApproved, "A1B2C3", "612345678901"

	frame := func(v any) string {
		t.Helper()
		m, err := wire.Build(v)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := ph.Protector().Seal(m)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		h := strings.ToUpper(hex.EncodeToString(append([]byte{byte(len(raw) >> 8), byte(len(raw))}, raw...)))
		for len(h) > 64 {
			b.WriteString(h[:64] + "\n")
			h = h[64:]
		}
		b.WriteString(h + "\n")
		return b.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Clear fields of the request: 3 `010000`, 4 `%s`, 7 `1203101500`, 11 `000042`,\n", req.Amount)
	fmt.Fprintf(&b, "12 `181500`, 13 `1203`, 41 `ATM00001`, 49 `156`, 52 `%X` (the PIN block\n", encBlock)
	fmt.Fprintf(&b, "`%X` under the app PIN key), 62 `%s`\n", clearBlock, payload)
	fmt.Fprintf(&b, "(encrypted), 120 `13800000001` (encrypted), 123 `%s` (the development phone's device ID, encrypted).\n\n", cfg.DeviceID)
	b.WriteString("Request frame (length, then the message; hex):\n\n```\n" + frame(&req) + "```\n\n")
	b.WriteString("Answer: 39 `00`, 38 `A1B2C3`, 37 `612345678901`, the rest echoed.\n\n")
	b.WriteString("Answer frame:\n\n```\n" + frame(&ans) + "```\n")
	want := b.String()

	doc, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- BEGIN GENERATED EXAMPLE -->\n", "<!-- END GENERATED EXAMPLE -->"
	i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("%s lacks the generated example markers", docsPath)
	}
	got := string(doc[i+len(begin) : j])
	if got == want {
		return
	}
	if *updateDocs {
		out := append(append(append([]byte{}, doc[:i+len(begin)]...), want...), doc[j:]...)
		if err := os.WriteFile(docsPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("docs/phone.md's worked example is out of date (go test ./proxyclient/phonesim -run DocsWorkedExample -update-docs):\n%s", want)
}
