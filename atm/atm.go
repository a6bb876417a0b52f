package atm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/hsm"
)

// Limits bound what a customer may take out at this terminal.
type Limits struct {
	Min      int64 // smallest amount, minor units
	Max      int64 // largest amount per transaction
	Multiple int64 // amounts must be a multiple of this (0: any)
	Daily    int64 // most cash this terminal pays out per day (0: no limit)
}

// Config is what the core needs; every dependency is injected.
type Config struct {
	TerminalID    string
	Location      string
	Currency      string // ISO 4217 numeric, e.g. "156"
	CurrencyAlpha string // e.g. "CNY"
	Exponent      int    // minor unit digits, e.g. 2
	SessionTTL    time.Duration
	TakeTimeout   time.Duration
	Limits        Limits
	Presets       []int64

	Store     *store.DB
	HSM       hsm.Module // holds hsm.QRMAC
	Dispenser Dispenser
	Host      Host
	Links     Links // optional

	// Clock is the core's one time source (now, session expiry, the
	// take-cash timer, the store-and-forward backoff). Give the store the
	// same clock. Nil means clock.Real.
	Clock  clock.Clock
	Logger *slog.Logger
	// DayZone is the time zone whose calendar day a withdrawal counts for
	// (the daily limit and the daily totals); nil means UTC. A withdrawal
	// counts for the day of its authorization request (the transmission
	// time of the 0200, field 7), as the host books it.
	DayZone *time.Location

	// Observer, when set, is told of every session state change once it
	// is committed (metrics). It runs on the goroutine that owns the
	// session and must not block.
	Observer func(Session)

	// SAFRetryMin and SAFRetryMax bound the store-and-forward backoff.
	SAFRetryMin, SAFRetryMax time.Duration
	// RefusalWindow is the window of the journal's refusal counting
	// (refusals.go); DefaultRefusalWindow when zero.
	RefusalWindow time.Duration
	// HostTimeout bounds one host request.
	HostTimeout time.Duration
	// MinFreeBytes is the free space the store's file system must keep;
	// below it the terminal is out of service ("disk_low").
	// DefaultMinFreeBytes when zero; negative: not checked.
	MinFreeBytes int64
	// FreeSpace reports the free bytes of the store's file system
	// (diskspace.Free of its directory when nil).
	FreeSpace func() (uint64, error)
}

