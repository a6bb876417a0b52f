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
