package hostsim

import (
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	bolt "go.etcd.io/bbolt"

	"github.com/cardless-atm/cardless/atm/host/bindapi"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/internal/connlimit"
)

// Magic customer IDs (field 120 of a 0200) that choose a fault for that one
// message. See the package documentation.
const (
	MagicSlow     = "FAULT-SLOW"     // process, then answer after Faults.SlowAnswer (DefaultSlowAnswer if zero)
	MagicNoAnswer = "FAULT-NOANSWER" // drop unprocessed, never answer
	MagicDrop     = "FAULT-DROP"     // process; if approved, close the connection instead of answering
	// MagicDeclinePrefix followed by a two-character code ("FAULT-DECLINE-51")
	// answers that code without touching any account.
	MagicDeclinePrefix = "FAULT-DECLINE-"
)

// DefaultSlowAnswer is the delay of MagicSlow when Faults.SlowAnswer is zero.
const DefaultSlowAnswer = 5 * time.Second

// RCPINTriesExceeded (75) answers a 0200 once a customer has entered a wrong
// PIN maxPINTries times in a row.
const RCPINTriesExceeded = "75"

// Server is the bank host simulator. Create it with NewServer (listening on
// 127.0.0.1:0) or NewUnstartedServer and Start; stop it with Close.
type Server struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	zone  *time.Location // the day of the totals (Config.DayZone)
	db    *bolt.DB
	hsm   *hsm.Soft
	terms map[string]*wire.Codec
	tpdu  []byte

	faultsMu sync.Mutex
	faults   Faults

	binding Binding // Config.Binding, defaults applied
	smsMu   sync.Mutex
	sms     map[string][]bindapi.SMS // the simulated SMS inbox, by number

	bindSrv *http.Server // the bind endpoint, once StartBind ran
	bindLn  net.Listener

	gate *connlimit.Gate // Config.Limits

	netMu  sync.Mutex
	netLog map[string][]string // terminal ID -> field 70 codes received

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
	done    chan struct{}
	rrnSeq  atomic.Uint64
	rrnOnce sync.Once
	started bool
}

// NewServer opens the database, loads the keys and starts listening on
// 127.0.0.1:0.
func NewServer(cfg Config) (*Server, error) {
	s, err := NewUnstartedServer(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// NewUnstartedServer validates cfg, opens the database (seeding customers
// on first start) and loads the keys, without listening.
func NewUnstartedServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("hostsim: config: %w", err)
	}
	tpdu, err := wire.ParseTPDU(cfg.TPDU)
	if err != nil {
		return nil, errors.New("hostsim: config: tpdu must be 10 hex digits starting with 60")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, hsm: hsm.NewSoft(), terms: map[string]*wire.Codec{},
		faults: cfg.Faults, conns: map[net.Conn]struct{}{}, done: make(chan struct{}), tpdu: tpdu,
		binding: cfg.Binding.withDefaults()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "hostsim")
	if s.now == nil {
		s.now = time.Now
	}
	s.zone, _ = cfg.Zone()        // checked by Validate
	lim, _ := cfg.Limits.Limits() // checked by Validate
	s.gate = connlimit.NewGate(lim)
	if err := s.loadKeys(); err != nil {
		s.hsm.Close()
		return nil, err
	}
	db, err := openDB(cfg.DBPath, cfg.Customers, cfg.Binding.Devices, s.now())
	if err != nil {
		s.hsm.Close()
		return nil, err
	}
	s.db = db
	return s, nil
}

func (s *Server) loadKeys() error {
	imp := func(name hsm.KeyName, hexKey, what string) error {
		k, err := hex.DecodeString(hexKey)
		if err != nil {
			return fmt.Errorf("hostsim: %s is not hex", what)
		}
		defer clear(k)
		if _, err := s.hsm.ImportClearKey(name, k); err != nil {
			return fmt.Errorf("hostsim: %s: %w", what, err)
		}
		return nil
	}
	for id, t := range s.cfg.Terminals {
		mac, data := hsm.KeyName("host.mac/"+id), hsm.KeyName("host.data/"+id)
		if err := imp(mac, t.MACKey, "terminals."+id+".macKey"); err != nil {
			return err
		}
		if err := imp(data, t.DataKey, "terminals."+id+".dataKey"); err != nil {
			return err
		}
		s.terms[id] = &wire.Codec{
			Framer:    wire.Framer{TPDU: s.tpdu},
			Protector: wire.NewProtector(s.hsm, wire.KeySet{NetMgmtMAC: mac, MAC: mac, Data: data}),
		}
	}
	if err := imp(hsm.AppPINKey, s.cfg.AppPINKey, "appPinKey"); err != nil {
		return err
	}
	k, err := hex.DecodeString(s.cfg.TokenKey)
	if err != nil {
		return errors.New("hostsim: tokenKey is not hex")
	}
	defer clear(k)
	if err := s.hsm.ImportClearHMACKey(hsm.TokenKey, k); err != nil {
		return fmt.Errorf("hostsim: tokenKey: %w", err)
	}
	return nil
}

