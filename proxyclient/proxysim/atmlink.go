package proxysim

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/internal/connlimit"
)

// ErrRefusedLink is returned (and the connection closed) when an ATM
// connection is not admitted.
var ErrRefusedLink = errors.New("proxysim: ATM connection refused")

type keyGen struct {
	tak, tek       hsm.KeyName
	takKCV, tekKCV string
}

// atmLink is one ATM connection. The read path (ReadMessage) and the write
// path (WriteMessage) each run on one goroutine of the connection; key
// switches happen there, in message order.
type atmLink struct {
	s      *Server
	remote string
	framer wire.Framer
	conn   *connection.Connection

	mu       sync.Mutex
	terminal string
	log      *slog.Logger
	prot     *wire.Protector
	signedOn bool
	// outOfService is the reason the terminal last gave for taking no
	// customers (0800/281), "" when it takes them; route answers 91
	// without forwarding while it is set.
	outOfService string
	// challenge is the field 53 of the last sign-on answer, until the
	// terminal returns it (confirm); "" when none is outstanding.
	challenge string
	received  int
	cur       *keyGen
	prev      *keyGen            // accepted inbound until the ATM uses cur
	staged    *keyGen            // pushed in a 162, not yet acknowledged
	answer    map[string]*keyGen // keys in an 0810 to 001/161, by STAN, switched on write

	frames  *connlimit.Frames // read deadlines of each frame
	release func()            // counts the connection out of the gate
}

func (s *Server) newATMConn(nc net.Conn) (*connection.Connection, error) {
	release, err := s.atmGate.Admit(nc)
	if err != nil {
		s.count(func(st *Stats) { st.Refused++ })
		s.log.Warn("ATM connection refused", "remote", nc.RemoteAddr().String(), "reason", err)
		nc.Close()
		return nil, err
	}
	l := &atmLink{s: s, remote: nc.RemoteAddr().String(), framer: wire.Framer{TPDU: s.cfg.TPDU},
		log: s.log.With("remote", nc.RemoteAddr().String()), answer: map[string]*keyGen{},
		frames: s.atmGate.NewFrames(nc), release: release}
	conn, err := connection.NewFrom(nc, wire.Spec, nil, nil,
		connection.SetMessageReader(l), connection.SetMessageWriter(l),
		connection.InboundMessageHandler(l.inbound),
		connection.SendTimeout(s.cfg.SendTimeout),
		connection.ErrorHandler(func(err error) { l.log.Debug("ATM link", "err", err) }),
		connection.ConnectionClosedHandler(l.closed),
	)
	if err != nil {
		release()
		nc.Close()
		return nil, err
	}
	l.mu.Lock()
	l.conn = conn
	l.mu.Unlock()
	return conn, nil
}

func (l *atmLink) refuse(reason string) error {
	l.s.count(func(st *Stats) { st.Refused++ })
	l.log.Warn("ATM connection refused", "reason", reason)
	return fmt.Errorf("%w: %s", ErrRefusedLink, reason)
}