func (c *Config) defaults() error {
	if c.TerminalID == "" || c.Currency == "" || c.CurrencyAlpha == "" {
		return errors.New("atm: TerminalID, Currency and CurrencyAlpha are required")
	}
	if c.Store == nil || c.HSM == nil || c.Dispenser == nil || c.Host == nil {
		return errors.New("atm: Store, HSM, Dispenser and Host are required")
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = 120 * time.Second
	}
	if c.TakeTimeout <= 0 {
		c.TakeTimeout = 30 * time.Second
	}
	c.Clock = clock.Or(c.Clock)
	if c.DayZone == nil {
		c.DayZone = time.UTC
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.RefusalWindow <= 0 {
		c.RefusalWindow = DefaultRefusalWindow
	}
	if c.SAFRetryMin <= 0 {
		c.SAFRetryMin = time.Second
	}
	if c.SAFRetryMax <= 0 {
		c.SAFRetryMax = 5 * time.Minute
	}
	if c.HostTimeout <= 0 {
		c.HostTimeout = 30 * time.Second
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
	if c.FreeSpace == nil {
		c.FreeSpace = defaultFreeSpace(c.Store)
	}
	if c.Limits.Max <= 0 {
		return errors.New("atm: Limits.Max must be positive")
	}
	return nil
}

// ErrBusy is returned when a withdrawal is requested while another session
// is still in progress.
var ErrBusy = errors.New("atm: a session is already in progress")

// ErrStorage is returned by Run when a state change could not be committed
// to bbolt. The core stops rather than go on with a session whose next step
// is not on disk: the appliance exits, its service manager restarts it, and
// Recover settles the session from the last committed state.
var ErrStorage = errors.New("atm: cannot commit a state change")

// CannotPayError says why an amount cannot be paid and which amounts can.
type CannotPayError struct {
	Reason  string  // "limit", "multiple", "daily_limit", "notes", "dispenser", "link"
	Nearest []int64 // payable amounts near the one asked for, ascending
}

func (e *CannotPayError) Error() string {
	return fmt.Sprintf("atm: amount cannot be paid (%s); nearest payable: %v", e.Reason, e.Nearest)
}

// View is what the core shows: the current (or last finished) session and
// whether the terminal is in service. The UI renders it.
type View struct {
	Session   *Session // nil when idle
	InService bool
	Reason    string // why out of service
}

// ATM is the appliance core. One goroutine (Run) owns the session state;
// everything else talks to it through events.
type ATM struct {
	cfg    Config
	log    *slog.Logger
	db     *store.DB
	events chan func(ctx context.Context)

	mu    sync.Mutex
	view  View
	units []dispenser.CashUnit // cash units as last reported (for the counters)
	// the dispenser status last read (statusLoop, recovery)
	status     dispenser.Status
	statusErr  error
	statusRead bool
	// statusAsked numbers the status requests; statusKept is the number
	// of the one cached: an answer to an older request never replaces a
	// newer one's (a poll that began before a replenishment's exchange
	// ended must not bring the old counts back).
	statusAsked, statusKept uint64
	changed                 chan struct{}

	// owned by the Run goroutine
	cur        *Session
	waiters    map[string][]chan Result
	takeGen    int                // generation of the running take-cash wait
	takeCancel context.CancelFunc // stops it (more time asked)
	safWake    chan struct{}
	statusWake chan struct{}
	linksWake  chan struct{} // LinksChanged: re-check the service on the owner goroutine
	// accepting is the session whose dispense command waits for the
	// dispenser's command nonce (acceptCommand); a repeat of it waits too.
	accepting string
	// acceptingFrom is the requester fingerprint of that command.
	acceptingFrom string
	bursts        map[string]*refusalBurst // open refusal windows by response code (refusals.go)
	// countersChecked: the start's counter comparison ran (counters.go);
	// countersDiffer: it found a difference no operator has resolved.
	countersChecked, countersDiffer bool
	// maintenance: an operator's device reset or replenishment is running
	// (maintenance.go, replenish.go).
	maintenance bool
	// operatorOut: an operator took the terminal out of service
	// (operatorservice.go); kept in the store across restarts.
	operatorOut bool

	// storageBad: a write failed and no probe write has succeeded since;
	// diskLow: free space below MinFreeBytes (storage.go; set by the status
	// loop, read by the owner).
	storageBad, diskLow atomic.Bool
	freeUnknownLogged   bool // status loop only
	runCtx              context.Context
	fatal               chan error
	// unrecovered counts in-flight sessions Recover could not settle yet
	// because the dispenser could not say what it did; the terminal stays
	// out of service and Run retries until it can.
	unrecovered int
	recovering  bool           // a recovery retry runs in the background
	bg          sync.WaitGroup // goroutines Run started
}

// New validates cfg and returns a core ready for Recover and Run.
func New(cfg Config) (*ATM, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	a := &ATM{
		cfg:        cfg,
		log:        cfg.Logger.With("terminal", cfg.TerminalID),
		db:         cfg.Store,
		events:     make(chan func(ctx context.Context), 64),
		changed:    make(chan struct{}, 1),
		waiters:    map[string][]chan Result{},
		bursts:     map[string]*refusalBurst{},
		safWake:    make(chan struct{}, 1),
		statusWake: make(chan struct{}, 1),
		linksWake:  make(chan struct{}, 1),
		fatal:      make(chan error, 1),
	}
	// Out of service until Run has recovered what a crash left and checked
	// the devices: a terminal that says "in service" before recovery could
	// be shut down again with a reversal still unqueued.
	a.view.Reason = "recovery"
	return a, nil
}

// now is the core's clock reading.
func (a *ATM) now() time.Time { return a.cfg.Clock.Now() }

// Day returns the calendar day (YYYY-MM-DD in Config.DayZone) that a
// withdrawal authorized at t counts for.
func (a *ATM) Day(t time.Time) string { return t.In(a.cfg.DayZone).Format(time.DateOnly) }

// DispenserStatus returns the dispenser status last read by the status
// loop (ok false before the first read or after a failed one).
func (a *ATM) DispenserStatus() (st dispenser.Status, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, a.statusRead && a.statusErr == nil
}

// Config returns the core's configuration (after defaults).
func (a *ATM) Config() Config { return a.cfg }

// Run owns the session state until ctx is done. It first recovers sessions
// left in flight by a crash, then serves customers, dispense commands and
// the store-and-forward queue. It returns ctx's error, or ErrStorage when a
// state change could not be committed.
func (a *ATM) Run(ctx context.Context) error {
	// Run returns only after every goroutine it started (device and host
	// steps, the status and store-and-forward loops) has ended.
	defer a.bg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.runCtx = ctx
	if err := a.loadOperatorOut(); err != nil {
		return err
	}
	if err := a.Recover(ctx); err != nil {
		return err
	}
	defer a.closeRefusalWindows(true) // the counts of open windows, at shutdown
	a.background(func() { a.safLoop(ctx) })
	a.background(func() { a.statusLoop(ctx) })
	a.refreshService(ctx)
	tick := a.cfg.Clock.NewTicker(time.Second)
	defer tick.Stop()
	for ticks := 1; ; ticks++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-a.fatal:
			return err
		case fn := <-a.events:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fn(ctx)
		case <-a.linksWake:
			a.refreshService(ctx)
		case <-tick.C():
			if a.unrecovered > 0 && ticks%5 == 0 && !a.recovering {
				a.retryRecovery(ctx)
			}
			a.checkExpiry(ctx)
			a.closeRefusalWindows(false)
		}
	}
}

