//go:build unix

package lcdmsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm"
)

// Faults are the injected device faults. They stay in force until the
// next SetFaults, except BadBCC, NakFrames and NakDispense, which count
// down, and Noise, which acts once. The
// "after" counts are notes that passed the exit sensor within one dispense
// command (upper cassette first).
type Faults struct {
	// Offline: the device reads frames and answers nothing, not even ACK
	// or NAK.
	Offline bool
	// NoAnswer: the device ACKs a dispense command and carries it out
	// (every note is delivered) but its answer never arrives: the link is
	// lost mid-dispense. Other commands are answered.
	NoAnswer bool
	// PickupError: after PickupAfter notes the device cannot pick the
	// next one (0x32). Exact counts; the device needs a purge.
	PickupError bool
	PickupAfter int
	// Jam: after JamAfter notes passed the exit, the next note is picked
	// and sticks in the transport (0x33); it left the cassette. JamAfter
	// is at most the request minus one.
	Jam      bool
	JamAfter int
	// JamAtExit: after JamAtExitAfter notes the next note sticks half
	// out of the exit (0x35): the counts cannot be trusted.
	JamAtExit      bool
	JamAtExitAfter int
	// ShortDispense > 0: the cassette runs out (bill end, 0x38 upper or
	// 0x40 lower) that many notes before the request is complete; the
	// exit count is exact and the notes not dispensed stay in the
	// cassette (its empty sensor misfires).
	ShortDispense int
	// Rejects: in each dispense command, the first Rejects notes picked
	// are doubles diverted to the reject tray; the device picks others in
	// their place.
	Rejects int
	// BadBCC: the next BadBCC answers go out with a corrupted BCC (the
	// host NAKs them and the device sends them again).
	BadBCC int
	// NakFrames: the next NakFrames host frames are NAKed as if damaged.
	NakFrames int
	// Error, when not 0: after ErrorAfter notes the dispense stops with
	// this error code (no note stuck), for any code of the table.
	Error      byte
	ErrorAfter int
	// ErrorOnly: a dispense command that stops with an error code other
	// than 0x30 (any fault above, or a latched error) is answered with the
	// 7-byte error-only frame (SOH ID STX CMD ERROR ETX BCC): the notes
	// moved as they did, but the answer carries no counts.
	ErrorOnly bool
	// NakDispense: the next NakDispense dispense frames are NAKed as if
	// damaged (they do not run); other frames are answered. After such a
	// NAK the device stays silent (OnSilent is called after the NAK went
	// out), as it waits for a resend.
	NakDispense int
	// Noise: bytes the device sends before its ACK or NAK to the next
	// dispense frame (once, then cleared), e.g. a stray 0x15 (the tail
	// of a stale answer, line noise). The frame is then handled as usual.
	Noise []byte
	// AfterCommands > 0 holds back the faults above except Offline and
	// BadBCC until that many dispense commands were carried out normally
	// (to fail the second command of a split dispense); NakFrames then
	// acts on dispense commands only.
	AfterCommands int
}

// Config configures a simulated LCDM-2000.
type Config struct {
	// Units are the cassettes at first start: Units[0] upper, Units[1]
	// lower (optional). Only ID and Count matter to the device. When
	// StateFile exists, its cassettes are used instead.
	Units []dispenser.CashUnit
	// StateFile is the device's memory (JSON): cassette counts, notes in
	// the transport, the reject and exit trays, the latched error. Empty:
	// memory only.
	StateFile string
	// NearEnd: a cassette with at most this many notes reports near end
	// (0: never).
	NearEnd int
	// OnSilent, when set, is called each time the device receives a frame
	// and deliberately answers nothing (Offline, NoAnswer, a frame for
	// another ID), and after it NAKed a dispense frame (the driver waits
	// out a quiet period before it takes the NAK as a refusal). A test
	// with a fake clock advances it there, so the driver's timeout fires
	// without anyone sleeping.
	OnSilent func()
	Logger   *slog.Logger
	Faults   Faults
}