// Start listens on addr and serves in the background.
func (s *Server) Start(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.started {
		return errors.New("hostsim: server already started or closed")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("hostsim: listen: %w", err)
	}
	s.ln, s.started = ln, true
	s.wg.Add(1)
	go s.accept(ln)
	s.log.Info("host simulator listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the listening address (host:port), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.faultsMu.Lock()
	s.faults = f
	s.faultsMu.Unlock()
}

func (s *Server) getFaults() Faults {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	return s.faults
}

// Close stops listening, drops every connection, waits for the handlers
// and closes the database and the keys. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	if s.ln != nil {
		s.ln.Close()
	}
	if s.bindSrv != nil {
		s.bindSrv.Close() // handlers in flight are tracked: wg below
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	err := s.db.Close()
	s.hsm.Close()
	return err
}

// Balance returns a customer's balance in minor units.
func (s *Server) Balance(customerID string) (int64, error) {
	var a account
	err := s.db.View(func(tx *bolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bucketCustomers), []byte(customerID), &a)
		if err == nil && !ok {
			return ErrUnknownCustomer
		}
		return err
	})
	return a.Balance, err
}

// Totals returns one terminal's settlement totals for day (YYYY-MM-DD, UTC).
func (s *Server) Totals(day, terminalID string) (Totals, error) {
	return readTotals(s.db, day, terminalID)
}

// track registers work that Close must wait for; it fails once closed.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-s.done:
			default:
				s.log.Error("accept failed", "err", err)
			}
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.mu.Unlock()
		release, err := s.gate.Admit(nc)
		if err != nil {
			s.log.Warn("connection refused", "remote", nc.RemoteAddr().String(), "reason", err)
			nc.Close()
			continue
		}
		s.mu.Lock()
		s.conns[nc] = struct{}{}
		s.mu.Unlock()
		s.serve(nc, release)
	}
}

// hostConn is one ATM connection. It is bound to a terminal by its first
// message, which must name an admitted terminal and carry a MAC made with
// that terminal's key; otherwise the connection is refused (closed).
type hostConn struct {
	s     *Server
	nc    net.Conn
	term  atomic.Pointer[string]
	codec atomic.Pointer[wire.Codec]

	// A connection serves financial messages only once the terminal has
	// returned the challenge of its sign-on answer (field 53) in an
	// 0800/301 MAC'd with its key: a recorded sign-on replayed from
	// another connection gets nothing done.
	mu        sync.Mutex
	challenge string
	confirmed bool

	frames *connlimit.Frames // read deadlines of each frame
}

// isConfirmed reports whether the connection's sign-on was confirmed.
func (hc *hostConn) isConfirmed() bool {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return hc.confirmed
}

func (s *Server) serve(nc net.Conn, release func()) {
	hc := &hostConn{s: s, nc: nc, frames: s.gate.NewFrames(nc)}
	remote := nc.RemoteAddr().String()
	conn, err := connection.NewFrom(nc, wire.Spec, nil, nil,
		connection.SetMessageReader(hc),
		connection.SetMessageWriter(hc),
		connection.SendTimeout(10*time.Second),
		connection.IdleTime(time.Hour),
		connection.ReadTimeout(time.Hour),
		connection.InboundMessageHandler(hc.handle),
		connection.ConnectionClosedHandler(func(*connection.Connection) {
			release()
			s.mu.Lock()
			delete(s.conns, nc)
			s.mu.Unlock()
			s.log.Info("connection closed", "remote", remote, "terminal", hc.terminal())
		}),
	)
	if err != nil {
		s.log.Error("connection setup failed", "err", err)
		release()
		nc.Close()
		return
	}
	_ = conn
	s.log.Info("connection accepted", "remote", remote)
}

