package appliance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
)

// benchCustomer has no limits and a balance no benchmark run can exhaust.
const (
	benchCustomer = "13900000000"
	benchPIN      = "123456"
	benchAmount   = 10000 // one 100.00 note
)

// BenchmarkEndToEnd times the end-to-end path of a cardless withdrawal, the
// phone's request in to the dispense command out: from the sealed 0200
// being written to the proxy's phone port until the core calls the
// dispenser's Dispense. Everything is real and over loopback TCP with real
// bbolt files: proxysim, the appliance (proxy link, core, host link),
// hostsim. The host and the dispenser simulator add no delay.
//
// Per iteration, untimed: the customer asks for a withdrawal (QR), the
// phone's request is built and sealed; after the timed part the rest of the
// transaction finishes (present, take, 0210 to the phone, completion advice
// acknowledged) before the next iteration, and one sample of each floor
// component is taken on the quiet system.
//
// The floor, measured in the same run on the same disk: the three bbolt
// commits the path needs (the ATM's Authorizing commit, the host's
// authorization commit, the ATM's Dispensing commit), written with the same
// packages and record sizes, plus the loopback messages the path sends (the
// phone's 0200 to the proxy and the proxy's 0200 to the ATM, one way each,
// and the ATM's 0200/0210 round trip with the host: two plain TCP round
// trips of the same sizes). It reports p50 and p99 of the path, the floor
// (sum of the components' medians), each component, and p50/floor.
//
// Run it with a fixed count:
//
//	go test -run '^$' -bench EndToEnd -benchtime 200x ./atm/appliance/
func BenchmarkEndToEnd(b *testing.B) {
	s := startBenchSystem(b)
	fl := newFloor(b, s)

	var (
		path    = make([]time.Duration, 0, b.N)
		nonce   = make([]time.Duration, 0, b.N) // the dispenser's CommandNonce, inside path
		exNonce = make([]time.Duration, 0, b.N) // path without it
		ctx     = context.Background()
	)
	b.StopTimer()
	b.ResetTimer()
	for i := range b.N {
		sess, err := s.app.Core.RequestWithdrawal(ctx, benchAmount)
		if err != nil {
			b.Fatalf("iteration %d: RequestWithdrawal: %v", i, err)
		}
		frame := s.phone.request(b, sess.QR)
		s.disp.arm()

		b.StartTimer()
		t0 := time.Now()
		if _, err := s.phone.conn.Write(frame); err != nil {
			b.Fatalf("iteration %d: write to proxy: %v", i, err)
		}
		var at time.Time
		select {
		case at = <-s.disp.called:
		case <-time.After(30 * time.Second):
			b.Fatalf("iteration %d: no Dispense within 30s; logs:\n%s", i, s.logs.String())
		}
		b.StopTimer()
		path = append(path, at.Sub(t0))
		nonce = append(nonce, time.Duration(s.disp.nonceTook.Load()))
		exNonce = append(exNonce, path[i]-nonce[i])

		s.phone.answer(b, i)
		s.settle(b)
		rec := s.app.Core.View().Session // the finished session's record, for the floor's commits
		if err := s.app.Core.Dismiss(ctx); err != nil {
			b.Fatal(err)
		}
		fl.sample(b, rec)
	}
	if err := s.app.Store.VerifyJournal(); err != nil {
		b.Fatal(err)
	}

	p50, p99 := percentile(path, 50), percentile(path, 99)
	floor := fl.total()
	b.ReportMetric(float64(p50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(p99.Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(floor.Nanoseconds()), "floor-ns")
	b.ReportMetric(float64(p50)/float64(floor), "p50/floor")
	for _, c := range fl.components() {
		b.ReportMetric(float64(c.median.Nanoseconds()), c.unit)
	}
	b.ReportMetric(float64(percentile(nonce, 50).Nanoseconds()), "dev-nonce-ns")
	b.ReportMetric(float64(percentile(exNonce, 50).Nanoseconds()), "p50-ex-nonce-ns")
}

// benchSystem is the system of e2e_test.go, started for a benchmark: no
// added delays, a customer and cassettes that last any run, and the
// dispenser observed at the moment Dispense is called.
type benchSystem struct {
	*system
	disp  *observedDispenser
	phone *benchPhone
}

func startBenchSystem(b *testing.B) *benchSystem {
	b.Helper()
	s := &benchSystem{}
	s.system = newSystem(b, systemOptions{
		logLevel: slog.LevelInfo,
		host: func(c *hostsim.Config) {
			c.Customers = append(c.Customers, hostsim.Customer{ID: benchCustomer, PIN: benchPIN, Name: "Benchmark", Balance: 1 << 50})
		},
		atm: func(cfg *appliance.Config) {
			cfg.Host.SendTimeout = appliance.Duration(5 * time.Second)
			// No screen: the path under test does not include rendering.
			cfg.Screen = appliance.Screen{Mode: "window"}
			cfg.TakeTimeout = appliance.Duration(5 * time.Second)
			cfg.Limits.Daily = 0
			cfg.Dispenser.Sim.TakeDelay = 0
			for i := range cfg.Dispenser.Sim.Units {
				cfg.Dispenser.Sim.Units[i].Count = 1_000_000
			}
		},
		// Observe Dispense: rebuild the core from the appliance's own core
		// configuration with the dispenser wrapped. The appliance hands
		// commands to (and Run runs) whatever Core it holds, so the path is
		// the production wiring plus one method call.
		wire: func(app *appliance.Appliance, log *slog.Logger) {
			c := app.Core.Config()
			s.disp = &observedDispenser{Sim: app.DispenserSim, called: make(chan time.Time, 1)}
			c.Dispenser = s.disp
			var err error
			if app.Core, err = atm.New(c); err != nil {
				b.Fatal(err)
			}
			app.Backend = appliance.NewBackend(app.Core)
		},
	})
	phone, err := phonesim.LoadConfig("../../configs/phonesim.json")
	if err != nil {
		b.Fatal(err)
	}
	s.phone = dialPhone(b, phone, s.proxy.PhoneAddr())
	return s
}

// waitFor polls the appliance's status every 100µs for at most 30 s.
func (s *benchSystem) waitFor(b *testing.B, what string, ok func(appliance.Status) bool) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := s.app.Status()
		if ok(st) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s; status %+v", what, st)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// settle waits until the session is finished and paid and its completion
// advice acknowledged by the host.
func (s *benchSystem) settle(b *testing.B) {
	b.Helper()
	s.waitFor(b, "session completed and advice acknowledged", func(st appliance.Status) bool {
		return st.Session != nil && st.Session.Completed && st.SAFPending == 0
	})
	if v := s.app.Core.View(); v.Session.State != atm.StateCompleted || v.Session.Paid != benchAmount {
		b.Fatalf("session %s, paid %d", v.Session.State, v.Session.Paid)
	}
}

// observedDispenser is the appliance's dispenser simulator with the moment
// Dispense is called sent on called (when armed). Every other method,
// including the optional PresentStatus and Reset, is the simulator's.
type observedDispenser struct {
	*dispensersim.Sim
	armed     atomic.Bool
	called    chan time.Time
	nonceTook atomic.Int64 // ns
}

// CommandNonce is the simulator's, timed when armed: the simulated device
// saves its nonce counter durably (a state file written, fsynced and renamed
// into place) before answering, on the path but not part of the floor.
func (d *observedDispenser) CommandNonce(ctx context.Context) (string, error) {
	t0 := time.Now()
	n, err := d.Sim.CommandNonce(ctx)
	if d.armed.Load() {
		d.nonceTook.Store(int64(time.Since(t0)))
	}
	return n, err
}

func (d *observedDispenser) arm() {
	select {
	case <-d.called:
	default:
	}
	d.nonceTook.Store(0)
	d.armed.Store(true)
}

func (d *observedDispenser) Dispense(ctx context.Context, mix dispenser.Mix, token string) (dispenser.Result, error) {
	if d.armed.CompareAndSwap(true, false) {
		d.called <- time.Now()
	}
	return d.Sim.Dispense(ctx, mix, token)
}

var (
	_ atm.Dispenser       = (*observedDispenser)(nil)
	_ atm.PresentStatuser = (*observedDispenser)(nil)
	_ atm.Resetter        = (*observedDispenser)(nil)
)

// benchPhone is the phone app of phonesim on one kept-open connection to
// the proxy, so that a request can be sealed beforehand and timed from the
// moment its bytes are written.
type benchPhone struct {
	conn  net.Conn
	codec *wire.Codec
	phone *phonesim.Phone
	sizes struct{ req, resp int }
}

func dialPhone(b *testing.B, cfg phonesim.Config, addr string) *benchPhone {
	b.Helper()
	ph, err := phonesim.NewPhone(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ph.Close)
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return &benchPhone{conn: conn, phone: ph, codec: &wire.Codec{Framer: wire.Framer{TPDU: cfg.TPDU}, Protector: ph.Protector(),
		OnReject: func(mti, stan string, err error) { b.Errorf("phone: answer %s %s refused: %v", mti, stan, err) }}}
}

// request builds and seals the phone's 0200 for the QR payload text, as
// phonesim.Withdraw does, and returns the frame to write.
func (p *benchPhone) request(b *testing.B, payload string) []byte {
	b.Helper()
	m, err := p.phone.Request(payload, benchCustomer, benchPIN)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := p.codec.WriteMessage(&buf, m); err != nil {
		b.Fatal(err)
	}
	p.sizes.req = buf.Len()
	return buf.Bytes()
}

// answer reads the proxy's 0210 and checks that the withdrawal was paid in
// full.
func (p *benchPhone) answer(b *testing.B, i int) {
	b.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	cr := &countingReader{r: p.conn}
	m, err := p.codec.ReadMessage(cr)
	if err != nil || m == nil {
		b.Fatalf("iteration %d: phone: no answer: %v", i, err)
	}
	p.sizes.resp = cr.n
	var w wire.Withdrawal
	if err := wire.Parse(m, &w); err != nil {
		b.Fatal(err)
	}
	if w.ResponseCode != wire.RCApproved || w.ReplacementAmounts != "" {
		b.Fatalf("iteration %d: answer rc %s, field 95 %q", i, w.ResponseCode, w.ReplacementAmounts)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// floor measures the components of the floor, one sample of each per
// iteration, on the same disk and loopback as the path.
type floor struct {
	atm  *store.DB // a second ATM store: the Authorizing and Dispensing commits
	host *bolt.DB  // the host's authorization commit, as hostsim writes it
	echo net.Conn  // a plain TCP request/response peer on 127.0.0.1
	sys  *benchSystem

	commitAuth, commitHost, commitDisp, rtt []time.Duration
	seq                                     int
}

func newFloor(b *testing.B, s *benchSystem) *floor {
	b.Helper()
	dir := b.TempDir()
	f := &floor{sys: s}
	var err error
	// Journal authenticated like the appliance's own store (head MAC in each commit).
	if f.atm, err = store.Open(filepath.Join(dir, "floor-atm.db"), store.Options{JournalAuth: appliance.JournalAuth(s.app.HSM)}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.atm.Close() })
	if f.host, err = bolt.Open(filepath.Join(dir, "floor-host.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.host.Close() })
	if err := f.host.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"customers", "daily", "totals", "auths"} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go echoServer(ln)
	if f.echo, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.echo.Close() })
	return f
}

// echoServer answers every request (a 4-byte header: request length,
// response length; then the request) with a response of the asked length,
// until the connection closes.
func echoServer(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			hdr := make([]byte, 4)
			buf := make([]byte, 1<<16)
			for {
				if _, err := io.ReadFull(c, hdr); err != nil {
					return
				}
				req, resp := int(hdr[0])<<8|int(hdr[1]), int(hdr[2])<<8|int(hdr[3])
				if _, err := io.ReadFull(c, buf[:req]); err != nil {
					return
				}
				if _, err := c.Write(buf[:resp]); err != nil {
					return
				}
			}
		}()
	}
}

