package qr_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/qr"
	"github.com/cardless-atm/cardless/hsm"
)

func macer(t testing.TB) qr.Macer {
	m := hsm.NewSoft()
	t.Cleanup(func() { m.Close() })
	// Development key, odd parity: the published KCV test key.
	if _, err := m.ImportClearKey(hsm.QRMAC, []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}); err != nil {
		t.Fatal(err)
	}
	return func(d []byte) ([]byte, error) { return m.GenerateMAC(hsm.QRMAC, d, hsm.PaddingMethod2) }
}

func sample() qr.Payload {
	return qr.Payload{TerminalID: "ATM00001", Amount: 50000, Currency: "156",
		Nonce: "0123456789ABCDEF0123456789ABCDEF", Expiry: time.Unix(1795000000, 0).UTC()}
}

func TestSignParseVerify(t *testing.T) {
	mac := macer(t)
	p := sample()
	text, err := qr.Sign(&p, mac)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text, "CLW1:ATM00001:50000:156:0123456789ABCDEF0123456789ABCDEF:1795000000:") || len(text) != 84 {
		t.Fatalf("payload %q", text)
	}
	got, err := qr.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if got != p {
		t.Fatalf("parsed %+v, want %+v", got, p)
	}
	if err := qr.Verify(got, mac); err != nil {
		t.Fatal(err)
	}
}

func TestTamperedFieldsFailMAC(t *testing.T) {
	mac := macer(t)
	p := sample()
	text, _ := qr.Sign(&p, mac)
	for _, tamper := range []func(string) string{
		func(s string) string { return strings.Replace(s, ":50000:", ":90000:", 1) },
		func(s string) string { return strings.Replace(s, "ATM00001", "ATM00002", 1) },
		func(s string) string { return strings.Replace(s, ":156:", ":840:", 1) },
		func(s string) string { return strings.Replace(s, ":1795000000:", ":1795009999:", 1) },
		func(s string) string { return strings.Replace(s, "0123456789ABCDEF0123", "1123456789ABCDEF0123", 1) },
	} {
		bad, err := qr.Parse(tamper(text))
		if err != nil {
			t.Fatal(err)
		}
		if err := qr.Verify(bad, mac); !errors.Is(err, qr.ErrMAC) {
			t.Errorf("tampered %q verified: %v", tamper(text), err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good := "CLW1:ATM00001:50000:156:0123456789ABCDEF0123456789ABCDEF:1795000000:0011223344556677"
	if _, err := qr.Parse(good); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"",
		"CLW2:ATM00001:50000:156:0123456789ABCDEF0123456789ABCDEF:1795000000:0011223344556677",
		"CLW1:atm00001:50000:156:0123456789ABCDEF0123456789ABCDEF:1795000000:0011223344556677",
		"CLW1:ATM00001:050000:156:0123456789ABCDEF0123456789ABCDEF:1795000000:0011223344556677",
		"CLW1:ATM00001:0:156:0123456789ABCDEF0123456789ABCDEF:1795000000:0011223344556677",
		"CLW1:ATM00001:-5:156:0123456789ABCDEF0123456789ABCDEF:1795000000:0011223344556677",
		"CLW1:ATM00001:50000:15:0123456789ABCDEF0123456789ABCDEF:1795000000:0011223344556677",
		"CLW1:ATM00001:50000:156:0123456789abcdef0123456789ABCDEF:1795000000:0011223344556677",
		"CLW1:ATM00001:50000:156:0123456789ABCDEF0123456789ABCDE:1795000000:0011223344556677",
		"CLW1:ATM00001:50000:156:0123456789ABCDEF0123456789ABCDEF:1795000000:001122334455667",
		"CLW1:ATM00001:50000:156:0123456789ABCDEF0123456789ABCDEF:1795000000:0011223344556677:X",
		"CLW1::50000:156:0123456789ABCDEF0123456789ABCDEF:1795000000:0011223344556677",
		"CLW1:ATM000001:50000:156:0123456789ABCDEF0123456789ABCDEF:1795000000:0011223344556677", // 9: field 41 holds 8
		strings.Repeat("A", 200),
	} {
		if _, err := qr.Parse(bad); !errors.Is(err, qr.ErrFormat) {
			t.Errorf("Parse(%q) = %v, want ErrFormat", bad, err)
		}
	}
}

// The payload uses only QR alphanumeric-mode characters.
func TestAlphanumericMode(t *testing.T) {
	p := sample()
	text, _ := qr.Sign(&p, macer(t))
	for _, r := range text {
		if !strings.ContainsRune("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", r) {
			t.Fatalf("character %q is not in the QR alphanumeric set", r)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("CLW1:ATM00001:50000:156:0123456789ABCDEF0123456789ABCDEF:1795000000:0011223344556677")
	f.Add("CLW1:A:1:000:00000000000000000000000000000000:1:0000000000000000")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := qr.Parse(s)
		if err != nil {
			return
		}
		// Whatever parses must print back to exactly the same text.
		if p.String() != s {
			t.Fatalf("Parse(%q).String() = %q", s, p.String())
		}
	})
}

func ExampleParse() {
	p, err := qr.Parse("CLW1:ATM00001:50000:156:0123456789ABCDEF0123456789ABCDEF:1795000000:0011223344556677")
	if err != nil {
		panic(err)
	}
	fmt.Println(p.TerminalID, p.Amount, p.Currency, p.Expiry.Format(time.RFC3339))
	// Output: ATM00001 50000 156 2026-11-18T11:06:40Z
}