// ReadMessage implements connection.MessageReader: framing, admission,
// MAC verification and the inbound half of the key exchange.
func (l *atmLink) ReadMessage(r io.Reader) (*iso8583.Message, error) {
	if p, ok := r.(connlimit.Peeker); ok {
		if err := l.frames.Next(p); err != nil {
			return nil, err
		}
	}
	raw, err := l.framer.ReadFrame(r)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			l.log.Warn("frame refused; closing the link", "reason", err)
		}
		return nil, err
	}
	l.mu.Lock()
	l.received++
	n, term, prot := l.received, l.terminal, l.prot
	l.mu.Unlock()
	if f := l.s.getFaults(); f.DropLinkAfter > 0 && n > f.DropLinkAfter {
		l.log.Warn("fault injection: dropping the link", "after", f.DropLinkAfter)
		return nil, errors.New("proxysim: fault injection: link dropped")
	}

	if term == "" {
		// Not admitted yet: the first message must be a sign-on from a
		// configured terminal, MAC'd with that terminal's key. Field 41 of
		// the unverified message only chooses the key; everything else is
		// read from the verified message.
		id, err := wire.PeekTerminal(raw)
		if err != nil {
			return nil, l.refuse("first message does not unpack")
		}
		if _, ok := l.s.cfg.Terminals[id]; !ok { // validate admits only valid IDs
			return nil, l.refuse(fmt.Sprintf("unknown terminal %q", id))
		}
		prot = wire.NewProtector(l.s.hsm, wire.KeySet{NetMgmtMAC: netSlot(id)})
		m, err := prot.Open(raw)
		if err != nil {
			return nil, l.refuse(fmt.Sprintf("terminal %s: sign-on does not verify: %v", id, err))
		}
		mti := wire.MTI(m)
		if code, _ := m.GetString(wire.FieldNetMgmtCode); mti != wire.MTINetMgmtRequest || code != wire.NetSignOn {
			return nil, l.refuse(fmt.Sprintf("first message is %s/%s, not a sign-on", mti, code))
		}
		l.mu.Lock()
		l.terminal, l.prot = id, prot
		l.log = l.log.With("terminal", id)
		l.mu.Unlock()
		return m, nil
	}

	m, err := prot.Open(raw)
	if err != nil {
		l.s.count(func(st *Stats) { st.Rejected++ })
		l.log.Warn("ATM message refused", "reason", err)
		return nil, nil
	}
	if id, _ := m.GetString(wire.FieldTerminalID); id != term { // Open strips field 41's padding
		l.s.count(func(st *Stats) { st.Rejected++ })
		l.log.Warn("ATM message refused", "reason", "field 41 names another terminal", "mti", wire.MTI(m), "stan", wire.STAN(m))
		return nil, nil
	}
	l.afterRead(m)
	return m, nil
}

// afterRead completes key switches on the read goroutine.
func (l *atmLink) afterRead(m *iso8583.Message) {
	mti := wire.MTI(m)
	code, _ := m.GetString(wire.FieldNetMgmtCode)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case mti == wire.MTINetMgmtResponse && code == wire.NetKeyChange && l.staged != nil:
		rc, _ := m.GetString(wire.FieldResponseCode)
		g := l.staged
		l.staged = nil
		if rc != wire.RCApproved {
			// Refused: keep the old keys; forget the staged ones.
			l.prot.DropPrevious()
			l.s.deleteKeys(g)
			return
		}
		// The ATM switched before answering: everything after this 0810
		// is under the new keys.
		l.prot.SetKeys(wire.KeySet{NetMgmtMAC: netSlot(l.terminal), MAC: g.tak, Data: g.tek})
		l.prot.DropPrevious()
		l.s.deleteKeys(l.cur, l.prev)
		l.cur, l.prev = g, nil
	case !strings.HasPrefix(mti, "08") && l.prev != nil && l.cur != nil:
		if kcv, _ := m.GetString(wire.FieldMACKeyKCV); kcv == l.cur.takKCV {
			l.prot.DropPrevious()
			l.s.deleteKeys(l.prev)
			l.prev = nil
		}
	}
}

// WriteMessage implements connection.MessageWriter: a wire.Codec seals,
// frames and writes (a message that cannot be sealed or framed is a
// PackError, as the Codec documents). Once the frame is ready and before
// it is written, the link switches to the keys an 0810 carries, so that
// the ATM's next message (under those keys) always finds them installed.
// The CorruptMAC fault flips the last byte of the frame: the last MAC hex
// digit.
func (l *atmLink) WriteMessage(w io.Writer, m *iso8583.Message) error {
	l.mu.Lock()
	prot := l.prot
	l.mu.Unlock()
	if prot == nil {
		return errors.New("proxysim: write before admission")
	}
	fw := &frameWriter{w: w}
	mti := wire.MTI(m)
	if mti == wire.MTIFinancialRequest && l.s.getFaults().CorruptMAC {
		fw.corrupt = func() { l.log.Warn("fault injection: MAC corrupted", "stan", wire.STAN(m)) }
	}
	if mti == wire.MTINetMgmtResponse {
		fw.before = func() { l.switchOnAnswer(wire.STAN(m)) }
	}
	codec := wire.Codec{Framer: l.framer, Protector: prot}
	return codec.WriteMessage(fw, m)
}