func (hc *hostConn) terminal() string {
	if p := hc.term.Load(); p != nil {
		return *p
	}
	return ""
}

// errRefused closes a connection whose first message is not admissible.
var errRefused = errors.New("hostsim: connection refused")

// ReadMessage implements connection.MessageReader.
func (hc *hostConn) ReadMessage(r io.Reader) (*iso8583.Message, error) {
	if p, ok := r.(connlimit.Peeker); ok {
		if err := hc.frames.Next(p); err != nil {
			return nil, err
		}
	}
	framer := wire.Framer{TPDU: hc.s.tpdu}
	raw, err := framer.ReadFrame(r)
	if err != nil {
		return nil, err
	}
	bound := hc.terminal()
	if bound == "" {
		// Field 41 of the unverified message only chooses the keys; the
		// MAC made with them proves it. A message that does not unpack
		// names no terminal ("") and is refused.
		tid, _ := wire.PeekTerminal(raw)
		codec, ok := hc.s.terms[tid]
		if !ok {
			hc.s.log.Warn("terminal refused", "reason", "terminal not admitted", "terminal", tid, "remote", hc.nc.RemoteAddr().String())
			return nil, fmt.Errorf("%w: terminal %q not admitted", errRefused, tid)
		}
		m, err := codec.Protector.Open(raw)
		if err != nil {
			hc.s.log.Warn("terminal refused", "reason", "message does not verify with the terminal's keys", "terminal", tid, "err", err)
			return nil, fmt.Errorf("%w: %w", errRefused, err)
		}
		hc.term.Store(&tid)
		hc.codec.Store(codec)
		hc.s.log.Info("terminal admitted", "terminal", tid)
		return m, nil
	}
	m, err := hc.codec.Load().Protector.Open(raw)
	if err != nil {
		hc.s.log.Warn("message rejected", "terminal", bound, "err", err)
		return nil, nil
	}
	if tid, _ := m.GetString(wire.FieldTerminalID); strings.TrimRight(tid, " ") != bound {
		hc.s.log.Warn("terminal refused", "reason", "terminal ID changed on a bound connection", "terminal", bound, "claimed", strings.TrimRight(tid, " "))
		return nil, fmt.Errorf("%w: terminal ID changed", errRefused)
	}
	return m, nil
}

// WriteMessage implements connection.MessageWriter.
func (hc *hostConn) WriteMessage(w io.Writer, m *iso8583.Message) error {
	codec := hc.codec.Load()
	if codec == nil {
		return errors.New("hostsim: no terminal bound")
	}
	return codec.WriteMessage(w, m)
}

