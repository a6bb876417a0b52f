package proxysim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"github.com/moov-io/iso8583-connection/server"

	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/internal/connlimit"
)

// Phone channel key slots in the simulator's HSM.
const (
	PhoneMAC  hsm.KeyName = "phone.mac"
	PhoneData hsm.KeyName = "phone.data"
)

// ErrNoATM: the terminal is not connected and signed on.
var ErrNoATM = errors.New("proxysim: terminal not connected")

// ErrKeyChangeRefused: the ATM answered a key change (PushKeys) with a
// code other than 00 and kept its old keys.
var ErrKeyChangeRefused = errors.New("proxysim: key change refused by the ATM")

// Stats counts what the server did, for tests and monitoring.
type Stats struct {
	SignOns  int // ATM sign-ons accepted
	Refused  int // connections refused: ATM (unknown terminal, bad MAC, not a sign-on) and, on either port, over a connection cap
	Rejected int // messages dropped on an admitted link (bad MAC, malformed, wrong terminal)
	Routed   int // phone requests forwarded to an ATM
	// DuplicatesRefused counts DuplicateCommand faults the ATM answered 94.
	DuplicatesRefused int
}

// Server is the proxy simulator: one listener for ATMs, one for phones.
type Server struct {
	cfg  Config
	log  *slog.Logger
	hsm  *hsm.Soft
	stan atomic.Uint32
	gen  atomic.Uint64

	atm, phone *server.Server
	// atmGate and phoneGate bound each listener (Config.ATMLimits,
	// Config.PhoneLimits).
	atmGate, phoneGate *connlimit.Gate
	phoneSeen          phoneSeen      // replay window of phone requests
	refusals           refusalLimiter // refused phone requests by source address

	mu     sync.Mutex
	faults Faults
	links  map[string]*atmLink // signed-on link per terminal
	stats  Stats
	// statuses holds each terminal's latest alarm report (status.go).
	statuses map[string]termStatus
	closed   bool
}

// NewServer starts a server listening on 127.0.0.1:0 for ATMs and phones.
func NewServer(cfg Config) (*Server, error) {
	return Start(cfg, "127.0.0.1:0", "127.0.0.1:0")
}

// Start starts a server listening on atmAddr and phoneAddr.
func Start(cfg Config, atmAddr, phoneAddr string) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "proxysim"),
		hsm:    hsm.NewSoft(),
		faults: cfg.Faults,
		links:  map[string]*atmLink{},
	}
	s.atmGate, s.phoneGate = connlimit.NewGate(cfg.ATMLimits), connlimit.NewGate(cfg.PhoneLimits)
	if err := s.loadKeys(); err != nil {
		s.hsm.Close()
		return nil, err
	}
	s.atm = server.New(wire.Spec, nil, nil)
	_ = s.atm.SetOptions(server.WithConnectionFactory(s.newATMConn),
		server.WithErrorHandler(func(err error) { s.log.Debug("atm listener", "err", err) }))
	if err := s.atm.Start(atmAddr); err != nil {
		s.hsm.Close()
		return nil, fmt.Errorf("proxysim: ATM listener: %w", err)
	}
	s.phone = server.New(wire.Spec, nil, nil)
	_ = s.phone.SetOptions(server.WithConnectionFactory(s.newPhoneConn),
		server.WithErrorHandler(func(err error) { s.log.Debug("phone listener", "err", err) }))
	if err := s.phone.Start(phoneAddr); err != nil {
		s.atm.Close()
		s.hsm.Close()
		return nil, fmt.Errorf("proxysim: phone listener: %w", err)
	}
	s.log.Info("proxy simulator listening", "atm", s.ATMAddr(), "phone", s.PhoneAddr())
	return s, nil
}

