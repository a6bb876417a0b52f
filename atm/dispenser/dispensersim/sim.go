package dispensersim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

// Faults selects injected device faults. They stay in force until changed
// with SetFaults.
type Faults struct {
	// Offline: the device does not answer; every command but Status fails
	// with ErrDeviceNotReady and Status reports StateOffline.
	Offline bool
	// Jam: the transport jams after JamAfter notes were picked. Those notes
	// stay inside the device (counted as dispensed), the device reports
	// hardwareError until Reset, which purges them to the reject bin.
	Jam      bool
	JamAfter int
	// ShortDispense > 0: the device dispenses that many notes fewer than
	// requested and says so exactly; the notes it did dispense can be
	// presented or retracted.
	ShortDispense int
	// CountUnknown: all requested notes are picked but the device reports
	// that it does not know how many; hardwareError until Reset.
	CountUnknown bool
	// NotesNotTaken: the customer never takes presented notes.
	NotesNotTaken bool
	// ShutterFailure: Present fails; the notes stay in the stacker.
	ShutterFailure bool
}

// Clock is the time source for waits (latency, take delay, take timeout).
type Clock interface {
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config configures a simulated dispenser.
type Config struct {
	// Units are the cash units loaded at first start. When StateFile
	// already exists the units and counts stored in it are used instead.
	Units []dispenser.CashUnit
	// MaxNotes is the most notes one dispense may hold (default 40).
	MaxNotes int
	// LowThreshold: a unit with at most this many notes (and more than
	// zero) reports UnitLow.
	LowThreshold int
	// TokenKey is the HMAC-SHA256 key shared with the host for
	// end-to-end dispense tokens. Required; never logged.
	TokenKey []byte
	// Exponent is the number of minor-unit digits of the cash units'
	// currency (ISO 4217 exponent, 0-3: 2 for CNY, 0 for JPY or XPF), the
	// value the host signs tokens with. Dispense reads a token's DISPENSE1
	// with it; a wrong value makes tokens cover the wrong amount.
	Exponent int
	// Latency is added before every command.
	Latency time.Duration
	// TakeDelay is how long after Present the customer takes the notes.
	TakeDelay time.Duration
	// StateFile holds the device's persistent memory (JSON). Empty means
	// memory only: nothing survives the process.
	StateFile string
	Faults    Faults
	// AfterSave, when set, is called after the device's memory records
	// an action, before the method returns: "nonce", "Dispense",
	// "Present", "Taken", "Retract" or "Reset". It is for fault injection
	// (a crash test kills the process there: the device acted, the
	// caller has not heard).
	AfterSave func(action string)
	Logger    *slog.Logger // nil: discard
	Clock     Clock        // nil: real time
}

// Sim is a simulated cash dispenser. Its methods are safe for concurrent use.
type Sim struct {
	cfg Config
	log *slog.Logger
	clk Clock

	mu     sync.Mutex
	st     *state
	faults Faults
	nonce  string // current command nonce; never persisted

	// Nonce counters are reserved in blocks: the state file records the
	// end of the reserved block before any counter in it is used, so a
	// counter is never used twice, even across restarts (the unused rest
	// of a block is skipped), without an fsync per nonce.
	nonceNext, nonceLimit uint64
}

// nonceBlock is how many nonce counters one state-file write reserves.
const nonceBlock = 1024

// New creates a simulated dispenser, loading its persistent memory from
// cfg.StateFile if that file exists (and creating it otherwise). The command
// nonce is never restored: a token issued before a restart is refused.
func New(cfg Config) (*Sim, error) {
	if len(cfg.TokenKey) == 0 {
		return nil, errors.New("dispensersim: TokenKey is required")
	}
	if cfg.MaxNotes == 0 {
		cfg.MaxNotes = 40
	}
	if cfg.MaxNotes < 0 {
		return nil, fmt.Errorf("dispensersim: MaxNotes %d", cfg.MaxNotes)
	}
	if cfg.Exponent < 0 || cfg.Exponent > 3 {
		return nil, fmt.Errorf("dispensersim: Exponent %d must be 0-3", cfg.Exponent)
	}
	cfg.TokenKey = append([]byte(nil), cfg.TokenKey...)
	s := &Sim{cfg: cfg, log: cfg.Logger, clk: cfg.Clock, faults: cfg.Faults}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clk == nil {
		s.clk = realClock{}
	}
	var st *state
	if cfg.StateFile != "" {
		var err error
		if st, err = loadState(cfg.StateFile); err != nil {
			return nil, err
		}
	}
	if st == nil {
		st = &state{Version: stateVersion, Last: dispenser.PresentStatus{State: dispenser.PresentNone, CountKnown: true}}
		seen := map[string]bool{}
		for _, u := range cfg.Units {
			switch {
			case u.ID == "" || strings.ContainsAny(u.ID, " \t\n"):
				return nil, fmt.Errorf("dispensersim: bad unit ID %q", u.ID)
			case seen[u.ID]:
				return nil, fmt.Errorf("dispensersim: duplicate unit ID %q", u.ID)
			case u.Denomination <= 0 || u.Count < 0 || len(u.Currency) != 3:
				return nil, fmt.Errorf("dispensersim: unit %s: bad denomination, count or currency", u.ID)
			}
			seen[u.ID] = true
			st.Units = append(st.Units, UnitCounters{
				ID: u.ID, Denomination: u.Denomination, Currency: u.Currency, Count: u.Count,
				Inoperative: u.Status == dispenser.UnitInoperative, Loaded: u.Count,
			})
		}
		if err := s.save(st); err != nil {
			return nil, err
		}
	}
	s.st = st
	s.log.Info("dispenser sim started", "units", len(st.Units), "state_file", cfg.StateFile, "last_state", st.Last.State)
	return s, nil
}

func (s *Sim) save(st *state) error {
	if s.cfg.StateFile == "" {
		return nil
	}
	return saveState(s.cfg.StateFile, st)
}

// commit saves st and makes it current, then calls the AfterSave hook
// with action. Callers hold s.mu.
func (s *Sim) commit(st *state, action string) error {
	if err := s.save(st); err != nil {
		return err
	}
	s.st = st
	if s.cfg.AfterSave != nil {
		s.cfg.AfterSave(action)
	}
	return nil
}

// SetFaults replaces the injected faults.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.log.Info("dispenser sim faults set", "faults", fmt.Sprintf("%+v", f))
}