// stop makes Run return err.
func (a *ATM) stop(err error) {
	select {
	case a.fatal <- err:
	default:
	}
}

// do runs fn on the owner goroutine and waits for it.
func (a *ATM) do(ctx context.Context, fn func(ctx context.Context)) error {
	done := make(chan struct{})
	select {
	case a.events <- func(c context.Context) { fn(c); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// baseCtx is the context of Run, or context.Background before Run started.
func (a *ATM) baseCtx() context.Context {
	if a.runCtx != nil {
		return a.runCtx
	}
	return context.Background()
}

// background runs fn in a goroutine that Run waits for before it returns.
func (a *ATM) background(fn func()) {
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		fn()
	}()
}

// post queues fn for the owner goroutine without waiting.
func (a *ATM) post(fn func(ctx context.Context)) {
	done := a.baseCtx().Done()
	go func() {
		select {
		case a.events <- fn:
		case <-done:
		}
	}()
}

// View returns a copy of what the screen should show.
func (a *ATM) View() View {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := a.view
	if v.Session != nil {
		s := *v.Session
		v.Session = &s
	}
	return v
}

// Changed receives a value whenever View changes.
func (a *ATM) Changed() <-chan struct{} { return a.changed }

func (a *ATM) publish() {
	a.mu.Lock()
	if a.cur != nil {
		s := *a.cur
		a.view.Session = &s
	}
	a.mu.Unlock()
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

func (a *ATM) setService(in bool, reason string) {
	a.mu.Lock()
	diff := a.view.InService != in || a.view.Reason != reason
	a.view.InService, a.view.Reason = in, reason
	a.mu.Unlock()
	if diff {
		if in {
			a.log.Info("in service")
		} else {
			a.log.Warn("out of service", "reason", reason)
		}
		a.publish()
	}
}

// refreshService puts the terminal out of service while the dispenser is not
// ready or a link is down, and back in service when all is well. It never
// interrupts a session in flight.
func (a *ATM) refreshService(ctx context.Context) {
	if a.cur != nil && !a.cur.State.Terminal() {
		return
	}
	if a.unrecovered == 0 {
		a.checkCountersOnce()
	}
	reason, _ := a.serviceProblem()
	a.setService(reason == "", reason)
}

// serviceProblem says why the terminal cannot serve a customer ("" when it
// can), with the dispenser status it used. It reads the cached status (see
// statusLoop): the owner goroutine never waits for a device.
func (a *ATM) serviceProblem() (string, dispenser.Status) {
	if a.unrecovered > 0 {
		return "recovery", dispenser.Status{}
	}
	if a.maintenance {
		return "maintenance", dispenser.Status{}
	}
	if a.operatorOut {
		return "operator", dispenser.Status{}
	}
	if a.countersDiffer {
		return "counters", dispenser.Status{}
	}
	if a.storageBad.Load() {
		return "storage", dispenser.Status{}
	}
	if a.diskLow.Load() {
		return "disk_low", dispenser.Status{}
	}
	if l := a.cfg.Links; l != nil && (!l.ProxyUp() || !l.HostUp()) {
		return "link", dispenser.Status{}
	}
	st, err := a.cachedStatus()
	if err != nil || !st.Ready() {
		return "dispenser", st
	}
	for _, u := range st.Units {
		if u.Usable() {
			return "", st
		}
	}
	return "dispenser", st
}

// errNoStatus: the dispenser has not answered a status request yet.
var errNoStatus = errors.New("atm: no dispenser status yet")

// cachedStatus returns the dispenser status last read by statusLoop (or by
// recovery at start).
func (a *ATM) cachedStatus() (dispenser.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.statusRead {
		return dispenser.Status{}, errNoStatus
	}
	return a.status, a.statusErr
}

// dispenserStatus asks the dispenser for its status and caches it; the
// cash units label the cassette counters. It waits for the device: only
// statusLoop and recovery call it, never the owner goroutine while it
// serves customers.
func (a *ATM) dispenserStatus(ctx context.Context) (dispenser.Status, error) {
	sctx, cancel := context.WithTimeout(ctx, StatusTimeout)
	defer cancel()
	a.mu.Lock()
	a.statusAsked++
	n := a.statusAsked
	a.mu.Unlock()
	st, err := a.cfg.Dispenser.Status(sctx)
	a.mu.Lock()
	if n > a.statusKept {
		a.statusKept = n
		a.statusRead, a.status, a.statusErr = true, st, err
		if err == nil {
			a.units = st.Units
		}
	}
	a.mu.Unlock()
	return st, err
}

// StatusInterval is how often the core asks the dispenser for its status;
// StatusTimeout bounds one request.
const (
	StatusInterval = time.Second
	StatusTimeout  = 5 * time.Second
)

// statusLoop keeps the cached dispenser status fresh, in its own goroutine:
// a slow or faulted device (an XFS4IoT or serial dispenser can take
// seconds to answer) delays only this loop, never a customer's cancel, a
// command's refusal or the screen. One request is in flight at a time.
// After each read the owner re-checks whether the terminal can serve.
func (a *ATM) statusLoop(ctx context.Context) {
	tick := a.cfg.Clock.NewTicker(StatusInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
		case <-a.statusWake:
		}
		if _, err := a.dispenserStatus(ctx); err != nil && ctx.Err() == nil {
			a.log.Debug("dispenser status", "err", err)
		}
		a.checkStorage()
		a.post(func(ctx context.Context) { a.refreshService(ctx) })
	}
}

// LinksChanged tells the core that a link went up or down (the proxy
// signed on, the host link connected, either dropped), so that it goes in
// or out of service now rather than at the next status tick. It does not
// block; the links are read again on the owner goroutine.
func (a *ATM) LinksChanged() {
	select {
	case a.linksWake <- struct{}{}:
	default: // a re-check is already due; it reads the links then
	}
}

// wakeStatus asks statusLoop for a fresh status now (after a session, whose
// notes changed the cassettes).
func (a *ATM) wakeStatus() {
	select {
	case a.statusWake <- struct{}{}:
	default:
	}
}

// cashUnits returns the cash units last reported by the dispenser.
func (a *ATM) cashUnits() []dispenser.CashUnit {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.units
}

// Supervisor returns what the supervisor screen shows: counters, cassette
// counters and the last journal lines.
func (a *ATM) Supervisor(n int) (units []store.UnitCounters, journal []store.Entry, queued int, err error) {
	err = a.db.View(func(tx *store.Tx) error {
		var e error
		if units, e = tx.UnitCounters(); e != nil {
			return e
		}
		if journal, e = tx.JournalTail(n); e != nil {
			return e
		}
		queued, e = tx.QueueLen()
		return e
	})
	return
}