// handle answers one verified message.
func (hc *hostConn) handle(conn *connection.Connection, m *iso8583.Message) {
	s := hc.s
	if !s.track() {
		return
	}
	defer s.wg.Done()
	term := hc.terminal()
	mti := wire.MTI(m)
	f := s.getFaults()
	var (
		resp any
		drop bool // close the connection instead of answering
		slow = f.SlowAnswer
	)
	if f.NoAnswer && (mti == wire.MTIFinancialRequest || mti == wire.MTIAdvice || mti == wire.MTIReversal) {
		s.log.Warn("fault: financial message dropped unanswered", "terminal", term, "mti", mti, "stan", wire.STAN(m))
		return
	}
	if mti != wire.MTINetMgmtRequest && !hc.isConfirmed() {
		s.log.Warn("terminal refused", "reason", "financial message before a confirmed sign-on; closing", "terminal", term, "mti", mti, "stan", wire.STAN(m))
		hc.nc.Close()
		return
	}
	if mti != wire.MTINetMgmtRequest {
		s.noteSTAN(term, wire.STAN(m))
	}
	switch mti {
	case wire.MTINetMgmtRequest:
		nm := s.netMgmt(m)
		if nm != nil && !hc.signOnStep(nm) {
			defer hc.nc.Close() // after the 63 is sent
		}
		resp = nm
		slow = 0
	case wire.MTIFinancialRequest:
		var w wire.Withdrawal
		if err := wire.Parse(m, &w); err != nil {
			s.log.Warn("0200 unreadable", "terminal", term, "err", err)
			return
		}
		switch {
		case w.CustomerID == MagicNoAnswer:
			s.log.Warn("fault: 0200 dropped unanswered", "terminal", term, "stan", w.STAN)
			return
		case w.CustomerID == MagicSlow && slow == 0:
			slow = DefaultSlowAnswer
		}
		ans := s.authorize(term, &w, f)
		resp = ans
		if ans.ResponseCode == wire.RCApproved && (f.DropAfterApprove || w.CustomerID == MagicDrop) {
			drop = true
		}
	case wire.MTIAdvice:
		var a wire.Advice
		if err := wire.Parse(m, &a); err != nil {
			s.log.Warn("0220 unreadable", "terminal", term, "err", err)
			return
		}
		resp = s.advice(term, &a)
	case wire.MTIReversal:
		var r wire.Reversal
		if err := wire.Parse(m, &r); err != nil {
			s.log.Warn("0420 unreadable", "terminal", term, "err", err)
			return
		}
		resp = s.reversal(term, &r)
	case wire.MTIReconRequest: // reconcile.go
		var r wire.Reconciliation
		if err := wire.Parse(m, &r); err != nil {
			s.log.Warn("0500 unreadable", "terminal", term, "err", err)
			return
		}
		resp = s.reconcile(term, &r)
	default:
		s.log.Warn("unexpected message ignored", "terminal", term, "mti", mti, "stan", wire.STAN(m))
		return
	}
	if drop {
		s.log.Warn("fault: approved, connection dropped before the answer", "terminal", term, "stan", wire.STAN(m))
		hc.nc.Close()
		return
	}
	if slow > 0 {
		t := time.NewTimer(slow)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return
		}
	}
	out, err := wire.Build(resp)
	if err != nil {
		s.log.Error("answer not built", "terminal", term, "mti", mti, "err", err)
		return
	}
	if err := conn.Reply(out); err != nil {
		s.log.Warn("answer not sent", "terminal", term, "mti", wire.MTI(out), "stan", wire.STAN(out), "err", err)
	}
}

func (s *Server) netMgmt(m *iso8583.Message) *wire.NetMgmt {
	var n wire.NetMgmt
	if err := wire.Parse(m, &n); err != nil {
		return nil
	}
	rc := wire.RCApproved
	switch n.NetMgmtCode {
	case wire.NetSignOn, wire.NetSignOff, wire.NetEcho:
	default:
		rc = wire.RCInvalidTransaction
	}
	s.netMu.Lock()
	if s.netLog == nil {
		s.netLog = map[string][]string{}
	}
	s.netLog[n.TerminalID] = append(s.netLog[n.TerminalID], n.NetMgmtCode)
	s.netMu.Unlock()
	out := n.Response(rc)
	out.Challenge = n.Challenge // checked (and cleared) by signOnStep
	if n.NetMgmtCode == wire.NetSignOn && rc == wire.RCApproved {
		out.ResponseCode, out.AdditionalData = s.anchor(n.TerminalID, n.AdditionalData)
	}
	s.log.Debug("0800", "terminal", n.TerminalID, "code", n.NetMgmtCode, "rc", out.ResponseCode)
	return &out
}

// signOnStep adds the sign-on challenge to the answer to a sign-on (001),
// and checks the challenge an 0800/301 returns; false: a wrong challenge,
// answered 63, after which the connection is closed.
func (hc *hostConn) signOnStep(nm *wire.NetMgmt) bool {
	if nm.ResponseCode != wire.RCApproved {
		return true
	}
	switch {
	case nm.NetMgmtCode == wire.NetSignOn:
		ch, err := wire.NewChallenge()
		if err != nil {
			hc.s.log.Error("sign-on challenge", "err", err)
			nm.ResponseCode = wire.RCSystemMalfunction
			return true
		}
		nm.Challenge = ch
		hc.mu.Lock()
		hc.challenge, hc.confirmed = ch, false
		hc.mu.Unlock()
		// A sign-on nobody confirms (a replay) holds the connection only
		// until the sign-on deadline.
		time.AfterFunc(hc.s.gate.Limits().SignOn, func() {
			if !hc.isConfirmed() {
				hc.s.log.Warn("terminal refused", "reason", "sign-on not confirmed in time; closing", "terminal", hc.terminal())
				hc.nc.Close()
			}
		})
	case nm.NetMgmtCode == wire.NetEcho && nm.Challenge != "":
		hc.mu.Lock()
		want := hc.challenge
		hc.challenge = ""
		ok := want != "" && subtle.ConstantTimeCompare([]byte(nm.Challenge), []byte(want)) == 1
		hc.confirmed = ok
		hc.mu.Unlock()
		nm.Challenge = ""
		if !ok {
			hc.s.log.Warn("terminal refused", "reason", "sign-on confirmation with a wrong challenge", "terminal", hc.terminal())
			nm.ResponseCode = wire.RCSecurityViolation
			return false
		}
		hc.s.log.Info("terminal signed on (challenge returned)", "terminal", hc.terminal())
	}
	return true
}

