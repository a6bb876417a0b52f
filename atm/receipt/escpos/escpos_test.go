//go:build unix

package escpos_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/receipt"
	"github.com/cardless-atm/cardless/atm/receipt/escpos"
	"github.com/cardless-atm/cardless/atm/receipt/printersim"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sample() receipt.Receipt {
	return receipt.Receipt{Terminal: "ATM00001", Location: "Demo Branch", Time: time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC),
		Amount: 50000, Currency: "CNY", Exponent: 2, Customer: "****0001", AuthCode: "A12345", RRN: "000000000042", STAN: "000017"}
}

// TestEncodeGolden pins the exact bytes of a receipt in each language.
func TestEncodeGolden(t *testing.T) {
	for _, lang := range receipt.Languages {
		got, err := escpos.Encode(sample(), lang)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "receipt_"+lang+".bin")
		if *update {
			os.MkdirAll("testdata", 0o755)
			os.WriteFile(path, got, 0o644)
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes differ from %s (%d bytes)", lang, len(got), path, len(want))
		}
	}
	if _, err := escpos.Encode(sample(), "fr"); err == nil {
		t.Error("encoded a language without a catalog")
	}
}

// TestEncodeLinesGolden pins the exact bytes of a report: ASCII lines as
// they are, a Chinese line in GB18030 inside the two-byte mode.
func TestEncodeLinesGolden(t *testing.T) {
	got, err := escpos.EncodeLines([]string{"Replenishment report, terminal ATM00001", "取出 CST1  100.00元：应有 12 张，清点 10 张，差额 -2"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "report.bin")
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%d bytes differ from %s (%d bytes)", len(got), path, len(want))
	}
	if !bytes.HasPrefix(got, []byte("\x1b@Replenishment report, terminal ATM00001\n\x1c&")) || !bytes.HasSuffix(got, []byte("\x1c.\n\x1dVB\x03")) {
		t.Errorf("report bytes %q", got)
	}
}

// TestPrintThroughATTY prints through the simulator on a real pty and
// reads back exactly what came out; then each fault.
func TestPrintThroughATTY(t *testing.T) {
	sim, err := printersim.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	p, err := escpos.Open(sim.Path(), 9600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if st, err := p.Status(ctx); err != nil || !st.Ready() || st.PaperLow {
		t.Fatalf("status %+v %v", st, err)
	}
	for _, lang := range receipt.Languages {
		data, _ := escpos.Encode(sample(), lang)
		if err := p.Print(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]string{
		"en": {"CASH WITHDRAWAL", "Terminal: ATM00001", "Location: Demo Branch", "Date: 2030-01-02", "Time: 15:04:05",
			"Amount: 500.00 CNY", "Customer: ****0001", "Auth code: A12345", "RRN: 000000000042", "STAN: 000017", "Thank you"},
		"zh": {"取款凭条", "终端号: ATM00001", "地点: Demo Branch", "日期: 2030-01-02", "时间: 15:04:05",
			"金额: 500.00 CNY", "客户: ****0001", "授权码: A12345", "参考号: 000000000042", "流水号: 000017", "谢谢惠顾"},
	}
	deadline := time.Now().Add(5 * time.Second) // a watchdog: the tty is asynchronous
	for len(sim.Printed()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := sim.Printed()
	if len(got) != 2 {
		t.Fatalf("%d receipts came out", len(got))
	}
	for i, lang := range receipt.Languages {
		if !slices.Equal(got[i].Lines, want[lang]) || !slices.Equal(got[i].QR, []string{"CARDLESS:ATM00001:000000000042:000017"}) {
			t.Errorf("%s receipt:\n%q\nQR %q", lang, got[i].Lines, got[i].QR)
		}
	}

	sim.SetFaults(printersim.Faults{PaperLow: true})
	if st, err := p.Status(ctx); err != nil || !st.Ready() || !st.PaperLow {
		t.Fatalf("paper low: %+v %v", st, err)
	}
	sim.SetFaults(printersim.Faults{PaperOut: true})
	data, _ := escpos.Encode(sample(), "en")
	if err := p.Print(ctx, data); !errors.Is(err, escpos.ErrPaperOut) {
		t.Fatalf("paper out: %v", err)
	}
	sim.SetFaults(printersim.Faults{Offline: true})
	if err := p.Print(ctx, data); !errors.Is(err, escpos.ErrOffline) {
		t.Fatalf("offline: %v", err)
	}
	if n := len(sim.Printed()); n != 2 {
		t.Fatalf("%d receipts after the faults, want still 2", n)
	}
}

// TestRenderPNG draws the printed receipts; the QR on the picture decodes
// (with zbarimg, where installed) to the transaction reference.
func TestRenderPNG(t *testing.T) {
	p := printersim.Printed{Lines: []string{"取款凭条", "Amount: 500.00 CNY"}, QR: []string{"CARDLESS:ATM00001:000000000042:000017"}}
	path := filepath.Join(t.TempDir(), "receipt.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := printersim.RenderPNG(p, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Skip("zbarimg not installed")
	}
	out, err := exec.Command(zbar, "--raw", "-q", path).Output()
	if err != nil || strings.TrimSpace(string(out)) != "CARDLESS:ATM00001:000000000042:000017" {
		t.Fatalf("zbarimg: %q %v", out, err)
	}
}
