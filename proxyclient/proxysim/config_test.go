package proxysim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfigShipped(t *testing.T) {
	cfg, atm, phone, err := LoadConfig("../../configs/proxysim.json")
	if err != nil {
		t.Fatal(err)
	}
	if atm == "" || phone == "" || len(cfg.Terminals) == 0 || cfg.ATMTimeout == 0 {
		t.Fatal("shipped config incomplete")
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func TestLoadConfigErrorsNameFields(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.json")
	_ = os.WriteFile(p, []byte(`{"terminals":{"atm-1":{"tmk":"12"}},"phoneMacKey":"zz","phoneDataKey":"","atmTimeout":"x","tpdu":"qq"}`), 0o600)
	_, _, _, err := LoadConfig(p)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"atm-1", "tmk", "phone MAC key", "phone data key", "atmTimeout", "tpdu"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	_ = os.WriteFile(p, []byte(`{"unknown":1}`), 0o600)
	if _, _, _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("unknown field: %v", err)
	}
	// A key with bad parity is refused without quoting the key.
	cfg := Config{Terminals: map[string]Terminal{"ATM1": {TMK: strings.Repeat("00", 16)}},
		PhoneMACKey: strings.Repeat("01", 16), PhoneDataKey: strings.Repeat("01", 16)}
	if _, err := NewServer(cfg); err == nil || strings.Contains(err.Error(), strings.Repeat("00", 16)) {
		t.Fatalf("bad parity: %v", err)
	}
}