// frameWriter is the writer a wire.Codec writes one frame to, in a single
// Write call: before runs first, then corrupt (if set) has the last byte
// of the frame flipped (one bit of the last MAC hex digit, which stays a
// hex digit).
type frameWriter struct {
	w       io.Writer
	before  func()
	corrupt func()
}

func (f *frameWriter) Write(p []byte) (int, error) {
	if f.before != nil {
		f.before()
	}
	if f.corrupt != nil && len(p) > 0 {
		p = bytes.Clone(p)
		p[len(p)-1] ^= 0x01
		f.corrupt()
	}
	return f.w.Write(p)
}

// switchOnAnswer switches the link to the keys carried in the 0810 with
// this STAN, if any (write goroutine, just before the 0810 is written).
func (l *atmLink) switchOnAnswer(stan string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.answer[stan]
	delete(l.answer, stan)
	if g != nil {
		// The ATM installs these keys when it reads this 0810; every
		// message we write after it uses them. (08xx messages are
		// MAC'd with the TMK variant, so the 0810 itself is sealed.)
		l.prot.SetKeys(wire.KeySet{NetMgmtMAC: netSlot(l.terminal), MAC: g.tak, Data: g.tek})
		if l.cur == nil {
			l.prot.DropPrevious()
		} else {
			l.s.deleteKeys(l.prev)
			l.prev = l.cur
		}
		l.cur = g
	}
}

func (l *atmLink) closed(*connection.Connection) {
	l.release()
	l.mu.Lock()
	id := l.terminal
	gens := []*keyGen{l.cur, l.prev, l.staged}
	l.mu.Unlock()
	l.s.mu.Lock()
	if l.s.links[id] == l {
		delete(l.s.links, id)
	}
	closed := l.s.closed
	l.s.mu.Unlock()
	if !closed {
		l.s.deleteKeys(gens...)
	}
	if id != "" {
		l.log.Info("ATM link closed")
	}
}

func (s *Server) deleteKeys(gs ...*keyGen) {
	for _, g := range gs {
		if g == nil {
			continue
		}
		_ = s.hsm.DeleteKey(g.tak)
		_ = s.hsm.DeleteKey(g.tek)
	}
}

// newKeys generates a working key generation for a terminal and returns
// field 48 carrying it: TR-31 key blocks under the terminal's key block
// protection key, or (KeyFormatLegacy) the keys encrypted under its TMK.
func (l *atmLink) newKeys() (*keyGen, string, error) {
	n := l.s.gen.Add(1)
	g := &keyGen{tak: hsm.KeyName(fmt.Sprintf("tak.%s.%d", l.terminal, n)), tek: hsm.KeyName(fmt.Sprintf("tek.%s.%d", l.terminal, n))}
	if l.s.cfg.KeyFormat == wire.KeyFormatLegacy {
		var kb wire.KeyBlock
		var err error
		if kb.TAK, g.takKCV, err = l.s.hsm.GenerateKey(tmkSlot(l.terminal), g.tak); err != nil {
			return nil, "", err
		}
		if kb.TEK, g.tekKCV, err = l.s.hsm.GenerateKey(tmkSlot(l.terminal), g.tek); err != nil {
			_ = l.s.hsm.DeleteKey(g.tak)
			return nil, "", err
		}
		kb.TAKKCV, kb.TEKKCV = g.takKCV, g.tekKCV
		return g, kb.String(), nil
	}
	var kb wire.TR31Keys
	var err error
	takH, tekH := wire.TAKHeader, wire.TEKHeader
	if l.s.getFaults().SwapKeyUsage {
		takH, tekH = tekH, takH
		l.log.Warn("fault injection: key blocks with the usages swapped")
	}
	if kb.TAK, g.takKCV, err = l.s.hsm.GenerateKeyBlock(kbpkSlot(l.terminal), g.tak, takH); err != nil {
		return nil, "", err
	}
	if kb.TEK, g.tekKCV, err = l.s.hsm.GenerateKeyBlock(kbpkSlot(l.terminal), g.tek, tekH); err != nil {
		_ = l.s.hsm.DeleteKey(g.tak)
		return nil, "", err
	}
	return g, kb.String(), nil
}

