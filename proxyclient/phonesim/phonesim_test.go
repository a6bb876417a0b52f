package phonesim_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/pinblock"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
)

func TestDecodePNG(t *testing.T) {
	text := "CLW1:ATM00001:10000:156:00112233445566778899AABBCCDDEEFF:1893456000:0123456789ABCDEF"
	png, err := qrcode.Encode(text, qrcode.Medium, 320)
	if err != nil {
		t.Fatal(err)
	}
	got, err := phonesim.DecodePNG(bytes.NewReader(png))
	if err != nil {
		t.Fatal(err)
	}
	if got != text {
		t.Fatalf("decoded %q", got)
	}
	if _, err := phonesim.DecodePNG(strings.NewReader("not a png")); err == nil {
		t.Fatal("garbage decoded")
	}
}

func TestLoadConfig(t *testing.T) {
	cfg, err := phonesim.LoadConfig("../../configs/phonesim.json")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ProxyAddr == "" || cfg.MACKey == "" || cfg.Timeout == 0 || cfg.DeviceID == "" || cfg.BindURL == "" {
		t.Fatalf("config %+v incomplete", cfg.ProxyAddr)
	}
	p := filepath.Join(t.TempDir(), "c.json")
	_ = os.WriteFile(p, []byte(`{"macKey":"00","dataKey":"xyz","appPinKey":"","timeout":"soon","deviceId":"1234","bindUrl":"http://10.0.0.1:6101"}`), 0o600)
	_, err = phonesim.LoadConfig(p)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, name := range []string{"macKey", "dataKey", "appPinKey", "timeout", "deviceId", "bindUrl"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

// The request Phone builds (and Withdraw sends) carries the QR fields and
// an encrypted PIN block that only the app PIN key opens; sealed with the
// phone's keys it opens on the other end with the same keys.
func TestPhoneRequest(t *testing.T) {
	cfg, err := phonesim.LoadConfig("../../configs/phonesim.json")
	if err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.DataKey = "not hex"
	if _, err := phonesim.NewPhone(bad); err == nil || !strings.Contains(err.Error(), "data key") {
		t.Fatalf("NewPhone with a bad data key: %v", err)
	}
	bad = cfg
	bad.DeviceID = "a5df01fc21e4290e59699a870abd8cef"
	if _, err := phonesim.NewPhone(bad); err == nil || !strings.Contains(err.Error(), "device ID") {
		t.Fatalf("NewPhone with a lower-case device ID: %v", err)
	}
	ph, err := phonesim.NewPhone(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	const text = "CLW1:ATM00001:10000:156:00112233445566778899AABBCCDDEEFF:1893456000:0123456789ABCDEF"
	if _, err := ph.Request("not a qr", "CUST1", "1234"); !errors.Is(err, phonesim.ErrQR) {
		t.Fatalf("bad QR: %v", err)
	}
	if _, err := ph.Request(text, "", "1234"); err == nil {
		t.Fatal("empty customer ID accepted")
	}
	if _, err := ph.Request(text, "CUST1", "12"); err == nil {
		t.Fatal("2-digit PIN accepted")
	}

	m, err := ph.Request(text, "CUST1", "1234")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := ph.Protector().Seal(m)
	if err != nil {
		t.Fatal(err)
	}
	other, err := phonesim.NewPhone(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	opened, err := other.Protector().Open(sealed)
	if err != nil {
		t.Fatal(err)
	}
	var w wire.Withdrawal
	if err := wire.Parse(opened, &w); err != nil {
		t.Fatal(err)
	}
	if w.MTI != wire.MTIFinancialRequest || w.Amount != "000000010000" || w.Currency != "156" || w.TerminalID != "ATM00001" ||
		w.QRPayload != text || w.CustomerID != "CUST1" || len(w.STAN) != 6 || w.DeviceID != cfg.DeviceID || cfg.DeviceID == "" {
		t.Fatalf("request fields: MTI %s amount %s currency %s terminal %s customer %s STAN %q",
			w.MTI, w.Amount, w.Currency, w.TerminalID, w.CustomerID, w.STAN)
	}
	pinKey, err := hex.DecodeString(cfg.AppPINKey)
	if err != nil {
		t.Fatal(err)
	}
	host := hsm.NewSoft()
	defer host.Close()
	if _, err := host.ImportClearKey(hsm.AppPINKey, pinKey); err != nil {
		t.Fatal(err)
	}
	clearBlock, err := host.Decrypt(hsm.AppPINKey, w.PINBlock)
	if err != nil {
		t.Fatal(err)
	}
	if pin, err := pinblock.Parse(clearBlock); err != nil || pin != "1234" {
		t.Fatal("PIN block does not hold the PIN")
	}
	m2, err := ph.Request(text, "CUST1", "1234")
	if err != nil {
		t.Fatal(err)
	}
	if wire.STAN(m2) == w.STAN {
		t.Fatalf("two requests share STAN %s", w.STAN)
	}
}

func ExampleDecodePNG() {
	png, _ := qrcode.Encode("CLW1:ATM00001:10000:156:00112233445566778899AABBCCDDEEFF:1893456000:0123456789ABCDEF", qrcode.Medium, 256)
	text, err := phonesim.DecodePNG(bytes.NewReader(png))
	fmt.Println(text, err)
	// Output: CLW1:ATM00001:10000:156:00112233445566778899AABBCCDDEEFF:1893456000:0123456789ABCDEF <nil>
}