// sample takes one sample of each component, using the finished session's
// record so the sizes are those of the path.
func (f *floor) sample(b *testing.B, sess *atm.Session) {
	b.Helper()
	f.seq++
	rec, err := json.Marshal(sess)
	if err != nil {
		b.Fatal(err)
	}
	id := fmt.Sprintf("%s-%d", sess.ID, f.seq)

	// atm/command.go: the COMMAND ACCEPTED commit (state Authorizing), with
	// the host STAN allocated in the same transaction.
	f.commitAuth = append(f.commitAuth, timed(b, func() error {
		return f.atm.UpdateLabeled("Authorizing", func(tx *store.Tx) error {
			if _, err := tx.NextSTAN(); err != nil {
				return err
			}
			if err := tx.PutSession(id, rec); err != nil {
				return err
			}
			_, err := tx.AppendJournal(store.Entry{Kind: "COMMAND ACCEPTED", SessionID: id,
				Text: "dispense command accepted; authorizing with the host",
				Data: map[string]string{"state": "Authorizing", "amount": "10000", "stan": "000001", "customer": "****0000"}})
			return err
		})
	}))

	// hostsim's authorization: account, daily usage, totals and the
	// authorization record in one Update.
	f.commitHost = append(f.commitHost, timed(b, func() error {
		return f.host.Update(func(tx *bolt.Tx) error {
			acct := []byte(`{"id":"13900000000","name":"Benchmark","pinSalt":"c2FsdHNhbHRzYWx0c2FsdA==","pinHash":"` +
				"aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=" + `","balance":` + strconv.Itoa(1<<40-f.seq) +
				`,"dailyLimit":0,"perTxnLimit":0,"blocked":false,"badPins":0}`)
			if err := tx.Bucket([]byte("customers")).Put([]byte(benchCustomer), acct); err != nil {
				return err
			}
			if err := tx.Bucket([]byte("daily")).Put([]byte(benchCustomer+"/2026-01-01"), []byte(strconv.Itoa(f.seq*benchAmount))); err != nil {
				return err
			}
			if err := tx.Bucket([]byte("totals")).Put([]byte("2026-01-01/ATM00001"),
				[]byte(`{"count":`+strconv.Itoa(f.seq)+`,"approved":`+strconv.Itoa(f.seq*benchAmount)+`,"reversed":0}`)); err != nil {
				return err
			}
			return tx.Bucket([]byte("auths")).Put([]byte("ATM00001/"+strconv.Itoa(f.seq)), rec)
		})
	}))

	// atm/flow.go: the APPROVED commit (state Dispensing).
	f.commitDisp = append(f.commitDisp, timed(b, func() error {
		return f.atm.UpdateLabeled("Dispensing", func(tx *store.Tx) error {
			if err := tx.PutSession(id, rec); err != nil {
				return err
			}
			_, err := tx.AppendJournal(store.Entry{Kind: "APPROVED", SessionID: id, Text: "host approved; dispensing",
				Data: map[string]string{"state": "Dispensing", "amount": "10000", "auth": "123456", "rrn": "000000000001"}})
			return err
		})
	}))

	// A plain TCP round trip with the phone's request and answer sizes.
	req, resp := f.sys.phone.sizes.req, f.sys.phone.sizes.resp
	msg := make([]byte, 4+req)
	msg[0], msg[1], msg[2], msg[3] = byte(req>>8), byte(req), byte(resp>>8), byte(resp)
	in := make([]byte, resp)
	f.rtt = append(f.rtt, timed(b, func() error {
		if _, err := f.echo.Write(msg); err != nil {
			return err
		}
		_, err := io.ReadFull(f.echo, in)
		return err
	}))
}

func timed(b *testing.B, fn func() error) time.Duration {
	t0 := time.Now()
	if err := fn(); err != nil {
		b.Fatal(err)
	}
	return time.Since(t0)
}

type component struct {
	unit   string
	median time.Duration
}

func (f *floor) components() []component {
	return []component{
		{"commit-auth-ns", percentile(f.commitAuth, 50)},
		{"commit-host-ns", percentile(f.commitHost, 50)},
		{"commit-disp-ns", percentile(f.commitDisp, 50)},
		{"tcp-rtt-ns", percentile(f.rtt, 50)},
	}
}

// total is the floor: the three commits and two round trips' worth of
// loopback messages (two one-way 0200s, one round trip with the host).
func (f *floor) total() time.Duration {
	var t time.Duration
	for _, c := range f.components() {
		t += c.median
	}
	return t + percentile(f.rtt, 50) // the RTT counts twice
}

// percentile returns the p-th percentile (nearest rank) of d.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(i, 0)]
}