type cassette struct {
	ID      string `json:"id"`
	Count   int    `json:"count"`
	Missing bool   `json:"missing,omitempty"`
}

type state struct {
	Version   int            `json:"version"`
	Cassettes []cassette     `json:"cassettes"`
	Transport map[string]int `json:"transport,omitempty"` // notes stuck inside, by cassette
	HalfOut   bool           `json:"halfOut,omitempty"`   // a stuck note is at the exit
	Tray      map[string]int `json:"tray,omitempty"`      // delivered to the exit tray, in total
	Reject    map[string]int `json:"reject,omitempty"`    // in the reject tray, in total
	Error     byte           `json:"error"`               // latched error code, 0x30 none
}

// Sim is a simulated LCDM-2000 on a pseudo-terminal.
type Sim struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	st       *state
	faults   Faults
	gated    bool // faults were set with AfterCommands > 0
	received [][]byte
	changed  chan struct{} // closed and replaced when something is received

	// Under runMu: the running pty.
	runMu  sync.Mutex
	master *os.File
	slave  *os.File
	path   string
	done   chan struct{}
}

// Start creates the device, loading its memory from cfg.StateFile when it
// exists, and opens its pseudo-terminal: the driver opens Path.
func Start(cfg Config) (*Sim, error) {
	s := &Sim{cfg: cfg, log: cfg.Logger, faults: cfg.Faults, gated: cfg.Faults.AfterCommands > 0, changed: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	if st == nil {
		if len(cfg.Units) == 0 || len(cfg.Units) > 2 {
			return nil, fmt.Errorf("lcdmsim: %d units: want 1 or 2", len(cfg.Units))
		}
		st = &state{Version: 1, Error: byte(lcdm.Good)}
		for _, u := range cfg.Units {
			if u.ID == "" || u.Count < 0 || u.Count > 9999 {
				return nil, fmt.Errorf("lcdmsim: bad unit %q", u.ID)
			}
			st.Cassettes = append(st.Cassettes, cassette{ID: u.ID, Count: u.Count, Missing: u.Status == dispenser.UnitInoperative})
		}
		if err := s.save(st); err != nil {
			return nil, err
		}
	}
	s.st = st
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Sim) load() (*state, error) {
	if s.cfg.StateFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(s.cfg.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lcdmsim: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("lcdmsim: state file %s: %w", s.cfg.StateFile, err)
	}
	return &st, nil
}

func (s *Sim) save(st *state) error {
	if s.cfg.StateFile == "" {
		return nil
	}
	return lcdm.SaveFile(s.cfg.StateFile, st)
}

// open creates the pseudo-terminal and starts serving it.
func (s *Sim) open() error {
	m, t, err := pty.Open()
	if err != nil {
		return fmt.Errorf("lcdmsim: open pty: %w", err)
	}
	if _, err := term.MakeRaw(int(t.Fd())); err != nil {
		m.Close()
		t.Close()
		return fmt.Errorf("lcdmsim: raw mode: %w", err)
	}
	// pty.Open leaves the master in blocking mode (it took its Fd): make
	// a non-blocking copy so Close interrupts a pending Read.
	fd, err := unix.Dup(int(m.Fd()))
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		m.Close()
		t.Close()
		return fmt.Errorf("lcdmsim: pty master: %w", err)
	}
	m.Close()
	master := os.NewFile(uintptr(fd), "ptmx")
	s.runMu.Lock()
	s.master, s.slave, s.path = master, t, t.Name()
	s.done = make(chan struct{})
	done := s.done
	s.runMu.Unlock()
	go s.serve(master, done)
	s.log.Info("lcdmsim listening", "tty", t.Name())
	return nil
}

// Path is the tty the driver opens (it changes on Restart).
func (s *Sim) Path() string {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	return s.path
}

