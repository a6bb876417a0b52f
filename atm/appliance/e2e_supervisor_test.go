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

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/host"
)

// TestE2ESupervisorOperations: the supervisor's operations through the
// control endpoint, with the real host link and host simulator: daily
// balancing fetches the host's totals with a 0500 over TCP and they agree
// with the terminal's after a paid withdrawal and a short dispense
// (partial reversal); the printable report comes in Chinese; the operator
// takes the terminal out of service, replenishes (a counted difference
// shows in the report), and puts it back; every route wants credentials.
func TestE2ESupervisorOperations(t *testing.T) {
	s := startSystem(t, nil)
	if out := s.withdraw(s.qr(50000), zhang, "123456"); !out.PaidInFull() {
		t.Fatalf("paid: %+v", out)
	}
	s.dismiss()
	s.app.DispenserSim.SetFaults(dispensersim.Faults{ShortDispense: 1})
	if out := s.withdraw(s.qr(30000), zhang, "123456"); out.ResponseCode != "00" || out.PaidInFull() {
		t.Fatalf("short dispense: %+v", out)
	}
	s.app.DispenserSim.SetFaults(dispensersim.Faults{})
	s.dismiss()
	s.settled()

	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.app.ServeControl(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a.String() }) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := <-addrc
	if err := s.app.Operators.Add("op-7", "271828"); err != nil {
		t.Fatal(err)
	}
	call := func(path, body string, auth bool) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
		if auth {
			req.SetBasicAuth("op-7", "271828")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, p := range []string{"/operator/out-of-service", "/operator/in-service", "/operator/replenish", "/operator/balance"} {
		if code, _ := call(p, "", false); code != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %d", p, code)
		}
	}

	day := s.app.Core.Day(s.app.Clock.Now())
	code, body := call("/operator/balance?day="+day, "", true)
	var rep atm.BalanceReport
	if err := json.Unmarshal(body, &rep); code != 200 || err != nil {
		t.Fatalf("balance: %d %s", code, body)
	}
	// The short dispense paid one note less: a 100.00 or a 50.00 note.
	paid := rep.CashOut
	want := host.Totals{Approved: host.Count{Count: 2, Amount: 80000}, Reversals: host.Count{Count: 1, Amount: 80000 - paid},
		Advices: host.Count{Count: 1, Amount: 50000}, NetDebit: paid}
	if rep.ATM != want || rep.Host == nil || *rep.Host != want || !rep.Balanced() || (paid != 70000 && paid != 75000) {
		t.Fatalf("balance report: ATM %+v host %+v cash out %d differences %+v", rep.ATM, rep.Host, paid, rep.Differences)
	}
	hostSide, err := s.host.DayTotals(day, s.app.Config.TerminalID, "156")
	if err != nil || hostSide.NetDebit != paid || hostSide.Approved.Count != 2 {
		t.Fatalf("host's own totals %+v %v", hostSide, err)
	}
	code, body = call("/operator/balance?day="+day+"&format=text&lang=zh", "", true)
	if lines := strings.Split(string(body), "\n"); code != 200 || lines[0] != "日终轧账" || !strings.Contains(string(body), "账平") {
		t.Fatalf("printable balance: %d\n%s", code, body)
	}
	if code, _ := call("/operator/balance?day=yesterday", "", true); code != 400 {
		t.Fatalf("bad day: %d", code)
	}

	code, body = call("/operator/out-of-service", "", true)
	var st appliance.Status
	if err := json.Unmarshal(body, &st); code != 200 || err != nil || st.InService || st.Reason != "operator" {
		t.Fatalf("out of service: %d %s", code, body)
	}
	units, _, _, err := s.app.Core.Supervisor(0)
	if err != nil || len(units) != 4 {
		t.Fatalf("counters %+v %v", units, err)
	}
	var repl atm.Replenishment
	for _, u := range units {
		counted := u.Remaining
		if u.UnitID == "CST2" {
			counted-- // a note missing
		}
		repl.Removed = append(repl.Removed, atm.CassetteCount{UnitID: u.UnitID, Notes: counted})
		repl.Loaded = append(repl.Loaded, atm.CassetteLoad{UnitID: u.UnitID, Denomination: u.Denomination, Currency: u.Currency, Notes: 400})
	}
	if code, body := call("/operator/replenish", `{"removed":[],"loaded":[],"extra":1}`, true); code != 400 {
		t.Fatalf("unknown field: %d %s", code, body)
	}
	if code, body := call("/operator/replenish", `{"removed":[],"loaded":[{"unit_id":"CST1","denomination":10000,"currency":"CNY","notes":1}]}`, true); code != 400 ||
		!strings.Contains(string(body), "without the count") {
		t.Fatalf("load without a count: %d %s", code, body)
	}
	b, _ := json.Marshal(repl)
	code, body = call("/operator/replenish", string(b), true)
	var rr atm.ReplenishmentReport
	if err := json.Unmarshal(body, &rr); code != 200 || err != nil {
		t.Fatalf("replenish: %d %s", code, body)
	}
	if d := rr.Differences(); len(d) != 1 || d[0].UnitID != "CST2" || d[0].Difference != -1 || rr.Device != atm.DeviceCountsSet ||
		!rr.CountersChecked || len(rr.Mismatches) != 0 || rr.Operator != "op-7" {
		t.Fatalf("replenishment report %+v", rr)
	}
	for _, c := range s.app.DispenserSim.Counters() {
		if c.Count != 400 || c.Dispensed != 0 {
			t.Errorf("device unit after the replenishment: %+v", c)
		}
	}
	s.wantJournal("CASSETTE REMOVED")
	if st := s.app.Status(); st.InService || st.Reason != "operator" {
		t.Fatalf("after the replenishment: %+v", st)
	}
	code, body = call("/operator/in-service", "", true)
	if code != 200 || !bytes.Contains(body, []byte(`"terminal_id"`)) {
		t.Fatalf("in service: %d %s", code, body)
	}
	s.waitFor("back in service", func(st appliance.Status) bool { return st.InService })
	if code, body := call("/operator/in-service", "", true); code != 409 {
		t.Fatalf("in service twice: %d %s", code, body)
	}
}
