package appliance

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
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
	// exportDir (journal.exportDir) also receives the replenishment
	// reports ("" none).
	exportDir string

	// contactless: an NFC reader is wired (the QR screen offers a tap);
	// tap is the last tap's outcome (nfc.go).
	contactless bool
	tap         tapNotice

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
	if s != nil && s.State.Terminal() && s.State != atm.StateCancelled {
		// A finished session keeps its outcome screen until the customer
		// (or its time-out) dismisses it, even when the terminal went out
		// of service with it: the customer must learn what happens to
		// their money before "out of service".
		outcome(&snap, s)
		snap.Receipt = snap.Phase == ui.Complete && b.receiptReady()
		return snap
	}
	idle := s == nil || s.State == atm.StateCancelled
	b.mu.Lock()
	snap.Contactless = b.contactless
	b.mu.Unlock()
	if idle {
		snap.Tap = b.tapFor("")
	}
	if !v.InService && idle {
		snap.Phase, snap.ReasonCode = ui.OutOfService, v.Reason
		return snap
	}
	if idle {
		// Idle: offer only what the cassettes can pay now.
		if ok, largest, known := b.core.Payable(c.Presets); known {
			snap.Presets = ok
			if largest > 0 && largest < snap.MaxAmount {
				snap.MaxAmount = largest
			}
		}
		return snap
	}
	snap.Amount = s.Amount
	switch s.State {
	case atm.StateAwaitingPhone:
		snap.Phase, snap.QRPayload, snap.Deadline, snap.CanExtend = ui.AwaitingPhone, s.QR, s.Expires, true
		snap.Tap = b.tapFor(s.ID)
	case atm.StateAwaitingTake:
		snap.Phase, snap.Deadline, snap.CanExtend = ui.TakeCash, s.TakeDeadline, !s.TakeExtended
		snap.Amount = s.Dispensed
	default: // authorizing, dispensing, presenting, retracting
		snap.Phase = ui.Processing
	}
	return snap
}

// outcome fills snap with finished session s: the screen, the reason, the
// reference and what happens to the customer's account.
func outcome(snap *ui.Snapshot, s *atm.Session) {
	snap.Amount, snap.RRN, snap.SessionRef = s.Amount, s.RRN, shortRef(s.ID)
	switch s.State {
	case atm.StateCompleted:
		snap.Phase, snap.Amount, snap.Account = ui.Complete, s.Paid, ui.AccountCharged
	case atm.StateDeclined:
		snap.Phase, snap.ReasonCode, snap.Account = ui.Declined, s.ResponseCode, ui.AccountNotCharged
	case atm.StateExpired:
		snap.Phase, snap.ReasonCode, snap.Account = ui.Failed, "expired", ui.AccountNotCharged
	case atm.StateRetracted:
		snap.Phase, snap.ReasonCode, snap.Account = ui.Failed, "retracted", ui.AccountReversed
	case atm.StateInDoubt:
		snap.Phase, snap.ReasonCode, snap.Account = ui.Failed, failReason(s), ui.AccountChecking
	default: // Failed
		snap.Phase, snap.ReasonCode = ui.Failed, failReason(s)
		switch {
		case s.Paid > 0:
			// Part of the cash reached the customer: only that is charged.
			snap.Amount, snap.Account = s.Paid, ui.AccountCharged
		case s.Reason == "host_unavailable":
			snap.Account = ui.AccountNotCharged // nothing reached the host
		default:
			snap.Account = ui.AccountReversed
		}
	}
}

// shortRef is the session reference shown to the customer: the first 8
// digits of its ID, which /operator/settle and atmctl accept.
func shortRef(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func failReason(s *atm.Session) string {
	switch {
	case s.Reason == "host_unavailable" || s.Reason == "host_unknown":
		return "link"
	case s.Reason == "count_unknown" || s.Reason == "retract_failed":
		return "count"
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
	info := ui.SupervisorInfo{InService: v.InService, Reason: v.Reason, Queued: queued}
	if b.alarms != nil {
		info.Alarms = b.alarms.Active()
	}
	if err != nil {
		info.StoreErr = err.Error()
	}
	info.Devices = append(info.Devices, ui.DeviceInfo{Name: "dispenser", State: "unknown"})
	if st, ok := b.core.DispenserStatus(); ok {
		info.Devices[0].State = st.Device.String()
	}
	if b.printer != nil {
		d := ui.DeviceInfo{Name: "printer", State: "unknown"}
		if st, ok := b.printer.status(); ok {
			switch {
			case !st.Online:
				d.State = "offline"
			case st.PaperOut:
				d.State = "paperOut"
			case st.PaperLow:
				d.State = "paperLow"
			default:
				d.State = "online"
			}
		}
		info.Devices = append(info.Devices, d)
	}
	if l := b.cfg.Links; l != nil {
		for name, up := range map[string]bool{"proxy": l.ProxyUp(), "host": l.HostUp()} {
			state := "down"
			if up {
				state = "up"
			}
			info.Devices = append(info.Devices, ui.DeviceInfo{Name: name, State: state})
		}
		slices.SortFunc(info.Devices[len(info.Devices)-2:], func(x, y ui.DeviceInfo) int { return cmp.Compare(y.Name, x.Name) })
	}
	for _, u := range units {
		info.Units = append(info.Units, ui.UnitInfo{ID: u.UnitID, Currency: u.Currency, Denom: u.Denomination,
			Count: int(u.Remaining), Dispensed: int(u.Dispensed), Rejected: int(u.Rejected), Retracted: int(u.Retracted)})
	}
	for _, e := range journal {
		info.Journal = append(info.Journal, ui.JournalLine{Time: e.Time.In(b.cfg.DayZone), Seq: e.Seq, Kind: e.Kind, Session: shortRef(e.SessionID)})
	}
	return info
}
