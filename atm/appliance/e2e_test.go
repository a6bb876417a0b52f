package appliance_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

const (
	zhang = "13800000001" // balance 10000.00, per transaction 3000.00, daily 5000.00, PIN 123456
	li    = "13800000002" // balance 200.00, PIN 654321
)

// system is the whole cardless-withdrawal system in one test: host and
// proxy simulators and the real appliance, all over loopback TCP with real
// bbolt files in a temporary directory.
type system struct {
	t     testing.TB
	host  *hostsim.Server
	proxy *proxysim.Server
	app   *appliance.Appliance
	phone phonesim.Config
	logs  *lockedWriter
	dir   string
}

// systemOptions tune what newSystem builds; nil hooks change nothing.
type systemOptions struct {
	logLevel slog.Level
	host     func(*hostsim.Config)
	atm      func(*appliance.Config)
	// wire runs between appliance.New and Run, e.g. to wrap a part.
	wire func(a *appliance.Appliance, log *slog.Logger)
}

func startSystem(t *testing.T, mutate func(*appliance.Config)) *system {
	t.Helper()
	return newSystem(t, systemOptions{logLevel: slog.LevelDebug, atm: mutate})
}

func newSystem(t testing.TB, o systemOptions) *system {
	t.Helper()
	logw := &lockedWriter{w: new(bytes.Buffer)}
	s := &system{t: t, dir: t.TempDir(), logs: logw}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: o.logLevel}))
	s.startSimulators(log, o)
	cfg := s.atmConfig()
	if o.atm != nil {
		o.atm(cfg)
	}
	cfg.NewStore = true // a new terminal's first start
	var err error
	if s.app, err = appliance.New(cfg, log.With("part", "atm")); err != nil {
		t.Fatal(err)
	}
	if o.wire != nil {
		o.wire(s.app, log)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.app.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; s.app.Close() })
	s.waitFor("in service", func(st appliance.Status) bool { return st.InService && st.ProxyUp && st.HostUp })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logw.String())
		}
	})
	return s
}

// startSimulators starts the host and proxy simulators for s (stopped
// when s.t ends) and sets up the phone simulator's configuration.
func (s *system) startSimulators(log *slog.Logger, o systemOptions) {
	t := s.t
	t.Helper()
	hcfg, err := hostsim.LoadConfig("../../configs/hostsim.json")
	if err != nil {
		t.Fatal(err)
	}
	hcfg.DBPath = filepath.Join(s.dir, "host.db")
	hcfg.Logger = log.With("part", "hostsim")
	if o.host != nil {
		o.host(&hcfg)
	}
	if s.host, err = hostsim.NewServer(hcfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.host.Close() })

	pcfg, _, _, err := proxysim.LoadConfig("../../configs/proxysim.json")
	if err != nil {
		t.Fatal(err)
	}
	pcfg.Logger = log.With("part", "proxysim")
	pcfg.ATMTimeout = 20 * time.Second
	if s.proxy, err = proxysim.Start(pcfg, "127.0.0.1:0", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.proxy.Close)

	phone, err := phonesim.LoadConfig("../../configs/phonesim.json")
	if err != nil {
		t.Fatal(err)
	}
	phone.ProxyAddr = s.proxy.PhoneAddr()
	phone.Timeout = 25 * time.Second
	s.phone = phone
}

