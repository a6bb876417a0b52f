//go:build unix

package appliance_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/receipt/escpos"
	"github.com/cardless-atm/cardless/atm/receipt/printersim"
	"github.com/cardless-atm/cardless/atm/store"
)

// TestE2EReceipt: after a withdrawal the complete screen offers a receipt
// (the printer on a pty is ready), it prints in the customer's language
// with the session's details, and a printer out of paper is not offered,
// fails clearly, raises an alarm and is journaled.
func TestE2EReceipt(t *testing.T) {
	sim, err := printersim.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	s := startSystem(t, func(c *appliance.Config) {
		c.Printer = &appliance.Printer{Driver: "escpos", Port: sim.Path()}
	})
	out := s.withdraw(s.qr(30000), zhang, "123456")
	if out.ResponseCode != "00" {
		t.Fatalf("outcome %+v", out)
	}
	s.settled()
	sess := s.app.Core.View().Session
	if sess == nil || sess.State != atm.StateCompleted {
		t.Fatalf("session %+v", sess)
	}
	if snap := s.app.Backend.Snapshot(); !snap.Receipt {
		t.Fatal("a ready printer, but no receipt offered")
	}
	if err := s.app.Backend.PrintReceipt("zh"); err != nil {
		t.Fatal(err)
	}
	got := waitPrinted(t, sim, 1)
	want := []string{"取款凭条", "终端号: ATM00001", "地点: Demo Branch, 1 Example Road, Shanghai",
		"日期: " + sess.Updated.UTC().Format(time.DateOnly), "时间: " + sess.Updated.UTC().Format(time.TimeOnly),
		"金额: 300.00 CNY", "客户: " + sess.Customer, "授权码: " + sess.AuthCode, "参考号: " + sess.RRN, "流水号: " + sess.HostSTAN, "谢谢惠顾"}
	if !slices.Equal(got[0].Lines, want) || !slices.Equal(got[0].QR, []string{"CARDLESS:ATM00001:" + sess.RRN + ":" + sess.HostSTAN}) {
		t.Fatalf("receipt\n%q\nwant\n%q\nQR %q", got[0].Lines, want, got[0].QR)
	}
	if strings.Contains(strings.Join(got[0].Lines, "\n"), zhang) {
		t.Fatal("the customer ID in clear on the receipt")
	}

	sim.SetFaults(printersim.Faults{PaperOut: true})
	if err := s.app.Backend.PrintReceipt("en"); !errors.Is(err, escpos.ErrPaperOut) {
		t.Fatalf("paper out: %v", err)
	}
	if s.app.Backend.Snapshot().Receipt {
		t.Fatal("a receipt offered with the paper out")
	}
	var kinds []string
	s.app.Store.View(func(tx *store.Tx) error {
		return tx.JournalRange(0, func(e store.Entry) error {
			if strings.HasPrefix(e.Kind, "RECEIPT") && e.SessionID == sess.ID {
				kinds = append(kinds, e.Kind)
			}
			return nil
		})
	})
	if !slices.Equal(kinds, []string{"RECEIPT PRINTED", "RECEIPT NOT PRINTED"}) {
		t.Fatalf("journal %q", kinds)
	}
	deadline := time.Now().Add(15 * time.Second) // a watchdog: alarms are evaluated every 2 s
	for !slices.Contains(s.proxy.Status("ATM00001").Alarms, "printer_paper_out") {
		if time.Now().After(deadline) {
			t.Fatalf("no printer alarm at the proxy: %+v", s.proxy.Status("ATM00001"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitPrinted(t *testing.T, sim *printersim.Sim, n int) []printersim.Printed {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second) // a watchdog: the tty is asynchronous
	for len(sim.Printed()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := sim.Printed()
	if len(got) != n {
		t.Fatalf("%d receipts came out, want %d", len(got), n)
	}
	return got
}