func (s *Sim) stop() {
	s.runMu.Lock()
	m, t, done := s.master, s.slave, s.done
	s.master, s.slave = nil, nil
	s.runMu.Unlock()
	if m == nil {
		return
	}
	m.Close()
	<-done
	t.Close()
}

// Close stops the device.
func (s *Sim) Close() error {
	s.stop()
	return nil
}

// Restart power-cycles the device: it closes the pseudo-terminal (the
// driver's link drops), reloads its memory from the state file and opens a
// new pseudo-terminal (a new Path). Faults stay as set.
func (s *Sim) Restart() error {
	s.stop()
	if s.cfg.StateFile != "" {
		st, err := s.load()
		if err != nil {
			return err
		}
		if st != nil {
			s.mu.Lock()
			s.st = st
			s.mu.Unlock()
		}
	}
	return s.open()
}

// SetFaults replaces the injected faults.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults, s.gated = f, f.AfterCommands > 0
	s.log.Info("lcdmsim faults set", "faults", fmt.Sprintf("%+v", f))
}

// Faults returns the faults in force.
func (s *Sim) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Remaining is the ground truth: notes in each cassette, by unit ID.
func (s *Sim) Remaining() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, c := range s.st.Cassettes {
		out[c.ID] = c.Count
	}
	return out
}

// Tray returns the notes delivered to the exit tray, Transport those stuck
// inside, Reject those in the reject tray (totals, by cassette).
func (s *Sim) Tray() map[string]int {
	return s.copyMap(func(st *state) map[string]int { return st.Tray })
}
func (s *Sim) Transport() map[string]int {
	return s.copyMap(func(st *state) map[string]int { return st.Transport })
}
func (s *Sim) Reject() map[string]int {
	return s.copyMap(func(st *state) map[string]int { return st.Reject })
}

func (s *Sim) copyMap(f func(*state) map[string]int) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := maps.Clone(f(s.st))
	if out == nil {
		out = map[string]int{}
	}
	return out
}

// SetMissing marks a cassette as removed (or back in place).
func (s *Sim) SetMissing(id string, missing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.st.Cassettes {
		if s.st.Cassettes[i].ID == id {
			s.st.Cassettes[i].Missing = missing
		}
	}
}

// Received returns what the device received from the host since the
// start or the last ClearReceived: each complete frame as received (bad
// BCC included) and each lone control byte (ACK, NAK) as a one-byte entry.
func (s *Sim) Received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.received))
	for i, b := range s.received {
		out[i] = append([]byte(nil), b...)
	}
	return out
}

// ClearReceived forgets what was received.
func (s *Sim) ClearReceived() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = nil
}

func (s *Sim) record(b []byte) {
	s.mu.Lock()
	s.received = append(s.received, append([]byte(nil), b...))
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Changed returns a channel closed the next time the device receives a
// frame or a control byte: a test waits on it instead of sleeping.
func (s *Sim) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Sim) silent() {
	if s.cfg.OnSilent != nil {
		s.cfg.OnSilent()
	}
}

// serve runs the device side of the protocol until the master closes.
func (s *Sim) serve(m *os.File, done chan struct{}) {
	defer close(done)
	var (
		frame   []byte // a host frame being received
		pending []byte // the last answer, until the host ACKs it
		resends int
		buf     [256]byte
	)
	write := func(b []byte) {
		if _, err := m.Write(b); err != nil {
			s.log.Debug("lcdmsim write", "err", err)
		}
	}
	for {
		n, err := m.Read(buf[:])
		if err != nil {
			return
		}
		for _, b := range buf[:n] {
			if frame == nil {
				switch b {
				case lcdm.EOT:
					frame = []byte{b}
					pending = nil
				case lcdm.ACK:
					s.record([]byte{b})
					pending = nil
				case lcdm.NAK:
					s.record([]byte{b})
					if pending != nil && resends < lcdm.Tries {
						resends++
						write(s.maybeCorrupt(pending))
					}
				}
				continue
			}
			frame = append(frame, b)
			if len(frame) > 64 {
				frame = nil // garbage
				continue
			}
			if len(frame) < 6 || frame[len(frame)-2] != lcdm.ETX {
				continue
			}
			raw := frame
			frame = nil
			s.record(raw)
			rep := s.handle(raw)
			if len(rep.noise) > 0 {
				write(rep.noise)
			}
			if rep.ack != 0 {
				write([]byte{rep.ack})
			}
			if rep.answer != nil {
				pending, resends = rep.answer, 0
				write(s.maybeCorrupt(rep.answer))
			}
			if rep.quiet {
				s.silent()
			}
		}
	}
}