// atmConfig is configs/atm.json pointed at s's simulators and directory.
func (s *system) atmConfig() *appliance.Config {
	s.t.Helper()
	cfg, err := appliance.Load("../../configs/atm.json")
	if err != nil {
		s.t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(s.dir, "atm")
	cfg.Proxy.Addr = s.proxy.ATMAddr()
	cfg.Host.Addr = s.host.Addr()
	cfg.Host.SendTimeout = appliance.Duration(2 * time.Second)
	cfg.Screen = appliance.Screen{Mode: "headless", PNG: filepath.Join(s.dir, "screen.png")}
	cfg.Control.Addr = ""
	cfg.TakeTimeout = appliance.Duration(time.Second)
	cfg.Dispenser.Sim.Latency = 0
	cfg.Dispenser.Sim.TakeDelay = appliance.Duration(20 * time.Millisecond)
	return cfg
}

func (s *system) waitFor(what string, ok func(appliance.Status) bool) appliance.Status {
	s.t.Helper()
	var st appliance.Status
	for i := 0; i < 300; i++ {
		if st = s.app.Status(); ok(st) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("timed out waiting for %s; status %+v", what, st)
	return st
}

func (s *system) qr(amount int64) string {
	s.t.Helper()
	sess, err := s.app.Core.RequestWithdrawal(context.Background(), amount)
	if err != nil {
		s.t.Fatalf("RequestWithdrawal(%d): %v", amount, err)
	}
	return sess.QR
}

func (s *system) withdraw(qr, customer, pin string) phonesim.Outcome {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := phonesim.Withdraw(ctx, s.phone, qr, customer, pin)
	if err != nil {
		s.t.Fatalf("phone: %v", err)
	}
	return out
}

func (s *system) balance(customer string) int64 {
	s.t.Helper()
	b, err := s.host.Balance(customer)
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// settled waits until every advice and reversal has been acknowledged.
func (s *system) settled() {
	s.t.Helper()
	s.waitFor("store-and-forward queue empty", func(st appliance.Status) bool { return st.SAFPending == 0 })
	if err := s.app.Store.VerifyJournal(); err != nil {
		s.t.Fatal(err)
	}
}

// wantJournal fails the test unless the ATM's journal holds an entry of kind.
func (s *system) wantJournal(kind string) {
	s.t.Helper()
	found := false
	err := s.app.Store.View(func(tx *store.Tx) error {
		return tx.JournalRange(0, func(e store.Entry) error {
			found = found || e.Kind == kind
			return nil
		})
	})
	if err != nil || !found {
		s.t.Fatalf("journal has no %q entry (%v)", kind, err)
	}
}

func (s *system) dismiss() { s.app.Core.Dismiss(context.Background()) }

func TestE2EApprovedAndPaid(t *testing.T) {
	s := startSystem(t, nil)
	before := s.balance(zhang)
	out := s.withdraw(s.qr(50000), zhang, "123456")
	if out.ResponseCode != "00" || !out.PaidInFull() || out.Dispensed != 50000 {
		t.Fatalf("outcome %+v", out)
	}
	s.settled()
	if got := s.balance(zhang); got != before-50000 {
		t.Fatalf("balance %d, want %d", got, before-50000)
	}
	if v := s.app.Core.View(); v.Session.State != atm.StateCompleted || v.Session.Paid != 50000 {
		t.Fatalf("session %+v", v.Session)
	}
	// Balancing: the terminal's day total equals the host's for the terminal.
	day := time.Now().UTC().Format(time.DateOnly)
	tot, err := s.app.Totals(day)
	if err != nil {
		t.Fatal(err)
	}
	host, err := s.host.Totals(day, "ATM00001")
	if err != nil {
		t.Fatal(err)
	}
	if tot.Paid != 50000 || host.Net != tot.Paid {
		t.Fatalf("terminal paid %d, host net %d (%+v)", tot.Paid, host.Net, host)
	}
	for _, secret := range []string{"123456", zhang} {
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("%q appears in the logs", secret)
		}
	}
}

func TestE2EDeclines(t *testing.T) {
	s := startSystem(t, nil)
	for _, tt := range []struct {
		name, customer, pin string
		amount              int64
		rc                  string
	}{
		{"insufficient funds", li, "654321", 50000, "51"},
		{"wrong PIN", zhang, "999999", 10000, "55"},
		{"unknown customer", "13899999999", "123456", 10000, "14"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := s.balance(zhang) + s.balance(li)
			out := s.withdraw(s.qr(tt.amount), tt.customer, tt.pin)
			if out.ResponseCode != tt.rc || out.Approved || out.Dispensed != 0 {
				t.Fatalf("outcome %+v, want %s", out, tt.rc)
			}
			if len(out.RRN) != 12 {
				t.Fatalf("decline without the host's retrieval reference (field 37): %+v", out)
			}
			if after := s.balance(zhang) + s.balance(li); after != before {
				t.Fatalf("balances moved on a decline")
			}
			s.dismiss()
		})
	}
	// Over the daily limit: 3000 + 2500 > 5000.
	if out := s.withdraw(s.qr(300000), zhang, "123456"); out.ResponseCode != "00" {
		t.Fatalf("first: %+v", out)
	}
	s.dismiss()
	if out := s.withdraw(s.qr(250000), zhang, "123456"); out.ResponseCode != "61" {
		t.Fatalf("over daily limit: %+v", out)
	}
}

func TestE2EExpiredQR(t *testing.T) {
	s := startSystem(t, func(c *appliance.Config) { c.SessionTTL = appliance.Duration(time.Second) })
	qr := s.qr(10000)
	s.waitFor("expiry", func(st appliance.Status) bool { return st.Session != nil && st.Session.State == "Expired" })
	before := s.balance(zhang)
	if out := s.withdraw(qr, zhang, "123456"); out.ResponseCode != "54" {
		t.Fatalf("outcome %+v", out)
	}
	if s.balance(zhang) != before {
		t.Fatal("debited for an expired QR")
	}
}

func TestE2ETamperedAndMisrouted(t *testing.T) {
	s := startSystem(t, nil)
	qr := s.qr(10000)
	before := s.balance(zhang)
	if out := s.withdraw(strings.Replace(qr, ":10000:", ":290000:", 1), zhang, "123456"); out.ResponseCode != "13" {
		t.Fatalf("amount tampered in the QR: %+v", out)
	}
	if out := s.withdraw(strings.Replace(qr, "ATM00001", "ATM00009", 1), zhang, "123456"); out.ResponseCode != "91" {
		t.Fatalf("QR naming another (unconnected) terminal: %+v", out)
	}
	if s.balance(zhang) != before {
		t.Fatal("debited for a refused command")
	}
	// The genuine QR still pays once; a second request with the used QR
	// (a new PIN block, so another request) gets 94 and learns nothing.
	first := s.withdraw(qr, zhang, "123456")
	second := s.withdraw(qr, zhang, "123456")
	if first.ResponseCode != "00" || first.Dispensed != 10000 || !reflect.DeepEqual(second, phonesim.Outcome{ResponseCode: "94", Meaning: "duplicate (this request was already answered)",
		Amount: 10000, Currency: "156", Terminal: "ATM00001", STAN: second.STAN}) {
		t.Fatalf("first %+v, second request %+v", first, second)
	}
	s.settled()
	if s.balance(zhang) != before-10000 {
		t.Fatalf("balance %d, want %d: paid twice?", s.balance(zhang), before-10000)
	}
}

func TestE2EProxyDuplicatesCommand(t *testing.T) {
	s := startSystem(t, nil)
	s.proxy.SetFaults(proxysim.Faults{DuplicateCommand: true})
	before := s.balance(zhang)
	if out := s.withdraw(s.qr(20000), zhang, "123456"); out.ResponseCode != "00" {
		t.Fatalf("outcome %+v", out)
	}
	s.settled()
	if s.balance(zhang) != before-20000 {
		t.Fatal("duplicated command paid twice")
	}
}

func TestE2EHostFaults(t *testing.T) {
	t.Run("no answer", func(t *testing.T) {
		s := startSystem(t, nil)
		s.host.SetFaults(hostsim.Faults{NoAnswer: true})
		before := s.balance(zhang)
		if out := s.withdraw(s.qr(10000), zhang, "123456"); out.ResponseCode == "00" || out.Dispensed != 0 {
			t.Fatalf("outcome %+v", out)
		}
		s.host.SetFaults(hostsim.Faults{})
		s.settled()
		if s.balance(zhang) != before {
			t.Fatalf("balance %d, want %d", s.balance(zhang), before)
		}
		// The host never processed the 0200, so the balance alone proves
		// nothing: the reversal must still have reached it.
		s.wantJournal("HOST ACK REVERSAL")
	})
	t.Run("slow answer", func(t *testing.T) {
		// The host debits, then answers after the ATM gave up (5 s against
		// the ATM's 2 s): only the reversal brings the money back.
		s := startSystem(t, nil)
		before := s.balance(hostsim.MagicSlow)
		if out := s.withdraw(s.qr(10000), hostsim.MagicSlow, "123456"); out.ResponseCode == "00" || out.Dispensed != 0 {
			t.Fatalf("outcome %+v", out)
		}
		s.settled()
		if got := s.balance(hostsim.MagicSlow); got != before {
			t.Fatalf("balance %d, want %d: the reversal did not undo the debit", got, before)
		}
		s.wantJournal("HOST ACK REVERSAL")
	})
	t.Run("drop after approve", func(t *testing.T) {
		s := startSystem(t, nil)
		before := s.balance("FAULT-DROP")
		if out := s.withdraw(s.qr(10000), "FAULT-DROP", "123456"); out.ResponseCode == "00" || out.Dispensed != 0 {
			t.Fatalf("outcome %+v", out)
		}
		s.settled() // the reversal reached the host after the link came back
		if s.balance("FAULT-DROP") != before {
			t.Fatalf("balance %d, want %d", s.balance("FAULT-DROP"), before)
		}
	})
}

func TestE2EDispenserFaults(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults appliance.SimFaults
		paid   int64
	}{
		{"jam", appliance.SimFaults{JamAfter: 1}, 0},
		{"short dispense", appliance.SimFaults{ShortDispense: 1}, 40000},
		{"notes not taken", appliance.SimFaults{NotesNotTaken: true}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startSystem(t, func(c *appliance.Config) { c.Dispenser.Sim.Faults = tt.faults })
			before := s.balance(zhang)
			out := s.withdraw(s.qr(50000), zhang, "123456")
			if out.Dispensed != tt.paid {
				t.Fatalf("outcome %+v, want %d paid", out, tt.paid)
			}
			s.settled()
			if got := s.balance(zhang); got != before-tt.paid {
				t.Fatalf("balance %d, want %d (partial reversal)", got, before-tt.paid)
			}
		})
	}
}

