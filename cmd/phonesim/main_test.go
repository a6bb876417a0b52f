package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/host/bindapi"
	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/wire"
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
		if code := run(append(args, "--config", cfgPath), nil, &out, &errb); code != 2 {
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
	code := run([]string{"--proxy", s.PhoneAddr(), "--qr-text", qr, "--customer", "13800000001", "--pin", "987123", "--config", cfgPath}, nil, &out, &errb)
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
	if code := run([]string{"--proxy", "127.0.0.1:1", "--qr-text", "X", "--customer", "C", "--pin", "1234", "--config", p}, nil, &out, &errb); code != 2 {
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

// bindHost runs the host simulator of the shipped configuration on a
// fresh database with its bind endpoint on loopback.
func bindHost(t *testing.T) *hostsim.Server {
	t.Helper()
	hcfg, err := hostsim.LoadConfig("../../configs/hostsim.json")
	if err != nil {
		t.Fatal(err)
	}
	hcfg.DBPath = filepath.Join(t.TempDir(), "host.db")
	h, err := hostsim.NewServer(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.StartBind("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return h
}

// answerLine parses bind's one JSON line.
func answerLine(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one JSON line, got %q", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// new-device prints a new device ID; bind binds it with the code from the
// simulated SMS inbox (exit 0), and again says it is bound (exit 0).
func TestBindNewDevice(t *testing.T) {
	h := bindHost(t)
	var out, errb bytes.Buffer
	if code := run([]string{"new-device"}, nil, &out, &errb); code != 0 {
		t.Fatalf("new-device: exit %d, %s", code, errb.String())
	}
	device := strings.TrimSpace(out.String())
	if !wire.ValidDeviceID(device) {
		t.Fatalf("new-device printed %q", out.String())
	}
	args := []string{"bind", "--config", cfgPath, "--bind", "http://" + h.BindAddr(), "--device", device, "--customer", "13800000001", "--pin", "123456"}
	for _, want := range []string{bindapi.Bound, bindapi.AlreadyBound} {
		out.Reset()
		errb.Reset()
		if code := run(args, nil, &out, &errb); code != 0 {
			t.Fatalf("bind: exit %d, %s %s", code, out.String(), errb.String())
		}
		if m := answerLine(t, out.String()); m["result"] != want || m["meaning"] != bindapi.ResultText(want) {
			t.Fatalf("bind printed %v, want %s", m, want)
		}
	}
	if ok, _ := h.Bound("13800000001", device); !ok {
		t.Fatal("the host has no binding")
	}
	code := ""
	if msgs := h.SMS("13800000001"); len(msgs) == 1 {
		code, _ = bindapi.CodeIn(msgs[0].Text)
	}
	if code == "" || strings.Contains(out.String()+errb.String(), code) || strings.Contains(out.String()+errb.String(), "123456") {
		t.Fatalf("the code or the PIN was printed (or no SMS): %q", out.String()+errb.String())
	}
}

// --code-stdin reads what the person types: a wrong code is the bank's
// answer (exit 1), the right one binds (exit 0).
func TestBindCodeStdin(t *testing.T) {
	h := bindHost(t)
	device, _ := wire.NewDeviceID()
	args := []string{"bind", "--config", cfgPath, "--bind", "http://" + h.BindAddr(), "--device", device, "--customer", "13800000002", "--pin", "654321", "--code-stdin"}
	// typed is the person at the keyboard: asked for the code (bind reads
	// standard input only once the bank has sent it), they type what pick
	// makes of the code of the n-th SMS.
	typed := func(n int, pick func(code string) string) io.Reader {
		return &keyboard{line: func() string {
			msgs := h.SMS("13800000002")
			if len(msgs) != n {
				t.Errorf("asked for the code with %d SMS sent, want %d", len(msgs), n)
				return ""
			}
			c, _ := bindapi.CodeIn(msgs[n-1].Text)
			return pick(c)
		}}
	}
	var out, errb bytes.Buffer
	wrong := func(c string) string {
		if c == "000000" {
			return "000001"
		}
		return "000000"
	}
	if code := run(args, typed(1, wrong), &out, &errb); code != 1 {
		t.Fatalf("wrong code: exit %d", code)
	}
	if m := answerLine(t, out.String()); m["result"] != bindapi.WrongCode || m["triesLeft"] != float64(2) || !strings.Contains(errb.String(), "*******0002") {
		t.Fatalf("printed %v, prompt %q", m, errb.String())
	}
	out.Reset()
	errb.Reset()
	// A new start sends a new code (replacing the first), typed right.
	if code := run(args, typed(2, func(c string) string { return c }), &out, &errb); code != 0 {
		t.Fatalf("right code: exit %d, %s", code, out.String())
	}
	if m := answerLine(t, out.String()); m["result"] != bindapi.Bound {
		t.Fatalf("printed %v", m)
	}
}

func TestBindUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bind"},
		{"bind", "--customer", "C"},
		{"bind", "--pin", "1234"},
		{"bind", "--customer", "C", "--pin", "1234", "--device", "abc"},
		{"bind", "--customer", "C", "--pin", "1234", "extra"},
		{"new-device", "x"},
		{"--qr-text", "X", "--customer", "C", "--pin", "1234", "--device", "abc"},
	} {
		var out, errb bytes.Buffer
		if code := run(append(args, "--config", cfgPath), nil, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
}

// keyboard is standard input that makes its one line when first read.
type keyboard struct {
	line func() string
	rest []byte
	read bool
}

func (k *keyboard) Read(p []byte) (int, error) {
	if !k.read {
		k.read, k.rest = true, []byte(k.line()+"\n")
	}
	if len(k.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, k.rest)
	k.rest = k.rest[n:]
	return n, nil
}