// maybeCorrupt returns b, with a wrong BCC while the BadBCC fault lasts.
func (s *Sim) maybeCorrupt(b []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.BadBCC <= 0 {
		return b
	}
	s.faults.BadBCC--
	c := append([]byte(nil), b...)
	c[len(c)-1] ^= 0xFF
	return c
}

// reply is what the device sends for one host frame, in order: noise,
// the control byte (0: none), the answer frame (nil: none); quiet: call
// OnSilent once it went out.
type reply struct {
	noise  []byte
	ack    byte
	answer []byte
	quiet  bool
}

// handle processes one complete host frame and returns the reply.
func (s *Sim) handle(raw []byte) reply {
	f, err := lcdm.ParseFrame(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.Offline {
		defer s.silentUnlocked()
		return reply{}
	}
	if err != nil || f.Start != lcdm.EOT {
		return reply{ack: lcdm.NAK} // strict: a damaged frame is NAKed
	}
	if f.ID != lcdm.ID {
		defer s.silentUnlocked()
		return reply{}
	}
	isDispense := f.Cmd == lcdm.CmdUpperDispense || f.Cmd == lcdm.CmdLowerDispense || f.Cmd == lcdm.CmdDispenseBoth
	active := s.faults // the faults that act on this frame
	switch {
	case s.faults.AfterCommands > 0:
		active = Faults{Offline: s.faults.Offline, BadBCC: s.faults.BadBCC}
		if isDispense {
			s.faults.AfterCommands--
		}
	case s.gated && !isDispense:
		active.NakFrames = 0
	}
	if !isDispense {
		active.NoAnswer, active.NakDispense, active.Noise = false, 0, nil
	}
	var rep reply
	if len(active.Noise) > 0 {
		rep.noise = append([]byte(nil), active.Noise...)
		s.faults.Noise = nil
	}
	if active.NakFrames > 0 || active.NakDispense > 0 {
		if active.NakFrames > 0 {
			s.faults.NakFrames--
		} else {
			s.faults.NakDispense--
		}
		rep.ack, rep.quiet = lcdm.NAK, isDispense
		return rep
	}
	st := s.clone()
	var a lcdm.Frame
	switch f.Cmd {
	case lcdm.CmdPurge:
		for id, n := range st.Transport {
			st.Reject = inc(st.Reject, id, n)
		}
		st.Transport, st.HalfOut, st.Error = nil, false, byte(lcdm.Good)
		a = lcdm.Answer(lcdm.CmdPurge, byte(lcdm.Good))
	case lcdm.CmdStatus:
		a = s.status(st).Frame()
	case lcdm.CmdROMVersion:
		a = lcdm.ROMAnswer(20, 0x2000)
	case lcdm.CmdUpperDispense, lcdm.CmdLowerDispense, lcdm.CmdDispenseBoth:
		up, lo, perr := lcdm.ParseDispenseCommand(f)
		if perr != nil {
			a = lcdm.DispenseAnswer{Cmd: f.Cmd, Error: byte(lcdm.NoteRequestError)}.Frame()
			break
		}
		da := s.dispense(st, active, f.Cmd, up, lo)
		da.ErrorOnly = active.ErrorOnly && da.Error != byte(lcdm.Good)
		a = da.Frame()
	default:
		a = lcdm.Answer(f.Cmd, byte(lcdm.UndefinedCommand))
	}
	if err := s.save(st); err != nil {
		s.log.Error("lcdmsim: state not saved", "err", err)
		rep.ack = lcdm.NAK
		return rep
	}
	s.st = st
	rep.ack = lcdm.ACK
	if active.NoAnswer {
		defer s.silentUnlocked()
		return rep
	}
	rep.answer = a.Encode()
	return rep
}

// silentUnlocked calls OnSilent; deferred so it runs after s.mu is
// released (the callback may advance a clock that wakes other code).
func (s *Sim) silentUnlocked() {
	s.mu.Unlock()
	s.silent()
	s.mu.Lock()
}

func (s *Sim) clone() *state {
	c := *s.st
	c.Cassettes = append([]cassette(nil), s.st.Cassettes...)
	c.Transport, c.Tray, c.Reject = maps.Clone(s.st.Transport), maps.Clone(s.st.Tray), maps.Clone(s.st.Reject)
	return &c
}

func inc(m map[string]int, id string, n int) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	m[id] += n
	return m
}

