package lcdm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.bug.st/serial"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
)

// Models.
const (
	ModelLCDM2000 = "lcdm2000"
	ModelLCDM4000 = "lcdm4000"
)

// ErrModelUnsupported: the configured model speaks another protocol.
var ErrModelUnsupported = errors.New("lcdm: model not supported")

// Timeouts bound the waits of the link, on Config.Clock.
type Timeouts struct {
	Ack      time.Duration // ACK/NAK after a command frame (default 1 s)
	Response time.Duration // answer of status and ROM version after the ACK (default 5 s)
	Purge    time.Duration // answer of a purge (default 20 s)
	// Dispense + PerNote*notes is the wait for a dispense answer (default
	// 60 s and 1 s): a cassette running empty takes the device long.
	Dispense time.Duration
	PerNote  time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&t.Ack, time.Second)
	def(&t.Response, 5*time.Second)
	def(&t.Purge, 20*time.Second)
	def(&t.Dispense, 60*time.Second)
	def(&t.PerNote, time.Second)
	return t
}

// Config configures the driver.
type Config struct {
	// Port is the serial device, e.g. /dev/ttyUSB0.
	Port string
	// Model must be "lcdm2000" (the default; the LCDM-1000 speaks the
	// same protocol with one cassette). "lcdm4000" is refused: see
	// ErrModelUnsupported and docs/lcdm.md.
	Model string
	// Units are the cassettes in order: Units[0] is the upper cassette,
	// Units[1] (optional) the lower one. Their counts are the loaded
	// counts at first start; when StateFile exists, its units and counts
	// are used instead (the device does not count notes in cassettes).
	Units []dispenser.CashUnit
	// MaxNotes is the most notes one Dispense may hold (default 60); the
	// driver splits a dispense into commands of at most 60 notes per
	// cassette.
	MaxNotes int
	// LowThreshold: a unit with 1..LowThreshold notes reports UnitLow (as
	// does a unit whose near-end sensor is set).
	LowThreshold int
	// TokenKey is the HMAC-SHA256 key of the end-to-end dispense token,
	// shared with the host. Required; never logged.
	TokenKey []byte
	// Exponent is the ISO 4217 exponent of the units' currency (0-4).
	Exponent int
	// StateFile is the driver's persistent memory (JSON). Required.
	StateFile string
	// Baud is the line speed (default 9600); Parity "none" (default),
	// "even" or "odd"; always 8 data bits, 1 stop bit.
	Baud   int
	Parity string
	// ReadTimeout is the serial read timeout of one port read (real time,
	// default 100 ms). It is the only real-time wait of the driver: a
	// timeout on Clock counts only after one more read found the line
	// silent.
	ReadTimeout time.Duration
	Timeouts    Timeouts
	Clock       clock.Clock  // nil: real time
	Logger      *slog.Logger // nil: discard
}

// Driver is a Puloon LCDM-2000 on a serial port. Its methods are safe for
// concurrent use; device commands are serialized.
type Driver struct {
	cfg Config
	clk clock.Clock
	log *slog.Logger
	to  Timeouts

	// slot is the device: one command at a time. It is a channel so that
	// waiting for it respects the context, and Status can see that a
	// command is in progress.
	slot chan struct{}

	// Under slot.
	conn       *conn
	startPurge bool // the purge at start has not happened yet

	mu     sync.Mutex // guards the fields below; never held across I/O
	st     *state
	nonce  string
	nearUp bool // near-end sensors of the last status or dispense answer
	nearLo bool
	closed bool

	nonceNext, nonceLimit uint64
}

// nonceBlock is how many nonce counters one state-file write reserves.
const nonceBlock = 1024