func TestE2EForgedTokenRefused(t *testing.T) {
	s := startSystem(t, func(c *appliance.Config) {
		// The dispenser's token key differs from the host's: every token is forged.
		c.Dispenser.Sim.TokenKey = strings.Repeat("ab", 32)
	})
	before := s.balance(zhang)
	if out := s.withdraw(s.qr(10000), zhang, "123456"); out.Dispensed != 0 || out.ResponseCode == "00" {
		t.Fatalf("outcome %+v", out)
	}
	s.settled()
	if s.balance(zhang) != before {
		t.Fatal("debit not reversed after the dispenser refused the token")
	}
}

// The QR on the rendered screen decodes, from pixels, to the session's payload.
func TestE2EPhoneReadsScreen(t *testing.T) {
	s := startSystem(t, nil)
	qr := s.qr(10000)
	// Bounds, not timings: the headless screen is written after the
	// session's change reaches it, which a loaded machine delays.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := phonesim.WaitScreenQR(ctx, filepath.Join(s.dir, "screen.png"), qr, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if out := s.withdraw(qr, zhang, "123456"); !out.PaidInFull() {
		t.Fatalf("outcome %+v", out)
	}
}

// TestE2EControlEndpointGuards: the running appliance's control endpoint
// answers local tools and refuses a request naming another host (DNS
// rebinding from a browser on the appliance) or coming cross-origin.
func TestE2EControlEndpointGuards(t *testing.T) {
	s := startSystem(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.app.ServeControl(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a.String() }) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := <-addrc
	do := func(method, path, host string, hdr map[string]string) int {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := do("GET", "/status", addr, nil); got != http.StatusOK {
		t.Fatalf("GET /status from a local tool: %d", got)
	}
	if got := do("GET", "/status", "rebind.evil.example", nil); got != http.StatusMisdirectedRequest {
		t.Fatalf("GET /status with a foreign Host: %d, want 421", got)
	}
	if got := do("POST", "/operator/settle?session=x&paid=0&operator=o", addr, map[string]string{"Sec-Fetch-Site": "cross-site"}); got != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d, want 403", got)
	}
}

