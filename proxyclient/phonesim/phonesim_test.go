package phonesim_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"

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
	if cfg.ProxyAddr == "" || cfg.MACKey == "" || cfg.Timeout == 0 {
		t.Fatalf("config %+v incomplete", cfg.ProxyAddr)
	}
	p := filepath.Join(t.TempDir(), "c.json")
	_ = os.WriteFile(p, []byte(`{"macKey":"00","dataKey":"xyz","appPinKey":"","timeout":"soon"}`), 0o600)
	_, err = phonesim.LoadConfig(p)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, name := range []string{"macKey", "dataKey", "appPinKey", "timeout"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func ExampleDecodePNG() {
	png, _ := qrcode.Encode("CLW1:ATM00001:10000:156:00112233445566778899AABBCCDDEEFF:1893456000:0123456789ABCDEF", qrcode.Medium, 256)
	text, err := phonesim.DecodePNG(bytes.NewReader(png))
	fmt.Println(text, err)
	// Output: CLW1:ATM00001:10000:156:00112233445566778899AABBCCDDEEFF:1893456000:0123456789ABCDEF <nil>
}