func (s *Sim) status(st *state) lcdm.StatusAnswer {
	a := lcdm.StatusAnswer{Error: st.Error}
	stuck := 0
	for _, n := range st.Transport {
		stuck += n
	}
	if stuck > 0 {
		if st.HalfOut {
			a.Sensor0 |= lcdm.S0Exit
		} else {
			a.Sensor0 |= lcdm.S0Check1
		}
	}
	for i, c := range st.Cassettes {
		near := s.cfg.NearEnd > 0 && c.Count <= s.cfg.NearEnd
		switch i {
		case 0:
			if near {
				a.Sensor0 |= lcdm.S0UpperNearEnd
			}
			if c.Missing {
				a.Sensor1 |= lcdm.S1UpperMissing
			}
		case 1:
			if near {
				a.Sensor1 |= lcdm.S1LowerNearEnd
			}
			if c.Missing {
				a.Sensor1 |= lcdm.S1LowerMissing
			}
		}
	}
	return a
}

type stopKind int

const (
	stopNone stopKind = iota
	stopJam
	stopExitJam
	stopCode
	stopBillEnd
)

// dispense carries out a dispense command on st. Callers hold s.mu.
func (s *Sim) dispense(st *state, f Faults, cmd byte, up, lo int) lcdm.DispenseAnswer {
	a := lcdm.DispenseAnswer{Cmd: cmd, Error: byte(lcdm.Good), Upper: lcdm.CassetteCount{Status: lcdm.CassetteNormal},
		Lower: lcdm.CassetteCount{Status: lcdm.CassetteNormal}}
	if st.Error != byte(lcdm.Good) {
		a.Error = st.Error // latched until a purge: nothing moves
		return a
	}
	total := up + lo
	stopAt, kind, code := -1, stopNone, lcdm.Good
	switch {
	case f.Jam:
		stopAt, kind, code = min(max(f.JamAfter, 0), total-1), stopJam, lcdm.JamCHK12
	case f.JamAtExit:
		stopAt, kind, code = min(max(f.JamAtExitAfter, 0), total-1), stopExitJam, lcdm.JamExitEJT
	case f.PickupError:
		stopAt, kind, code = max(f.PickupAfter, 0), stopCode, lcdm.PickupError
	case f.Error != 0:
		stopAt, kind, code = max(f.ErrorAfter, 0), stopCode, lcdm.ErrorCode(f.Error)
	case f.ShortDispense > 0:
		stopAt, kind = max(total-f.ShortDispense, 0), stopBillEnd
	}
	rejects := max(f.Rejects, 0)
	passed := 0
	counts := [2]*lcdm.CassetteCount{&a.Upper, &a.Lower}
	req := [2]int{up, lo}
	stopped := false
	for i := 0; i < 2 && !stopped; i++ {
		if req[i] == 0 {
			continue
		}
		if i >= len(st.Cassettes) || st.Cassettes[i].Missing {
			a.Error = byte([2]lcdm.ErrorCode{lcdm.UpperMissing, lcdm.LowerMissing}[i])
			break
		}
		cas, c := &st.Cassettes[i], counts[i]
		billEnd := [2]lcdm.ErrorCode{lcdm.UpperBillEnd, lcdm.LowerBillEnd}[i]
		for c.Exit < req[i] {
			if rejects > 0 && cas.Count > 0 {
				// A double: diverted to the reject tray, another note is
				// picked in its place.
				rejects--
				cas.Count--
				c.Check++
				c.Reject++
				st.Reject = inc(st.Reject, cas.ID, 1)
				continue
			}
			if passed == stopAt && kind != stopNone {
				switch kind {
				case stopJam, stopExitJam:
					if cas.Count > 0 {
						cas.Count--
						c.Check++
						st.Transport = inc(st.Transport, cas.ID, 1)
						st.HalfOut = kind == stopExitJam
					}
					a.Error = byte(code)
				case stopCode:
					a.Error = byte(code)
				case stopBillEnd:
					a.Error = byte(billEnd)
				}
				stopped = true
				break
			}
			if cas.Count == 0 {
				a.Error = byte(billEnd)
				stopped = true
				break
			}
			cas.Count--
			c.Check++
			c.Exit++
			passed++
			st.Tray = inc(st.Tray, cas.ID, 1)
		}
		if s.cfg.NearEnd > 0 && cas.Count <= s.cfg.NearEnd {
			c.Status = lcdm.CassetteNearEnd
		} else {
			c.Status = lcdm.CassetteNormal
		}
	}
	if e := lcdm.ErrorCode(a.Error); e.Class() == lcdm.ClassFault || e.Class() == lcdm.ClassExitJam {
		st.Error = a.Error // the device keeps the fault until a purge
	}
	s.log.Info("lcdmsim dispense", "cmd", fmt.Sprintf("%#02x", cmd), "upper", up, "lower", lo,
		"error", lcdm.ErrorCode(a.Error).String(), "counts", fmt.Sprintf("%+v %+v", a.Upper, a.Lower))
	return a
}