func (l *atmLink) inbound(conn *connection.Connection, m *iso8583.Message) {
	mti := wire.MTI(m)
	l.log.Debug("from ATM", "msg", wire.Loggable(m))
	if mti != wire.MTINetMgmtRequest {
		l.log.Warn("unexpected message from ATM ignored", "mti", mti, "stan", wire.STAN(m))
		return
	}
	var req wire.NetMgmt
	if err := wire.Parse(m, &req); err != nil {
		return
	}
	l.mu.Lock()
	signedOn := l.signedOn
	l.mu.Unlock()
	resp := req.Response(wire.RCApproved)
	switch {
	case req.NetMgmtCode == wire.NetSignOn || (req.NetMgmtCode == wire.NetKeyRequest && signedOn):
		g, kb, err := l.newKeys()
		if err != nil {
			l.log.Error("key generation failed", "err", err)
			resp.ResponseCode = wire.RCSystemMalfunction
			break
		}
		resp.AdditionalData = kb
		var ch string
		if req.NetMgmtCode == wire.NetSignOn {
			if ch, err = wire.NewChallenge(); err != nil {
				l.log.Error("sign-on challenge", "err", err)
				l.s.deleteKeys(g)
				resp.ResponseCode, resp.AdditionalData = wire.RCSystemMalfunction, ""
				break
			}
			resp.Challenge = ch
		}
		l.mu.Lock()
		l.answer[req.STAN] = g
		if ch != "" {
			l.challenge = ch
		}
		l.mu.Unlock()
		if ch != "" && !signedOn {
			l.expectConfirmation()
		}
	case req.NetMgmtCode == wire.NetEcho && req.Challenge != "":
		if !l.confirm(req.Challenge) {
			resp.ResponseCode = wire.RCSecurityViolation
			l.log.Warn("sign-on confirmation refused: wrong challenge; closing the link")
			defer conn.Close()
		}
	case !signedOn:
		resp.ResponseCode = wire.RCInvalidTransaction
	case req.NetMgmtCode == wire.NetOutOfService, req.NetMgmtCode == wire.NetInService:
		reason := ""
		if req.NetMgmtCode == wire.NetOutOfService {
			reason = req.AdditionalData
			if reason == "" {
				reason = "unspecified"
			}
		}
		l.mu.Lock()
		l.outOfService = reason
		l.mu.Unlock()
		l.log.Info("terminal service state", "in_service", reason == "", "reason", reason)
	case req.NetMgmtCode == wire.NetStatus:
		alarms, err := wire.ParseAlarms(req.AdditionalData)
		if err != nil {
			resp.ResponseCode = wire.RCInvalidTransaction
			l.log.Warn("terminal status report refused", "err", err)
			break
		}
		l.mu.Lock()
		id := l.terminal
		l.mu.Unlock()
		l.s.setAlarms(id, alarms)
		if len(alarms) > 0 {
			l.log.Warn("terminal alarms", "alarms", req.AdditionalData)
		} else {
			l.log.Info("terminal alarms cleared")
		}
	case req.NetMgmtCode == wire.NetEcho, req.NetMgmtCode == wire.NetSignOff:
	default:
		resp.ResponseCode = wire.RCInvalidTransaction
	}
	// A sign-on is registered only once confirmed (the terminal returned
	// the challenge MAC'd with its key), and before the 0810 to the
	// confirmation is written, so that once the ATM reads it the proxy
	// routes to it. If the answer cannot be written the connection closes
	// and closed() removes the registration.
	if req.NetMgmtCode == wire.NetEcho && req.Challenge != "" && resp.ResponseCode == wire.RCApproved {
		l.mu.Lock()
		l.signedOn = true
		id := l.terminal
		l.mu.Unlock()
		l.s.mu.Lock()
		old := l.s.links[id]
		l.s.links[id] = l
		l.s.stats.SignOns++
		l.s.mu.Unlock()
		if old != nil && old != l {
			old.log.Info("terminal signed on again on a new connection; closing the old one")
			old.conn.Close()
		}
		l.log.Info("terminal signed on (challenge returned)")
	}
	r, err := wire.Build(&resp)
	if err == nil {
		err = conn.Reply(r)
	}
	if err != nil {
		l.log.Warn("0810 not sent", "stan", req.STAN, "err", err)
		if req.NetMgmtCode == wire.NetSignOn || req.Challenge != "" {
			conn.Close() // the terminal never learnt it was signed on
		}
	}
}