func (s *Server) loadKeys() error {
	imp := func(name hsm.KeyName, hexKey, what string) error {
		k, err := hex.DecodeString(hexKey)
		if err != nil {
			return fmt.Errorf("proxysim: %s is not valid hex", what)
		}
		defer clear(k)
		if _, err := s.hsm.ImportClearKey(name, k); err != nil {
			return fmt.Errorf("proxysim: %s: %w", what, err)
		}
		return nil
	}
	for id, t := range s.cfg.Terminals {
		if err := imp(tmkSlot(id), t.TMK, "terminal "+id+" tmk"); err != nil {
			return err
		}
		if err := s.hsm.DeriveVariant(tmkSlot(id), netSlot(id), wire.NetMgmtVariant); err != nil {
			return fmt.Errorf("proxysim: terminal %s: %w", id, err)
		}
		if err := s.hsm.DeriveVariant(tmkSlot(id), kbpkSlot(id), wire.KBPKVariant); err != nil {
			return fmt.Errorf("proxysim: terminal %s: %w", id, err)
		}
	}
	if err := imp(PhoneMAC, s.cfg.PhoneMACKey, "phone MAC key"); err != nil {
		return err
	}
	return imp(PhoneData, s.cfg.PhoneDataKey, "phone data key")
}

func tmkSlot(id string) hsm.KeyName { return hsm.KeyName("tmk." + id) }
func netSlot(id string) hsm.KeyName { return hsm.KeyName("tmk.mac." + id) }

func kbpkSlot(id string) hsm.KeyName { return hsm.KeyName("tmk.kbpk." + id) }

// ATMAddr is the address ATMs connect to.
func (s *Server) ATMAddr() string { return s.atm.Addr }

// PhoneAddr is the address phones connect to.
func (s *Server) PhoneAddr() string { return s.phone.Addr }

// Close stops both listeners, closes every connection and wipes the keys.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.phone.Close()
	s.atm.Close()
	s.hsm.Close()
}

// SetFaults replaces the injected faults at run time.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

func (s *Server) getFaults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Connected reports whether the terminal is connected and signed on.
func (s *Server) Connected(terminalID string) bool {
	return s.link(terminalID) != nil
}