// anchorRecord is what the host keeps per terminal against a rolled-back
// store: the highest journal sequence reported at sign-on, and the last
// STAN received in a 0200, 0220 or 0420.
type anchorRecord struct {
	JournalSeq uint64 `json:"journalSeq"`
	STAN       string `json:"stan,omitempty"`
}

// anchor checks the anchor a terminal reports at sign-on (field 48): a
// journal older than one it reported before, or a last STAN behind one the
// host has received, means its store was put back to an older copy
// (refused, 63, with an ALARM); otherwise the journal record moves up. The
// answer carries the host's record.
func (s *Server) anchor(term, field48 string) (rc, answer string) {
	got, err := wire.ParseAnchor(field48)
	if err != nil {
		s.log.Warn("sign-on without a valid anchor refused", "terminal", term, "err", err)
		return wire.RCFormatError, ""
	}
	var rec anchorRecord
	var behind bool
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAnchors)
		if _, err := getJSON(b, []byte(term), &rec); err != nil {
			return err
		}
		if behind = got.JournalSeq < rec.JournalSeq || wire.STANBehind(got.STAN, rec.STAN); behind {
			return nil
		}
		rec.JournalSeq = got.JournalSeq
		return putJSON(b, []byte(term), &rec)
	})
	mine := wire.Anchor{JournalSeq: rec.JournalSeq, STAN: rec.STAN}.String()
	switch {
	case err != nil:
		s.log.Error("anchor", "terminal", term, "err", err)
		return wire.RCSystemMalfunction, ""
	case behind:
		s.log.Error("ALARM terminal reports an older state than the host has seen: its store was rolled back; sign-on refused",
			"terminal", term, "journal", got.JournalSeq, "host_journal", rec.JournalSeq, "stan", got.STAN, "host_stan", rec.STAN)
		return wire.RCSecurityViolation, mine
	}
	return wire.RCApproved, mine
}

// noteSTAN records the STAN of a financial message from term, the host's
// half of the anchor.
func (s *Server) noteSTAN(term, stan string) {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAnchors)
		var rec anchorRecord
		if _, err := getJSON(b, []byte(term), &rec); err != nil {
			return err
		}
		rec.STAN = stan
		return putJSON(b, []byte(term), &rec)
	})
	if err != nil {
		s.log.Error("anchor STAN", "terminal", term, "err", err)
	}
}

// NetMgmt returns the network-management codes (field 70: "001" sign-on,
// "002" sign-off, "301" echo) received from terminalID since the server
// started, in order of arrival.
func (s *Server) NetMgmt(terminalID string) []string {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	return slices.Clone(s.netLog[terminalID])
}

// maskID masks a customer ID for the log: at most the last 4 characters.
func maskID(id string) string {
	if len(id) <= 4 {
		return strings.Repeat("*", len(id))
	}
	return strings.Repeat("*", len(id)-4) + id[len(id)-4:]
}

// Debit is what the host holds against one authorization: the amount
// debited less what reversals gave back.
type Debit struct {
	Terminal string
	STAN     string
	Nonce    string // the dispense nonce of the 0200 (field 48)
	Net      int64  // minor units; 0 when declined or fully reversed
}

// Debits lists every authorization the host recorded, in key order
// (terminal, STAN, field 7). Reconciliation tools and the kill campaign
// compare it with what each ATM session paid.
func (s *Server) Debits() ([]Debit, error) {
	var out []Debit
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAuths).ForEach(func(_, v []byte) error {
			var rec authRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			d := Debit{Terminal: rec.Terminal, STAN: rec.STAN, Nonce: rec.Nonce}
			if rec.Debited {
				d.Net = rec.Amount - rec.Credited
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}