// Open starts the driver: it loads (or creates) the state file, opens the
// port and purges the transport (command 0x44), as the device must be at
// start. A device that does not answer yet is not an error: the driver
// reports StateOffline and purges as soon as the device answers. Open fails
// on configuration and state-file errors.
func Open(ctx context.Context, cfg Config) (*Driver, error) {
	switch cfg.Model {
	case "", ModelLCDM2000, "lcdm1000":
	case ModelLCDM4000:
		return nil, fmt.Errorf("%w: %s speaks a different protocol (ID 0x30, commands 0x50-0x55, counts 0x20+n, 8E1 or 8N1); only the LCDM-1000/2000 protocol is implemented", ErrModelUnsupported, cfg.Model)
	default:
		return nil, fmt.Errorf("%w: %q", ErrModelUnsupported, cfg.Model)
	}
	if cfg.Port == "" {
		return nil, errors.New("lcdm: Port is required")
	}
	if cfg.StateFile == "" {
		return nil, errors.New("lcdm: StateFile is required (the driver counts the cassettes)")
	}
	if len(cfg.TokenKey) == 0 {
		return nil, errors.New("lcdm: TokenKey is required")
	}
	if cfg.Exponent < 0 || cfg.Exponent > 4 {
		return nil, fmt.Errorf("lcdm: Exponent %d must be 0-4", cfg.Exponent)
	}
	if cfg.MaxNotes == 0 {
		cfg.MaxNotes = 60
	}
	if cfg.MaxNotes < 0 {
		return nil, fmt.Errorf("lcdm: MaxNotes %d", cfg.MaxNotes)
	}
	if cfg.Baud == 0 {
		cfg.Baud = 9600
	}
	if _, err := parityOf(cfg.Parity); err != nil {
		return nil, err
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 100 * time.Millisecond
	}
	cfg.TokenKey = append([]byte(nil), cfg.TokenKey...)
	d := &Driver{cfg: cfg, clk: clock.Or(cfg.Clock), log: cfg.Logger, to: cfg.Timeouts.withDefaults(), slot: make(chan struct{}, 1), startPurge: true}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	st, err := loadState(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	if st == nil {
		if len(cfg.Units) == 0 || len(cfg.Units) > 2 {
			return nil, fmt.Errorf("lcdm: %d units: the LCDM-2000 has an upper and an optional lower cassette", len(cfg.Units))
		}
		st = &state{Version: stateVersion, Last: dispenser.PresentStatus{State: dispenser.PresentNone, CountKnown: true}}
		seen := map[string]bool{}
		for _, u := range cfg.Units {
			switch {
			case u.ID == "" || strings.ContainsAny(u.ID, " \t\n"):
				return nil, fmt.Errorf("lcdm: bad unit ID %q", u.ID)
			case seen[u.ID]:
				return nil, fmt.Errorf("lcdm: duplicate unit ID %q", u.ID)
			case u.Denomination <= 0 || u.Count < 0 || len(u.Currency) != 3:
				return nil, fmt.Errorf("lcdm: unit %s: bad denomination, count or currency", u.ID)
			}
			seen[u.ID] = true
			st.Units = append(st.Units, unitState{ID: u.ID, Denomination: u.Denomination, Currency: u.Currency, Count: u.Count,
				Inoperative: u.Status == dispenser.UnitInoperative, Loaded: u.Count})
		}
		if err := saveState(cfg.StateFile, st); err != nil {
			return nil, err
		}
	}
	d.st = st
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	err = d.ensureReady(ctx)
	d.release()
	if err != nil {
		d.log.Warn("lcdm: no purge at start yet", "err", err)
	}
	d.log.Info("lcdm driver started", "port", cfg.Port, "units", len(st.Units), "state_file", cfg.StateFile, "purge_needed", st.PurgeNeeded)
	return d, nil
}

// Close closes the port.
func (d *Driver) Close() error {
	d.slot <- struct{}{}
	defer d.release()
	d.mu.Lock()
	d.closed = true
	d.nonce = ""
	d.mu.Unlock()
	if d.conn != nil {
		err := d.conn.port.Close()
		d.conn = nil
		return err
	}
	return nil
}

func (d *Driver) acquire(ctx context.Context) error {
	select {
	case d.slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Driver) release() { <-d.slot }

// link returns the open connection, opening the port if needed. Under slot.
func (d *Driver) link() (*conn, error) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, errors.New("lcdm: driver closed")
	}
	if d.conn != nil {
		return d.conn, nil
	}
	parity, _ := parityOf(d.cfg.Parity)
	p, err := serial.Open(d.cfg.Port, &serial.Mode{BaudRate: d.cfg.Baud, DataBits: 8, Parity: parity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, fmt.Errorf("lcdm: open %s: %w", d.cfg.Port, err)
	}
	if err := p.SetReadTimeout(d.cfg.ReadTimeout); err != nil {
		p.Close()
		return nil, fmt.Errorf("lcdm: %s: read timeout: %w", d.cfg.Port, err)
	}
	d.conn = &conn{port: p, clk: d.clk, trace: func(dir string, b []byte) {
		d.log.Debug("lcdm frame", "dir", dir, "bytes", hex.EncodeToString(b))
	}}
	return d.conn, nil
}

// dropLink closes the port after an I/O failure; the next command reopens
// it (a USB adapter that was unplugged and plugged again).
func (d *Driver) dropLink() {
	if d.conn != nil {
		d.conn.port.Close()
		d.conn = nil
	}
}

// command runs one exchange. Under slot.
func (d *Driver) command(ctx context.Context, cmd byte, data []byte, answer time.Duration, repeatable bool) (Frame, error) {
	c, err := d.link()
	if err != nil {
		return Frame{}, &linkError{kind: linkNotSent, cmd: cmd, err: err}
	}
	f, err := c.exchange(ctx, cmd, data, d.to.Ack, answer, repeatable)
	var le *linkError
	if errors.As(err, &le) && le.kind == linkIO {
		d.dropLink()
	}
	return f, err
}

// notReady wraps a link failure as ErrDeviceNotReady.
func notReady(err error) error {
	return fmt.Errorf("%w: %w", dispenser.ErrDeviceNotReady, err)
}

// save writes st and makes it current. Callers hold d.mu.
func (d *Driver) save(st *state) error {
	if err := saveState(d.cfg.StateFile, st); err != nil {
		return err
	}
	d.st = st
	return nil
}

// purge sends the purge command and, when the device confirms it, clears
// the fault: notes left in the transport went to the reject tray. Under
// slot.
func (d *Driver) purge(ctx context.Context) error {
	f, err := d.command(ctx, CmdPurge, nil, d.to.Purge, true)
	if err != nil {
		return notReady(err)
	}
	if len(f.Data) < 1 {
		return notReady(errors.New("lcdm: malformed purge answer"))
	}
	if code := ErrorCode(f.Data[0]); code.Class() != ClassOK {
		d.mu.Lock()
		st := d.st.clone()
		st.PurgeNeeded, st.Fault = true, code.String()
		serr := d.save(st)
		d.mu.Unlock()
		return errors.Join(fmt.Errorf("%w: purge failed: %s", dispenser.ErrDeviceNotReady, code), serr)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st.clone()
	// Notes stuck in the transport go to the reject tray; they were
	// counted as rejected when the dispense recorded them.
	if st.Last.State == dispenser.PresentFailed {
		st.Last.State = dispenser.PresentRejected
	}
	st.PurgeNeeded, st.Fault = false, ""
	d.startPurge = false
	if err := d.save(st); err != nil {
		return err
	}
	d.log.Info("lcdm: transport purged")
	return nil
}

// ensureReady performs the purge at start if it has not happened yet.
// Under slot.
func (d *Driver) ensureReady(ctx context.Context) error {
	if !d.startPurge {
		return nil
	}
	return d.purge(ctx)
}

// status asks the device for its status. Under slot.
func (d *Driver) status(ctx context.Context) (StatusAnswer, error) {
	f, err := d.command(ctx, CmdStatus, nil, d.to.Response, true)
	if err != nil {
		return StatusAnswer{}, notReady(err)
	}
	s, err := ParseStatusAnswer(f)
	if err != nil {
		return StatusAnswer{}, notReady(err)
	}
	d.mu.Lock()
	d.nearUp, d.nearLo = s.Sensor0&S0UpperNearEnd != 0, s.Sensor1&S1LowerNearEnd != 0
	d.mu.Unlock()
	return s, nil
}

// healthy reports why the device cannot dispense, from a status answer.
func (d *Driver) healthy(s StatusAnswer) error {
	switch {
	case ErrorCode(s.Error).Class() != ClassOK && ErrorCode(s.Error).Class() != ClassBillEnd:
		return fmt.Errorf("%w: device reports %s", dispenser.ErrDeviceNotReady, ErrorCode(s.Error))
	case s.NotesInPath():
		return fmt.Errorf("%w: notes in the transport, purge (Reset) required", dispenser.ErrDeviceNotReady)
	case s.Sensor1&(S1Solenoid|S1RejectMissing) != 0:
		return fmt.Errorf("%w: solenoid error or reject tray missing", dispenser.ErrDeviceNotReady)
	}
	return nil
}

// ROMVersion asks the device for its ROM version (command 0x47). The
// layout of the answer is an assumption (see docs/lcdm.md).
func (d *Driver) ROMVersion(ctx context.Context) (version, checksum string, err error) {
	if err := d.acquire(ctx); err != nil {
		return "", "", err
	}
	defer d.release()
	f, err := d.command(ctx, CmdROMVersion, nil, d.to.Response, true)
	if err != nil {
		return "", "", notReady(err)
	}
	return ParseROMAnswer(f)
}

func (d *Driver) unitStatus(i int, u unitState) dispenser.UnitStatus {
	near := (i == 0 && d.nearUp) || (i == 1 && d.nearLo)
	switch {
	case u.Inoperative:
		return dispenser.UnitInoperative
	case u.Count <= 0 || u.BillEnd:
		return dispenser.UnitEmpty
	case u.Count <= d.cfg.LowThreshold || near:
		return dispenser.UnitLow
	}
	return dispenser.UnitOK
}

// units returns the cash units as counted. Callers hold d.mu.
func (d *Driver) units(missing [2]bool) []dispenser.CashUnit {
	out := d.st.cashUnits()
	for i := range out {
		out[i].Status = d.unitStatus(i, d.st.Units[i])
		if i < 2 && missing[i] {
			out[i].Status = dispenser.UnitInoperative
		}
	}
	return out
}

// Status returns the device state and the cassettes as the driver counts
// them. A device that does not answer is StateOffline (not an error); one
// with a fault, notes in the transport or a pending purge is
// StateHardwareError; while another command runs it is StateBusy (without
// waiting for the device).
func (d *Driver) Status(ctx context.Context) (dispenser.Status, error) {
	select {
	case d.slot <- struct{}{}:
	default:
		d.mu.Lock()
		defer d.mu.Unlock()
		return dispenser.Status{Device: dispenser.StateBusy, Units: d.units([2]bool{}), MaxNotes: d.cfg.MaxNotes}, nil
	}
	defer d.release()
	if err := ctx.Err(); err != nil {
		return dispenser.Status{}, err
	}
	dev := dispenser.StateOnline
	var missing [2]bool
	perr := d.ensureReady(ctx)
	var s StatusAnswer
	var err error
	if le := (*linkError)(nil); errors.As(perr, &le) {
		err = perr // the device did not answer the purge: offline
	} else {
		s, err = d.status(ctx)
	}
	switch {
	case err != nil:
		dev = dispenser.StateOffline
		if ctx.Err() != nil {
			return dispenser.Status{}, ctx.Err()
		}
	default:
		missing = [2]bool{s.Sensor1&S1UpperMissing != 0, s.Sensor1&S1LowerMissing != 0}
		if perr != nil || d.healthy(s) != nil {
			dev = dispenser.StateHardwareError
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.PurgeNeeded && dev == dispenser.StateOnline {
		dev = dispenser.StateHardwareError
	}
	return dispenser.Status{Device: dev, Units: d.units(missing), MaxNotes: d.cfg.MaxNotes}, nil
}

// CommandNonce issues a fresh command nonce for the next token: 32
// upper-case hex digits, the first 128 bits of SHA-256(counter || 32 random
// bytes), where the counter is never used twice (blocks of counters are
// reserved in the state file before use). The device must answer and be
// free of faults, or ErrDeviceNotReady.
func (d *Driver) CommandNonce(ctx context.Context) (string, error) {
	if err := d.acquire(ctx); err != nil {
		return "", err
	}
	defer d.release()
	if err := d.ensureReady(ctx); err != nil {
		return "", err
	}
	s, err := d.status(ctx)
	if err != nil {
		return "", err
	}
	if err := d.healthy(s); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.PurgeNeeded {
		return "", fmt.Errorf("%w: fault %s, Reset required", dispenser.ErrDeviceNotReady, d.st.Fault)
	}
	if d.nonceNext >= d.nonceLimit {
		if d.nonceNext < d.st.NonceCounter {
			d.nonceNext = d.st.NonceCounter // first nonce since start: skip the old block's rest
		}
		st := d.st.clone()
		st.NonceCounter = d.nonceNext + nonceBlock
		if err := d.save(st); err != nil {
			return "", err
		}
		d.nonceLimit = st.NonceCounter
	}
	d.nonceNext++
	var in [8 + 32]byte
	binary.BigEndian.PutUint64(in[:8], d.nonceNext)
	if _, err := rand.Read(in[8:]); err != nil {
		return "", fmt.Errorf("lcdm: random: %w", err)
	}
	sum := sha256.Sum256(in[:])
	d.nonce = strings.ToUpper(hex.EncodeToString(sum[:16]))
	return d.nonce, nil
}

// PresentStatus reports what the last dispense did, from the driver's
// state file (it survives restarts; no device I/O).
func (d *Driver) PresentStatus(ctx context.Context) (dispenser.PresentStatus, error) {
	if err := ctx.Err(); err != nil {
		return dispenser.PresentStatus{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.last(), nil
}

// Present does nothing: the LCDM has no shutter, Dispense already put the
// notes in the customer's tray. It returns nil when the last dispense
// delivered notes that no completed transaction has accounted for yet,
// ErrSequence otherwise.
func (d *Driver) Present(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.Last.State != dispenser.PresentPresented {
		return fmt.Errorf("%w: nothing dispensed", dispenser.ErrSequence)
	}
	return nil
}

// WaitTaken returns true at once after a delivery: the device cannot sense
// the notes being taken, and notes in the open tray are the customer's. It
// records the notes as taken. ErrSequence if nothing was delivered.
func (d *Driver) WaitTaken(ctx context.Context, timeout time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch d.st.Last.State {
	case dispenser.PresentTaken:
		return true, nil
	case dispenser.PresentPresented:
		return true, d.markTaken()
	}
	return false, fmt.Errorf("%w: no notes presented", dispenser.ErrSequence)
}

// markTaken records delivered notes as taken. Callers hold d.mu.
func (d *Driver) markTaken() error {
	st := d.st.clone()
	st.Last.State, st.Last.Taken = dispenser.PresentTaken, true
	return d.save(st)
}

// Retract cannot take notes back (the LCDM has no retract path): it
// returns dispenser.ErrNoItems, and records notes still marked as
// presented as taken. It also clears the command nonce.
func (d *Driver) Retract(ctx context.Context) (dispenser.Result, error) {
	if err := ctx.Err(); err != nil {
		return dispenser.Result{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nonce = ""
	if d.st.Last.State == dispenser.PresentPresented {
		if err := d.markTaken(); err != nil {
			return dispenser.Result{}, err
		}
	}
	return dispenser.Result{}, fmt.Errorf("%w: the LCDM cannot retract; delivered notes are in the customer's tray", dispenser.ErrNoItems)
}

// Reset purges the transport (command 0x44): notes left inside after a
// fault go to the reject tray, the fault is cleared, and cassettes the
// device had reported empty are offered again. It clears the command nonce.
func (d *Driver) Reset(ctx context.Context) error {
	d.mu.Lock()
	d.nonce = ""
	d.mu.Unlock()
	if err := d.acquire(ctx); err != nil {
		return err
	}
	defer d.release()
	if err := d.purge(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st.clone()
	changed := false
	for i := range st.Units {
		if st.Units[i].BillEnd {
			st.Units[i].BillEnd, changed = false, true
		}
	}
	if changed {
		return d.save(st)
	}
	return nil
}