// KeyKCVs returns the KCVs of the working keys the proxy uses with a
// terminal (never the keys).
func (s *Server) KeyKCVs(terminalID string) (tak, tek string, ok bool) {
	l := s.link(terminalID)
	if l == nil {
		return "", "", false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil {
		return "", "", false
	}
	return l.cur.takKCV, l.cur.tekKCV, true
}

func (s *Server) link(id string) *atmLink {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.links[id]
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func (s *Server) now() time.Time { return s.cfg.Now() }

func (s *Server) nextSTAN() string { return wire.NextSTAN(&s.stan) }

// phone side

func (s *Server) newPhoneConn(nc net.Conn) (*connection.Connection, error) {
	release, err := s.phoneGate.Admit(nc)
	if err != nil {
		s.count(func(st *Stats) { st.Refused++ })
		s.log.Warn("phone connection refused", "remote", nc.RemoteAddr().String(), "reason", err)
		nc.Close()
		return nil, err
	}
	frames := s.phoneGate.NewFrames(nc)
	src := nc.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(src); err == nil {
		src = h
	}
	prot := wire.NewProtector(s.hsm, wire.KeySet{NetMgmtMAC: PhoneMAC, MAC: PhoneMAC, Data: PhoneData})
	codec := &wire.Codec{Framer: wire.Framer{TPDU: s.cfg.TPDU}, Protector: prot,
		OnReject: func(mti, stan string, err error) {
			s.count(func(st *Stats) { st.Rejected++ })
			s.log.Warn("phone message refused", "remote", nc.RemoteAddr().String(), "mti", mti, "stan", stan, "reason", err)
		}}
	conn, err := connection.NewFrom(nc, wire.Spec, nil, nil,
		connection.SetMessageReader(limitedReader{codec, frames}), connection.SetMessageWriter(codec),
		connection.InboundMessageHandler(func(c *connection.Connection, m *iso8583.Message) { s.phoneInbound(src, c, m) }),
		connection.SendTimeout(s.cfg.SendTimeout),
		connection.ErrorHandler(func(err error) { s.log.Debug("phone link", "err", err) }),
		connection.ConnectionClosedHandler(func(*connection.Connection) { release() }),
	)
	if err != nil {
		release()
		nc.Close()
	}
	return conn, err
}

// limitedReader reads each frame under the connection's deadlines
// (connlimit.Frames): a silent or slow peer is closed.
type limitedReader struct {
	r      connection.MessageReader
	frames *connlimit.Frames
}

func (l limitedReader) ReadMessage(r io.Reader) (*iso8583.Message, error) {
	if p, ok := r.(connlimit.Peeker); ok {
		if err := l.frames.Next(p); err != nil {
			return nil, err
		}
	}
	return l.r.ReadMessage(r)
}

func (s *Server) phoneInbound(src string, conn *connection.Connection, m *iso8583.Message) {
	mti := wire.MTI(m)
	s.log.Debug("from phone", "msg", wire.Loggable(m))
	switch mti {
	case wire.MTIFinancialRequest:
	case wire.MTINetMgmtRequest:
		var nm wire.NetMgmt
		if wire.Parse(m, &nm) == nil {
			resp := nm.Response(wire.RCApproved)
			resp.AdditionalData = nm.AdditionalData // the phone channel echoes field 48 too
			if r, err := wire.Build(&resp); err == nil {
				_ = conn.Reply(r)
			}
		}
		return
	default:
		s.log.Warn("unexpected message from phone", "mti", mti)
		return
	}
	var req wire.Withdrawal
	if err := wire.Parse(m, &req); err != nil {
		s.log.Warn("phone 0200 refused", "reason", err)
		return
	}
	var res wire.Withdrawal
	now := s.now()
	if s.refusals.limited(src, now, s.cfg.PhoneRefusalLimit) {
		// A source that keeps sending refused requests (forged or replayed
		// QRs, guessed sessions) is not forwarded any more for a while: the
		// ATM's journal and the link are spared.
		s.count(func(st *Stats) { st.Rejected++ })
		s.log.Warn("phone request refused: too many refusals from this source", "source", src, "stan", req.STAN)
		res.ResponseCode = RCRateLimited
	} else if rc, why := s.phoneSeen.check(req, now); rc != "" {
		s.count(func(st *Stats) { st.Rejected++ })
		s.log.Warn("phone request refused", "stan", req.STAN, "rc", rc, "reason", why)
		res.ResponseCode = rc
	} else {
		res = s.route(req)
	}
	switch res.ResponseCode {
	case wire.RCInvalidTransaction, wire.RCInvalidAmount, wire.RCExpired, wire.RCDuplicate, RCFormatError:
		// Refusals of the request itself (a forged, used, expired or
		// replayed QR, a malformed request); a bank's decline and an
		// unreachable ATM are not counted, so customers behind one
		// carrier address are not locked out by each other's PINs.
		s.refusals.refused(src, now)
	}
	ans := req.Response()
	ans.ResponseCode, ans.AuthCode, ans.RRN, ans.ReplacementAmounts = res.ResponseCode, res.AuthCode, res.RRN, res.ReplacementAmounts
	if res.ResponseCode == wire.RCApproved {
		ans.Receipt = res.Receipt // the ATM's receipt for the phone (docs/phone.md)
	}
	r, err := wire.Build(&ans)
	if err == nil {
		err = conn.Reply(r)
	}
	if err != nil {
		s.log.Warn("answer to phone not sent", "stan", req.STAN, "err", err)
	}
}

// route forwards a phone request to its ATM and returns the result fields
// of the ATM's 0210 (or 91 when the ATM is not connected or does not
// answer within ATMTimeout).
func (s *Server) route(req wire.Withdrawal) wire.Withdrawal {
	fail := wire.Withdrawal{ResponseCode: wire.RCIssuerInoperative}
	l := s.link(req.TerminalID)
	if l == nil {
		s.log.Warn("phone request for a terminal not connected; answering 91", "terminal", req.TerminalID, "stan", req.STAN)
		return fail
	}
	l.mu.Lock()
	oos := l.outOfService
	l.mu.Unlock()
	if oos != "" {
		s.log.Warn("phone request for a terminal out of service; answering 91", "terminal", req.TerminalID, "reason", oos, "stan", req.STAN)
		return fail
	}
	now := s.now()
	fwd := wire.Withdrawal{
		MTI:                  wire.MTIFinancialRequest,
		ProcessingCode:       req.ProcessingCode,
		Amount:               req.Amount,
		TransmissionDateTime: wire.FormatTransmissionDT(now),
		STAN:                 s.nextSTAN(),
		LocalTime:            wire.FormatLocalTime(now),
		LocalDate:            wire.FormatLocalDate(now),
		TerminalID:           req.TerminalID,
		TerminalLocation:     s.cfg.Terminals[req.TerminalID].Location,
		Currency:             req.Currency,
		PINBlock:             req.PINBlock,
		QRPayload:            req.QRPayload,
		CustomerID:           req.CustomerID,
		DeviceID:             req.DeviceID, // the phone's, for the host's binding check
	}
	if fwd.ProcessingCode == "" {
		fwd.ProcessingCode = wire.ProcCashWithdrawal
	}
	msg, err := wire.Build(&fwd)
	if err != nil {
		s.log.Warn("phone request cannot be forwarded", "stan", req.STAN, "err", err)
		return wire.Withdrawal{ResponseCode: wire.RCInvalidTransaction}
	}
	f := s.getFaults()
	if f.Delay > 0 {
		time.Sleep(f.Delay)
	}
	s.count(func(st *Stats) { st.Routed++ })
	s.log.Info("dispense command to ATM", "terminal", req.TerminalID, "phone_stan", req.STAN, "atm_stan", fwd.STAN)
	resp, err := l.conn.Send(msg, connection.SendTimeout(s.cfg.ATMTimeout))
	if err != nil {
		s.log.Warn("no answer from the ATM; answering 91", "terminal", req.TerminalID, "atm_stan", fwd.STAN, "err", err)
		return fail
	}
	if f.DuplicateCommand {
		dup, derr := l.conn.Send(msg, connection.SendTimeout(s.cfg.ATMTimeout))
		rc := ""
		if derr == nil {
			rc, _ = dup.GetString(wire.FieldResponseCode)
		}
		s.log.Info("duplicate command fault: second answer", "atm_stan", fwd.STAN, "rc", rc, "err", derr)
		if rc == wire.RCDuplicate {
			s.count(func(st *Stats) { st.DuplicatesRefused++ })
		}
	}
	var out wire.Withdrawal
	if err := wire.Parse(resp, &out); err != nil {
		return fail
	}
	return wire.Withdrawal{ResponseCode: out.ResponseCode, AuthCode: out.AuthCode, RRN: out.RRN,
		ReplacementAmounts: out.ReplacementAmounts, Receipt: out.Receipt}
}

// Command sends w (an 0200, sent as given, STAN included) to a terminal
// and returns its 0210: a test hook for replays and duplicates.
func (s *Server) Command(terminalID string, w wire.Withdrawal) (wire.Withdrawal, error) {
	l := s.link(terminalID)
	if l == nil {
		return wire.Withdrawal{}, ErrNoATM
	}
	msg, err := wire.Build(&w)
	if err != nil {
		return wire.Withdrawal{}, err
	}
	resp, err := l.conn.Send(msg, connection.SendTimeout(s.cfg.ATMTimeout))
	if err != nil {
		return wire.Withdrawal{}, fmt.Errorf("proxysim: command: %w", err)
	}
	var out wire.Withdrawal
	err = wire.Parse(resp, &out)
	return out, err
}