// TestMissingStoreStopsTheStart: a store moved away is not silently
// replaced by an empty one (daily total 0, STANs from 000001): the start
// fails with ErrNoStore unless the operator says this is a new terminal's
// first start (NewStore, atm --new-store).
func TestMissingStoreStopsTheStart(t *testing.T) {
	cfg, err := appliance.Load("../../configs/atm.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Screen.Mode = "headless"
	cfg.Screen.PNG = filepath.Join(cfg.DataDir, "screen.png")
	log := slog.New(slog.DiscardHandler)
	if _, err := appliance.New(cfg, log); !errors.Is(err, appliance.ErrNoStore) {
		t.Fatalf("first start without --new-store: %v, want ErrNoStore", err)
	}
	cfg.NewStore = true
	app, err := appliance.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	app.Close()
	cfg.NewStore = false
	app, err = appliance.New(cfg, log) // the store exists now
	if err != nil {
		t.Fatal(err)
	}
	app.Close()
	if err := os.Rename(filepath.Join(cfg.DataDir, "atm.db"), filepath.Join(cfg.DataDir, "atm.db.moved")); err != nil {
		t.Fatal(err)
	}
	if _, err := appliance.New(cfg, log); !errors.Is(err, appliance.ErrNoStore) {
		t.Fatalf("start after the store was moved away: %v, want ErrNoStore", err)
	}
}

// TestE2EOperatorRoutesNeedCredentials: the control endpoint's operator
// routes take an operator's ID and PIN (HTTP Basic), lock an operator out
// after repeated failures, and refuse everyone while no operator is set
// up; the authenticated operator is the one the journal names.
func TestE2EOperatorRoutesNeedCredentials(t *testing.T) {
	s := startSystem(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.app.ServeControl(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a.String() }) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := <-addrc
	get := func(user, pass string) int {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+addr+"/operator/in-doubt", nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("", ""); got != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d, want 401", got)
	}
	if got := get("op-7", "271828"); got != http.StatusServiceUnavailable {
		t.Fatalf("no operator set up: %d, want 503", got)
	}
	if err := s.app.Operators.Add("op-7", "271828"); err != nil {
		t.Fatal(err)
	}
	if err := s.app.Operators.Add("op-8", "314159"); err != nil {
		t.Fatal(err)
	}
	if got := get("op-7", "271828"); got != http.StatusOK {
		t.Fatalf("right credentials: %d", got)
	}
	want := []int{401, 401, 401, 401, http.StatusLocked, http.StatusLocked}
	var got []int
	for range 5 {
		got = append(got, get("op-7", "000000"))
	}
	got = append(got, get("op-7", "271828")) // locked, even with the right PIN
	if !slices.Equal(got, want) {
		t.Fatalf("answers %v, want %v", got, want)
	}
	if got := get("op-8", "314159"); got != http.StatusOK {
		t.Fatalf("another operator: %d", got)
	}
}

// TestE2ESettleByShortID: an operator settles a session in doubt with the
// 8-character ID /status shows; an ID that names no session in doubt is
// 404 and says where the full IDs are.
func TestE2ESettleByShortID(t *testing.T) {
	s := startSystem(t, func(c *appliance.Config) { c.Dispenser.Sim.Faults = appliance.SimFaults{CountUnknown: true} })
	if out := s.withdraw(s.qr(20000), zhang, "123456"); out.ResponseCode == "00" && out.PaidInFull() {
		t.Fatalf("a count-unknown dispense paid in full: %+v", out)
	}
	list, err := s.app.Core.InDoubt()
	if err != nil || len(list) != 1 {
		t.Fatalf("in doubt: %v, %v", list, err)
	}
	full := list[0].ID
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.app.ServeControl(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a.String() }) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := <-addrc
	if err := s.app.Operators.Add("op-7", "271828"); err != nil {
		t.Fatal(err)
	}
	settle := func(id string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+addr+"/operator/settle?paid=0&session="+id, nil)
		req.SetBasicAuth("op-7", "271828")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := settle("0000000000"); code != 404 || body != `{"error":"no session in doubt has the ID 0000000000 (GET /operator/in-doubt lists the full IDs)"}` {
		t.Fatalf("unknown ID: %d %s", code, body)
	}
	if code, body := settle("ab12"); code != 400 {
		t.Fatalf("short ID: %d %s", code, body)
	}
	if code, body := settle(strings.ToLower(full[:8])); code != 200 || !strings.Contains(body, `"id":"`+full[:8]+`"`) {
		t.Fatalf("settle by the short ID: %d %s", code, body)
	}
	if list, _ := s.app.Core.InDoubt(); len(list) != 0 {
		t.Fatalf("still in doubt: %v", list)
	}
	// The way back: the operator resets the dispenser, then adopts the
	// device's counts (the purged notes were never counted).
	post := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+addr+path, nil)
		req.SetBasicAuth("op-7", "271828")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := post("/operator/dispenser/reset"); code != 200 || !strings.Contains(body, `"reason":"counters"`) {
		t.Fatalf("reset: %d %s", code, body)
	}
	if code, body := post("/operator/counters/adopt"); code != 200 {
		t.Fatalf("adopt: %d %s", code, body)
	}
	s.waitFor("back in service", func(st appliance.Status) bool { return st.InService })
}
