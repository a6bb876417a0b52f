package appliance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/store"
)

// TestE2EJournalExportAndFind: after a withdrawal the control endpoint
// exports the journal as a segment that verifies offline with the
// terminal's journal key, and finds the withdrawal's entries by RRN and by
// customer.
func TestE2EJournalExportAndFind(t *testing.T) {
	s := startSystem(t, nil)
	out := s.withdraw(s.qr(20000), zhang, "123456")
	if out.ResponseCode != "00" {
		t.Fatalf("outcome %+v", out)
	}
	s.settled()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.app.ServeControl(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a.String() }) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + <-addrc
	get := func(path string) []byte {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		return b
	}
	seg := get("/journal/export")
	v := &store.SegmentVerifier{Auth: appliance.JournalAuth(s.app.HSM)}
	var rrn, session string
	if _, err := v.Verify("export", bytes.NewReader(seg), func(e store.Entry) error {
		if e.Kind == "APPROVED" {
			rrn, session = e.Data["rrn"], e.SessionID
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if rrn == "" || v.Entries < 8 {
		t.Fatalf("exported %d entries, rrn %q", v.Entries, rrn)
	}
	for _, q := range []string{"rrn=" + rrn, "customer=" + zhang, "session=" + session} {
		var found struct{ Entries []store.Entry }
		if err := json.Unmarshal(get("/journal/find?"+q), &found); err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range found.Entries {
			if e.SessionID != session {
				t.Fatalf("%s found an entry of session %q", q, e.SessionID)
			}
			kinds = append(kinds, e.Kind)
		}
		if got := strings.Join(kinds, ","); got != "SESSION CREATED,COMMAND ACCEPTED,APPROVED,CASH DISPENSED,CASH PRESENTED,CASH TAKEN,QUEUED ADVICE,HOST ACK ADVICE" {
			t.Fatalf("%s: %s", q, got)
		}
		if strings.Contains(string(get("/journal/find?"+q)), zhang) {
			t.Fatalf("%s: the customer ID appears in clear", q)
		}
	}
}

// TestE2EPhoneReceipt: an approved withdrawal's answer to the phone
// carries the receipt (field 63), which phonesim checks against the
// answer and shows; a declined one carries none.
func TestE2EPhoneReceipt(t *testing.T) {
	s := startSystem(t, nil)
	out := s.withdraw(s.qr(20000), zhang, "123456")
	sess := s.app.Core.View().Session
	if out.ResponseCode != "00" || sess == nil {
		t.Fatalf("outcome %+v", out)
	}
	want := []string{"CASH WITHDRAWAL", "Terminal: ATM00001", "Location: Demo Branch, 1 Example Road, Shanghai",
		"Date: " + sess.Updated.UTC().Format("2006-01-02"), "Time: " + sess.Updated.UTC().Format("15:04:05"),
		"Amount: 200.00 CNY", "Customer: " + sess.Customer, "Auth code: " + out.AuthCode, "RRN: " + out.RRN, "STAN: " + sess.HostSTAN, "Thank you"}
	if strings.Join(out.Receipt, "\n") != strings.Join(want, "\n") {
		t.Fatalf("phone receipt\n%q\nwant\n%q", out.Receipt, want)
	}
	s.settled()
	s.dismiss()
	s.waitFor("idle", func(st appliance.Status) bool { return st.InService && st.Session == nil })
	if out := s.withdraw(s.qr(20000), zhang, "000000"); out.ResponseCode != "55" || out.Receipt != nil {
		t.Fatalf("declined outcome %+v", out)
	}
}