// Faults returns the injected faults.
func (s *Sim) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Counters returns the supply counters of every unit (the device's true
// counts, also when it reported ErrCountUnknown).
func (s *Sim) Counters() []UnitCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.st.Units)
}

// Stacked returns the notes physically inside the device (picked, not
// presented) and at the exit slot, whatever the device reported. Tests use
// it as ground truth.
func (s *Sim) Stacked() (stacker, exit dispenser.Mix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Stacker.Clone(), s.st.Exit.Clone()
}

func (s *Sim) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.clk.After(d):
		return nil
	}
}

// ready reports why the device cannot act (nil when it can). Holds s.mu.
func (s *Sim) ready() error {
	if s.faults.Offline {
		return fmt.Errorf("%w: offline", dispenser.ErrDeviceNotReady)
	}
	if s.st.Fault != "" {
		return fmt.Errorf("%w: hardware fault %s, reset required", dispenser.ErrDeviceNotReady, s.st.Fault)
	}
	return nil
}

func (s *Sim) unitStatus(u UnitCounters) dispenser.UnitStatus {
	switch {
	case u.Inoperative:
		return dispenser.UnitInoperative
	case u.Count == 0:
		return dispenser.UnitEmpty
	case u.Count <= s.cfg.LowThreshold:
		return dispenser.UnitLow
	}
	return dispenser.UnitOK
}