// confirm checks a returned sign-on challenge (constant time) and uses it
// up: each challenge confirms one sign-on, once.
func (l *atmLink) confirm(got string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := l.challenge
	l.challenge = ""
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// expectConfirmation closes the link if the terminal has not returned the
// sign-on challenge within SendTimeout: a replayed sign-on, whose sender
// cannot MAC the confirmation, holds nothing for long.
func (l *atmLink) expectConfirmation() {
	time.AfterFunc(l.s.cfg.SendTimeout, func() {
		l.mu.Lock()
		ok, conn := l.signedOn, l.conn
		l.mu.Unlock()
		if !ok && conn != nil {
			l.log.Warn("sign-on not confirmed in time; closing the link", "timeout", l.s.cfg.SendTimeout)
			conn.Close()
		}
	})
}

// PushKeys sends a terminal new working keys (0800, field 70 = 162) and
// waits for its 0810. On 00 both ends use the new keys; on any other code
// the old keys stay in use and the error names the code.
func (s *Server) PushKeys(terminalID string) error {
	l := s.link(terminalID)
	if l == nil {
		return ErrNoATM
	}
	l.mu.Lock()
	if l.staged != nil {
		l.mu.Unlock()
		return errors.New("proxysim: a key change is already in progress")
	}
	g, kb, err := l.newKeys()
	if err != nil {
		l.mu.Unlock()
		return fmt.Errorf("proxysim: generate keys: %w", err)
	}
	// Accept the new keys inbound (the ATM switches before it answers)
	// while still sending under the old ones: cur=old, previous=new.
	l.prot.AcceptAlso(wire.KeySet{NetMgmtMAC: netSlot(terminalID), MAC: g.tak, Data: g.tek})
	s.deleteKeys(l.prev)
	l.prev, l.staged = nil, g
	l.mu.Unlock()
	if s.getFaults().BadKCV {
		kb = corruptTAK(kb)
		l.log.Warn("fault injection: a TAK the ATM cannot verify in the key change (wrong KCV, or a changed TR-31 block)")
	}
	err = s.pushBlock(l, kb)
	if err != nil {
		l.mu.Lock()
		if l.staged == g { // no answer was read: forget the staged keys
			l.staged = nil
			l.prot.DropPrevious()
			s.deleteKeys(g)
		}
		l.mu.Unlock()
	}
	return err
}

// corruptTAK makes the TAK of field 48 unverifiable: the legacy KCV is
// changed, or one hex digit of the TR-31 block's MAC.
func corruptTAK(field48 string) string {
	if kb, err := wire.ParseKeyBlock(field48); err == nil {
		kb.TAKKCV = flipHex(kb.TAKKCV)
		return kb.String()
	}
	if kb, err := wire.ParseTR31Keys(field48); err == nil {
		n := len(kb.TAK) - 1
		kb.TAK = kb.TAK[:n] + flipHex(kb.TAK[n:])
		return kb.String()
	}
	return field48
}

// flipHex changes the first hex digit of s to another hex digit.
func flipHex(s string) string {
	if s == "" {
		return s
	}
	c := byte('0')
	if s[0] == '0' {
		c = '1'
	}
	return string(c) + s[1:]
}

func (s *Server) pushBlock(l *atmLink, block string) error {
	req, err := wire.Build(&wire.NetMgmt{MTI: wire.MTINetMgmtRequest, TransmissionDateTime: wire.FormatTransmissionDT(s.now()),
		STAN: s.nextSTAN(), TerminalID: l.terminal, NetMgmtCode: wire.NetKeyChange, AdditionalData: block})
	if err != nil {
		return err
	}
	resp, err := l.conn.Send(req)
	if err != nil {
		return fmt.Errorf("proxysim: key change: %w", err)
	}
	rc, _ := resp.GetString(wire.FieldResponseCode)
	if rc != wire.RCApproved {
		return fmt.Errorf("%w: response code %s", ErrKeyChangeRefused, rc)
	}
	return nil
}
