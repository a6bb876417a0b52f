package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
	qrcode "github.com/skip2/go-qrcode"
)

const cfgPath = "../../configs/phonesim.json"

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--qr-text", "X", "--qr-png", "f.png", "--customer", "C", "--pin", "1234"},
		{"--qr-text", "X", "--pin", "1234"},
		{"--qr-text", "X", "--customer", "C"},
		{"--bogus"},
	} {
		var out, errb bytes.Buffer
		if code := run(append(args, "--config", cfgPath), &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestNoATMExits1WithJSON(t *testing.T) {
	_, err := phonesim.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	pcfg, _, _, err := proxysim.LoadConfig("../../configs/proxysim.json")
	if err != nil {
		t.Fatal(err)
	}
	pcfg.ATMTimeout = time.Second
	s, err := proxysim.NewServer(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	qr := "CLW1:ATM00001:10000:156:00112233445566778899AABBCCDDEEFF:1893456000:0123456789ABCDEF"
	var out, errb bytes.Buffer
	code := run([]string{"--proxy", s.PhoneAddr(), "--qr-text", qr, "--customer", "13800000001", "--pin", "987123", "--config", cfgPath}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (stderr %s)", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one JSON line, got %q", out.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m["response_code"] != "91" || m["amount"] != float64(10000) || m["approved"] != false {
		t.Fatalf("output %v", m)
	}
	if strings.Contains(out.String()+errb.String(), "987123") {
		t.Fatal("PIN printed")
	}
}

func TestBadConfigIsUsageError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(p, []byte(`{"macKey":"zz","dataKey":"","appPinKey":"","extra":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"--proxy", "127.0.0.1:1", "--qr-text", "X", "--customer", "C", "--pin", "1234", "--config", p}, &out, &errb); code != 2 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errb.String(), "extra") {
		t.Fatalf("unknown field not named: %s", errb.String())
	}
}

// TestScanWaitsForTheQR: the image shows no withdrawal QR code yet (the
// welcome screen), then the QR: the scan keeps looking and reads it; an
// image that never shows one fails with ErrQR after --scan-for.
func TestScanWaitsForTheQR(t *testing.T) {
	path := filepath.Join(t.TempDir(), "screen.png")
	payload := "CLW1:ATM00001:20000:156:0123456789ABCDEF0123456789ABCDEF:1893456000:0123456789ABCDEF"
	if err := qrcode.WriteFile("welcome to the cardless ATM", qrcode.Medium, 256, path); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	type res struct {
		payload string
		err     error
	}
	got := make(chan res, 1)
	go func() { p, err := scan(path, 5*time.Second, clk); got <- res{p, err} }()
	<-clk.Armed() // the first look found nothing and waits
	if err := qrcode.WriteFile(payload, qrcode.Medium, 256, path); err != nil {
		t.Fatal(err)
	}
	clk.Advance(200 * time.Millisecond)
	if r := <-got; r.err != nil || r.payload != payload {
		t.Fatalf("scan = %q, %v", r.payload, r.err)
	}

	if err := qrcode.WriteFile("welcome to the cardless ATM", qrcode.Medium, 256, path); err != nil {
		t.Fatal(err)
	}
	go func() { p, err := scan(path, time.Second, clk); got <- res{p, err} }()
	for range 5 {
		<-clk.Armed()
		clk.Advance(200 * time.Millisecond)
	}
	if r := <-got; !errors.Is(r.err, phonesim.ErrQR) {
		t.Fatalf("no withdrawal QR: %q, %v", r.payload, r.err)
	}
}