// String describes the faults briefly (for the command's log).
func (f Faults) String() string {
	var parts []string
	if f.Offline {
		parts = append(parts, "offline")
	}
	if f.NoAnswer {
		parts = append(parts, "no-answer")
	}
	if f.PickupError {
		parts = append(parts, fmt.Sprintf("pickup-after=%d", f.PickupAfter))
	}
	if f.Jam {
		parts = append(parts, fmt.Sprintf("jam-after=%d", f.JamAfter))
	}
	if f.JamAtExit {
		parts = append(parts, fmt.Sprintf("exit-jam-after=%d", f.JamAtExitAfter))
	}
	if f.ShortDispense > 0 {
		parts = append(parts, fmt.Sprintf("short=%d", f.ShortDispense))
	}
	if f.Rejects > 0 {
		parts = append(parts, fmt.Sprintf("rejects=%d", f.Rejects))
	}
	if f.BadBCC > 0 {
		parts = append(parts, fmt.Sprintf("bad-bcc=%d", f.BadBCC))
	}
	if f.NakFrames > 0 {
		parts = append(parts, fmt.Sprintf("nak=%d", f.NakFrames))
	}
	if f.Error != 0 {
		parts = append(parts, fmt.Sprintf("error=%#02x-after=%d", f.Error, f.ErrorAfter))
	}
	if f.ErrorOnly {
		parts = append(parts, "error-only")
	}
	if f.NakDispense > 0 {
		parts = append(parts, fmt.Sprintf("nak-dispense=%d", f.NakDispense))
	}
	if len(f.Noise) > 0 {
		parts = append(parts, fmt.Sprintf("noise=%X", f.Noise))
	}
	if f.AfterCommands > 0 {
		parts = append(parts, fmt.Sprintf("after-commands=%d", f.AfterCommands))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}