// Status returns the device state and cash units (Common.Status and
// Storage.GetStorage). An offline device reports StateOffline, not an error.
func (s *Sim) Status(ctx context.Context) (dispenser.Status, error) {
	if err := s.sleep(ctx, s.cfg.Latency); err != nil {
		return dispenser.Status{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := dispenser.Status{Device: dispenser.StateOnline, MaxNotes: s.cfg.MaxNotes}
	switch {
	case s.faults.Offline:
		st.Device = dispenser.StateOffline
	case s.st.Fault != "":
		st.Device = dispenser.StateHardwareError
	}
	st.Units = s.st.cashUnits()
	for i := range st.Units {
		st.Units[i].Status = s.unitStatus(s.st.Units[i])
	}
	return st, nil
}

// CommandNonce returns a fresh command nonce (Common.GetCommandNonce): 32
// upper-case hex digits, replacing any earlier one. The nonce is the first
// 128 bits of SHA-256(counter || 32 random bytes), where counter is a 64-bit
// value never used before (reserved in blocks in the state file before use,
// see nonceBlock): it is unpredictable (random), and distinct even if the
// random source repeated itself across power cycles (the counter never
// repeats).
func (s *Sim) CommandNonce(ctx context.Context) (string, error) {
	if err := s.sleep(ctx, s.cfg.Latency); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ready(); err != nil {
		return "", err
	}
	if s.nonceNext >= s.nonceLimit {
		if s.nonceNext < s.st.NonceCounter {
			s.nonceNext = s.st.NonceCounter // first nonce since start: skip the old block's rest
		}
		st := s.st.clone()
		st.NonceCounter = s.nonceNext + nonceBlock
		if err := s.commit(st, "nonce"); err != nil {
			return "", err
		}
		s.nonceLimit = st.NonceCounter
	}
	s.nonceNext++
	var in [8 + 32]byte
	binary.BigEndian.PutUint64(in[:8], s.nonceNext)
	if _, err := rand.Read(in[8:]); err != nil {
		return "", fmt.Errorf("dispensersim: random: %w", err)
	}
	sum := sha256.Sum256(in[:])
	s.nonce = strings.ToUpper(hex.EncodeToString(sum[:16]))
	s.log.Debug("command nonce issued", "counter", s.nonceNext)
	return s.nonce, nil
}

// orderedNotes lists the notes of m one by one, units in ID order.
func orderedNotes(m dispenser.Mix) []string {
	var notes []string
	for _, id := range slices.Sorted(maps.Keys(m)) {
		for range m[id] {
			notes = append(notes, id)
		}
	}
	return notes
}

func mixOf(notes []string) dispenser.Mix {
	m := dispenser.Mix{}
	for _, id := range notes {
		m[id]++
	}
	return m
}

func amountOf(st *state, m dispenser.Mix) int64 {
	a, _ := m.Amount(st.cashUnits())
	return a
}

// Dispense moves the notes of mix into the stacker (CashDispenser.Dispense),
// only with a valid end-to-end token for the current command nonce covering
// the mix's amount and currency. Every call that gets past the readiness
// and sequence checks consumes the nonce, valid or not, so a token works at most once and
// guessing is useless. Counts and the present status are saved to the state
// file before Dispense returns.
func (s *Sim) Dispense(ctx context.Context, mix dispenser.Mix, token string) (dispenser.Result, error) {
	if err := s.sleep(ctx, s.cfg.Latency); err != nil {
		return dispenser.Result{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The command nonce is used up by any Dispense, whatever its fate: a
	// token is good for one attempt only, so a refused token can never pay
	// later (after a retract or reset, say).
	nonce := s.nonce
	s.nonce = ""
	if err := s.ready(); err != nil {
		return dispenser.Result{}, err
	}
	if s.st.Stacker.Notes() > 0 || s.st.Exit.Notes() > 0 {
		return dispenser.Result{}, fmt.Errorf("%w: notes left in the device", dispenser.ErrSequence)
	}

	// Which currency and amount: needed to check the token.
	currency := ""
	for id, n := range mix {
		u := s.st.unit(id)
		if u == nil || n < 0 {
			return dispenser.Result{}, fmt.Errorf("%w: unknown unit %q or negative count", dispenser.ErrNotDispensable, id)
		}
		if n == 0 {
			continue
		}
		if currency != "" && u.Currency != currency {
			return dispenser.Result{}, fmt.Errorf("%w: mix mixes currencies", dispenser.ErrNotDispensable)
		}
		currency = u.Currency
	}
	amount := amountOf(s.st, mix)
	if mix.Notes() == 0 {
		return dispenser.Result{}, fmt.Errorf("%w: empty mix", dispenser.ErrNotDispensable)
	}
	if err := dispenser.VerifyToken(token, nonce, s.cfg.TokenKey, amount, currency, s.cfg.Exponent); err != nil {
		s.log.Warn("dispense refused: token", "code", dispenser.Code(err), "amount", amount, "currency", currency)
		return dispenser.Result{}, err
	}
	if mix.Notes() > s.cfg.MaxNotes {
		return dispenser.Result{}, fmt.Errorf("%w: %d notes, limit %d", dispenser.ErrTooManyItems, mix.Notes(), s.cfg.MaxNotes)
	}
	for id, n := range mix {
		if u := s.st.unit(id); n > 0 && (u.Inoperative || u.Count < n) {
			return dispenser.Result{}, fmt.Errorf("%w: unit %s cannot give %d notes", dispenser.ErrNotDispensable, id, n)
		}
	}

	f := s.faults
	notes := orderedNotes(mix)
	var fail error
	countKnown := true
	switch {
	case f.Jam:
		notes = notes[:min(max(f.JamAfter, 0), len(notes))]
		fail = dispenser.ErrJam
	case f.CountUnknown:
		fail = dispenser.ErrCountUnknown
		countKnown = false
	case f.ShortDispense > 0:
		notes = notes[:max(len(notes)-f.ShortDispense, 0)]
		fail = dispenser.ErrShortDispense
	}
	picked := mixOf(notes)

	st := s.st.clone()
	for id, n := range picked {
		u := st.unit(id)
		u.Count -= n
		u.Dispensed += n
	}
	st.Stacker = picked
	pickedAmount := amountOf(st, picked)
	last := dispenser.PresentStatus{
		Seq: st.Last.Seq + 1, Nonce: nonce, Currency: currency, State: dispenser.PresentStacked,
		CountKnown: countKnown, Requested: mix.Clone(),
	}
	if countKnown {
		last.Dispensed, last.DispensedAmount = picked, pickedAmount
	}
	if fail != nil {
		last.ErrorCode = dispenser.Code(fail)
		if errors.Is(fail, dispenser.ErrJam) || errors.Is(fail, dispenser.ErrCountUnknown) {
			st.Fault = last.ErrorCode
			last.State = dispenser.PresentFailed
		}
	}
	st.Last = last
	st.DispenseID = token[len(token)-2*sha256.Size:] // verified: ends with HMACSHA256=<64 hex>
	if err := s.commit(st, "Dispense"); err != nil {
		return dispenser.Result{}, err // nothing moved: the write comes first
	}
	s.log.Info("dispense", "seq", last.Seq, "requested", mix.String(), "dispensed", picked.String(),
		"amount", pickedAmount, "currency", currency, "count_known", countKnown, "code", dispenser.Code(fail))
	if fail != nil {
		de := &dispenser.DispenseError{Code: dispenser.Code(fail), CountKnown: countKnown, Err: fail}
		if countKnown {
			de.Dispensed = picked
		}
		return dispenser.Result{}, de
	}
	return dispenser.Result{Mix: picked, Amount: pickedAmount}, nil
}

// Present moves the stacked notes to the exit (CashDispenser.Present). With
// a shutter failure it returns a *DispenseError wrapping ErrShutter whose
// Dispensed (what reached the customer) is empty; the notes stay stacked.
func (s *Sim) Present(ctx context.Context) error {
	if err := s.sleep(ctx, s.cfg.Latency); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ready(); err != nil {
		return err
	}
	if s.st.Stacker.Notes() == 0 {
		return fmt.Errorf("%w: nothing to present", dispenser.ErrSequence)
	}
	if s.faults.ShutterFailure {
		st := s.st.clone()
		st.Last.ErrorCode = dispenser.Code(dispenser.ErrShutter)
		if err := s.commit(st, "Present"); err != nil {
			return err
		}
		s.log.Warn("present failed: shutter", "seq", st.Last.Seq)
		return &dispenser.DispenseError{Code: dispenser.Code(dispenser.ErrShutter), Dispensed: dispenser.Mix{}, CountKnown: true, Err: dispenser.ErrShutter}
	}
	st := s.st.clone()
	st.Exit, st.Stacker = st.Stacker, nil
	st.Last.State = dispenser.PresentPresented
	st.Last.Presented = st.Exit.Clone()
	st.Last.PresentedAmount = amountOf(st, st.Exit)
	if err := s.commit(st, "Present"); err != nil {
		return err
	}
	s.log.Info("cash presented", "seq", st.Last.Seq, "notes", st.Exit.String(), "amount", st.Last.PresentedAmount)
	return nil
}

// WaitTaken waits up to timeout for the customer to take the presented
// notes (CashManagement.ItemsTakenEvent). The simulated customer takes them
// TakeDelay after the call unless NotesNotTaken is set or TakeDelay exceeds
// timeout; then WaitTaken returns false after timeout and the notes stay at
// the exit (retract them). It returns true at once if the notes of the last
// dispense were already taken.
func (s *Sim) WaitTaken(ctx context.Context, timeout time.Duration) (bool, error) {
	s.mu.Lock()
	if err := s.ready(); err != nil {
		s.mu.Unlock()
		return false, err
	}
	if s.st.Last.State == dispenser.PresentTaken {
		s.mu.Unlock()
		return true, nil
	}
	if s.st.Exit.Notes() == 0 {
		s.mu.Unlock()
		return false, fmt.Errorf("%w: no notes presented", dispenser.ErrSequence)
	}
	seq := s.st.Last.Seq
	willTake := !s.faults.NotesNotTaken && s.cfg.TakeDelay <= timeout
	s.mu.Unlock()

	wait := timeout
	if willTake {
		wait = s.cfg.TakeDelay
	}
	if err := s.sleep(ctx, wait); err != nil {
		return false, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Last.Seq != seq || s.st.Exit.Notes() == 0 {
		// Retracted or reset meanwhile, or taken by a concurrent waiter.
		return s.st.Last.Seq == seq && s.st.Last.State == dispenser.PresentTaken, nil
	}
	if !willTake {
		s.log.Info("cash not taken", "seq", seq, "timeout", timeout)
		return false, nil
	}
	st := s.st.clone()
	st.Exit = nil
	st.Last.State = dispenser.PresentTaken
	st.Last.Taken = true
	if err := s.commit(st, "Taken"); err != nil {
		return false, err
	}
	s.log.Info("cash taken", "seq", seq, "amount", st.Last.PresentedAmount)
	return true, nil
}

// Retract takes notes back (CashManagement.Retract): notes at the exit go to
// the retract bin (Retracted counters, PresentStatus.Retracted), notes still
// in the stacker (never presented) to the reject bin. The Result is what was
// taken back. ErrNoItems if there was nothing (the notes were taken).
func (s *Sim) Retract(ctx context.Context) (dispenser.Result, error) {
	if err := s.sleep(ctx, s.cfg.Latency); err != nil {
		return dispenser.Result{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nonce = "" // a retract ends the transaction: no token issued before it may pay
	if err := s.ready(); err != nil {
		return dispenser.Result{}, err
	}
	if s.st.Exit.Notes() == 0 && s.st.Stacker.Notes() == 0 {
		return dispenser.Result{}, dispenser.ErrNoItems
	}
	st := s.st.clone()
	moved := s.clearDevice(st)
	if err := s.commit(st, "Retract"); err != nil {
		return dispenser.Result{}, err
	}
	res := dispenser.Result{Mix: moved, Amount: amountOf(st, moved)}
	s.log.Info("cash retracted", "seq", st.Last.Seq, "notes", moved.String(), "amount", res.Amount)
	return res, nil
}

// clearDevice moves exit notes to the retract bin and stacker notes to the
// reject bin, updating counters and the last present status. It returns
// everything moved.
func (s *Sim) clearDevice(st *state) dispenser.Mix {
	moved := dispenser.Mix{}
	if st.Exit.Notes() > 0 {
		for id, n := range st.Exit {
			st.unit(id).Retracted += n
			moved[id] += n
		}
		st.Last.Retracted = st.Exit.Clone()
		st.Last.RetractedAmount = amountOf(st, st.Exit)
		st.Last.State = dispenser.PresentRetracted
		st.Exit = nil
	}
	if st.Stacker.Notes() > 0 {
		for id, n := range st.Stacker {
			st.unit(id).Rejected += n
			moved[id] += n
		}
		if st.Last.State != dispenser.PresentRetracted {
			st.Last.State = dispenser.PresentRejected
		}
		st.Stacker = nil
	}
	return moved
}

// PresentStatus reports what the last dispense really did
// (CashDispenser.GetPresentStatus); it survives restarts.
func (s *Sim) PresentStatus(ctx context.Context) (dispenser.PresentStatus, error) {
	if err := s.sleep(ctx, s.cfg.Latency); err != nil {
		return dispenser.PresentStatus{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.Offline {
		return dispenser.PresentStatus{}, fmt.Errorf("%w: offline", dispenser.ErrDeviceNotReady)
	}
	return s.st.last(), nil
}

// Reset recovers the device (CashManagement.Reset): clears a latched
// hardware fault, purges notes inside the device to the reject bin,
// retracts notes left at the exit, and clears the command nonce.
func (s *Sim) Reset(ctx context.Context) error {
	if err := s.sleep(ctx, s.cfg.Latency); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nonce = "" // a reset ends any transaction, even if the device stays offline
	if s.faults.Offline {
		return fmt.Errorf("%w: offline", dispenser.ErrDeviceNotReady)
	}
	st := s.st.clone()
	st.Fault = ""
	moved := s.clearDevice(st)
	if err := s.commit(st, "Reset"); err != nil {
		return err
	}
	s.log.Info("dispenser reset", "moved", moved.String())
	return nil
}
