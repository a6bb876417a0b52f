package appliance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/operators"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/ui"
)

// Backend adapts the core to the screens' ui.Backend: the core never
// depends on the UI, the UI never imports the core.
type Backend struct {
	core *atm.ATM
	cfg  atm.Config
	// Operators check the supervisor screen's login (ui.OperatorLogin);
	// nil refuses every login.
	Operators *operators.File

	// The receipt printer (nil: none), the store its receipts are
	// journaled in and the zone of the receipt's time (printer.go).
	printer *receiptPrinter
	alarms  *alarmer // the standing alarms, shown on the supervisor screen
	store   *store.DB
	zone    *time.Location

	mu   sync.Mutex
	subs []chan struct{}
	ui   chan struct{}
}

// NewBackend wraps core.
func NewBackend(core *atm.ATM) *Backend {
	b := &Backend{core: core, cfg: core.Config()}
	b.ui = b.Subscribe()
	return b
}

var (
	_ ui.Backend       = (*Backend)(nil)
	_ ui.OperatorLogin = (*Backend)(nil)
)

// OperatorLogin checks an operator's ID and PIN for the supervisor screen
// against the same credentials as the control endpoint's operator routes
// (failures count towards the same lockout).
func (b *Backend) OperatorLogin(id, pin string) error {
	if b.Operators == nil {
		return operators.ErrNone
	}
	err := b.Operators.Check(id, pin)
	if errors.Is(err, operators.ErrLocked) {
		return fmt.Errorf("%w: %w", ui.ErrLoginLocked, err)
	}
	return err
}

// notify wakes every subscriber.
func (b *Backend) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range b.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Changed is the screens' change notification.
func (b *Backend) Changed() <-chan struct{} { return b.ui }

// Subscribe returns another change notification channel (capacity 1), for
// a second consumer such as the headless screen writer.
func (b *Backend) Subscribe() chan struct{} {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	b.subs = append(b.subs, ch)
	b.mu.Unlock()
	return ch
}

// fanOut passes the core's change notifications to every subscriber until
// ctx is done.
func (b *Backend) fanOut(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.core.Changed():
			b.notify()
		}
	}
}

// Snapshot maps the core's view to what the screens show.
func (b *Backend) Snapshot() ui.Snapshot {
	v := b.core.View()
	c := b.cfg
	snap := ui.Snapshot{Currency: c.CurrencyAlpha, Exponent: c.Exponent, TerminalID: c.TerminalID, Location: c.Location,
		Presets: c.Presets, MinAmount: c.Limits.Min, MaxAmount: c.Limits.Max, Multiple: c.Limits.Multiple}
	s := v.Session
	if !v.InService && (s == nil || s.State.Terminal()) {
		snap.Phase, snap.ReasonCode = ui.OutOfService, v.Reason
		return snap
	}
	if s == nil {
		return snap // Idle
	}
	snap.Amount = s.Amount
	switch s.State {
	case atm.StateAwaitingPhone:
		snap.Phase, snap.QRPayload, snap.Deadline = ui.AwaitingPhone, s.QR, s.Expires
	case atm.StateAuthorizing, atm.StateDispensing, atm.StatePresenting, atm.StateRetracting:
		snap.Phase = ui.Processing
	case atm.StateAwaitingTake:
		snap.Phase, snap.Deadline = ui.TakeCash, s.TakeDeadline
		snap.Amount = s.Dispensed
	case atm.StateCompleted:
		snap.Phase, snap.Amount = ui.Complete, s.Paid
		snap.Receipt = b.receiptReady()
	case atm.StateDeclined:
		snap.Phase, snap.ReasonCode = ui.Declined, s.ResponseCode
	case atm.StateCancelled:
		snap.Phase = ui.Idle
	case atm.StateExpired:
		snap.Phase, snap.ReasonCode = ui.Failed, "expired"
	case atm.StateRetracted:
		snap.Phase, snap.ReasonCode = ui.Failed, "retracted"
	default: // Failed, InDoubt
		snap.Phase, snap.ReasonCode = ui.Failed, failReason(s)
	}
	return snap
}

func failReason(s *atm.Session) string {
	switch {
	case s.Reason == "host_unavailable" || s.Reason == "host_unknown":
		return "link"
	default:
		return "dispenser"
	}
}

func (b *Backend) RequestWithdrawal(amount int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err := b.core.RequestWithdrawal(ctx, amount)
	var cp *atm.CannotPayError
	if errors.As(err, &cp) {
		reason := cp.Reason
		if reason == "daily_limit" {
			reason = "limit" // the screens explain limits in one message
		}
		return &ui.CannotPayError{Reason: reason, Nearest: cp.Nearest}
	}
	return err
}

func (b *Backend) Cancel() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if v := b.core.View(); v.Session != nil && v.Session.State.Terminal() {
		_ = b.core.Dismiss(ctx)
		return
	}
	_ = b.core.Cancel(ctx)
}

func (b *Backend) MoreTime() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.core.MoreTime(ctx)
}

func (b *Backend) Supervisor() ui.SupervisorInfo {
	units, journal, queued, err := b.core.Supervisor(12)
	v := b.core.View()
	info := ui.SupervisorInfo{Counters: map[string]int64{"saf_pending": int64(queued)}}
	info.Lines = append(info.Lines, fmt.Sprintf("terminal %s  in service: %v %s", b.cfg.TerminalID, v.InService, v.Reason))
	if b.alarms != nil {
		for _, a := range b.alarms.Active() {
			info.Lines = append(info.Lines, "ALARM: "+a)
		}
	}
	if err != nil {
		info.Lines = append(info.Lines, "store: "+err.Error())
	}
	for _, u := range units {
		info.Units = append(info.Units, ui.UnitInfo{ID: u.UnitID, Currency: u.Currency, Denom: u.Denomination,
			Count: int(u.Remaining), Dispensed: int(u.Dispensed), Rejected: int(u.Rejected), Retracted: int(u.Retracted)})
	}
	for _, e := range journal {
		info.Journal = append(info.Journal, fmt.Sprintf("%s %06d %s %s", e.Time.Format("15:04:05"), e.Seq, e.Kind, e.Text))
	}
	return info
}
