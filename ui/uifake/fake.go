// Package uifake is an in-memory ui.Backend for tests, screenshots and
// demos, in the net/http/httptest tradition. It behaves like a small ATM
// core: RequestWithdrawal validates limits and note availability, creates a
// QR payload (in the format of atm/qr) and moves to AwaitingPhone; tests
// move the phases on with SetPhase.
package uifake

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cardless-atm/cardless/atm/qr"
	"github.com/cardless-atm/cardless/ui"
)

// The fake has no MAC key: its QR payloads carry a fixed nonce and MAC, so
// they parse (atm/qr.Parse) but do not verify.
const (
	// FakeRRN is the host's reference of the fake's outcomes.
	FakeRRN   = "512345678901"
	fakeNonce = "0123456789ABCDEF0123456789ABCDEF"
	fakeMAC   = "5A3C9F015A3C9F01"
)

// Backend is a fake ui.Backend. The zero value is not usable; call New.
type Backend struct {
	mu        sync.Mutex
	snap      ui.Snapshot
	changed   chan struct{}
	now       func() time.Time
	sup       ui.SupervisorInfo
	requested []int64
	cancels   int
	moreTimes int
	receipts  int
	calls     []string
	holds     map[string]*Hold

	// QRTimeout and TakeTimeout are the phase lengths (defaults 60 s, 30 s).
	QRTimeout, TakeTimeout time.Duration
	// Extend is how much MoreTime adds (default 30 s).
	Extend time.Duration
	// Payable, when set, decides whether an amount can be paid; it returns a
	// reason key and the nearest payable amounts when it cannot.
	Payable func(amount int64) (ok bool, reason string, nearest []int64)
	// RequestErr, when set, is returned by RequestWithdrawal as is.
	RequestErr  error
	receiptLang string // the language of the last PrintReceipt
	// PrintErr, when set, is returned by PrintReceipt (a printer fault).
	PrintErr error
	// Operators are the operator IDs and PINs OperatorLogin accepts
	// (New sets "1001": "271828"); LockedOperator, when set, is refused
	// with ui.ErrLoginLocked whatever its PIN.
	Operators      map[string]string
	LockedOperator string

	// InDoubtList and BalanceLines are what InDoubt and Balance answer
	// (New sets one session in doubt and a day with one difference).
	InDoubtList  []ui.InDoubtInfo
	BalanceLines []ui.BalanceLine
	printed      [][]string
}

// Hold blocks the calls of one Backend method, as a slow core or device
// would, until it is released.
type Hold struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

// Entered receives once for each call that reached the hold.
func (h *Hold) Entered() <-chan struct{} { return h.entered }

// Release lets the held calls, and every later one, go on. It may be
// called more than once.
func (h *Hold) Release() { h.once.Do(func() { close(h.release) }) }

// Hold makes every later call of method ("RequestWithdrawal", "Cancel",
// "MoreTime", "Supervisor", "PrintReceipt", "OperatorLogin" or one of
// ui.Operations) wait, once recorded, until the
// returned Hold is released. It panics on another name.
func (b *Backend) Hold(method string) *Hold {
	switch method {
	case "RequestWithdrawal", "Cancel", "MoreTime", "Supervisor", "PrintReceipt", "OperatorLogin",
		"SetInService", "InDoubt", "Settle", "Replenish", "Balance", "Journal", "PrintReport", "TestDevices":
	default:
		panic("uifake: Hold of unknown method " + method)
	}
	h := &Hold{entered: make(chan struct{}, 64), release: make(chan struct{})}
	b.mu.Lock()
	if b.holds == nil {
		b.holds = map[string]*Hold{}
	}
	b.holds[method] = h
	b.mu.Unlock()
	return h
}

// enter records a call (but Supervisor's, which the screens poll) and
// waits while method is held.
func (b *Backend) enter(method, call string) {
	b.mu.Lock()
	if method != "Supervisor" {
		b.calls = append(b.calls, call)
	}
	h := b.holds[method]
	b.mu.Unlock()
	if h == nil {
		return
	}
	select {
	case h.entered <- struct{}{}:
	default:
	}
	<-h.release
}

// Calls returns the calls made so far, in order, as
// "RequestWithdrawal(30000)", "Cancel", "MoreTime" and "PrintReceipt"
// (Supervisor, Snapshot and Changed, which are polled, are not recorded).
func (b *Backend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// New returns a fake with CNY presets, limits 100–5,000 yuan in multiples of
// 100, terminal "ATM00042" and the given clock (time.Now when nil).
func New(clock func() time.Time) *Backend {
	if clock == nil {
		clock = time.Now
	}
	b := &Backend{
		changed:     make(chan struct{}, 1),
		now:         clock,
		QRTimeout:   60 * time.Second,
		TakeTimeout: 30 * time.Second,
		Extend:      30 * time.Second,
		Operators:   map[string]string{"1001": "271828"},
	}
	b.snap = ui.Snapshot{
		Phase:      ui.Idle,
		Currency:   "CNY",
		Exponent:   2,
		TerminalID: "ATM00042",
		Location:   "Branch 7, 88 Century Avenue, Shanghai",
		Receipt:    true,
		Presets:    []int64{10000, 30000, 50000, 100000, 200000, 300000},
		MinAmount:  10000,
		MaxAmount:  500000,
		Multiple:   10000,
	}
	at := func(clock string) time.Time {
		t, _ := time.Parse(time.TimeOnly, clock)
		return t
	}
	b.sup = ui.SupervisorInfo{
		InService: true,
		Devices:   []ui.DeviceInfo{{Name: "dispenser", State: "online"}, {Name: "printer", State: "paperLow"}, {Name: "proxy", State: "up"}, {Name: "host", State: "up"}},
		Alarms:    []string{"cash_low:CASS2", "printer_paper_low"},
		Units: []ui.UnitInfo{
			{ID: "CASS1", Currency: "CNY", Denom: 10000, Count: 1850, Dispensed: 150, Status: "OK"},
			{ID: "CASS2", Currency: "CNY", Denom: 5000, Count: 12, Dispensed: 488, Rejected: 3, Status: "LOW"},
		},
		Queued: 1,
		Journal: []ui.JournalLine{
			{Time: at("09:14:02"), Seq: 40, Kind: "SESSION CREATED", Session: fakeNonce[:8]},
			{Time: at("09:14:31"), Seq: 41, Kind: "CASH PRESENTED", Session: fakeNonce[:8]},
			{Time: at("09:14:38"), Seq: 42, Kind: "CASH TAKEN", Session: fakeNonce[:8]},
		},
	}
	b.InDoubtList = []ui.InDoubtInfo{{Session: "9F3C5A7E0123456789ABCDEF01234567", Time: at("08:52:10").AddDate(2025, 2, 13), Amount: 80000, Reason: "count_unknown"}}
	b.BalanceLines = []ui.BalanceLine{
		{Item: "approved_count", ATM: 42, Host: 42},
		{Item: "approved_amount", ATM: 1850000, Host: 1850000, Money: true},
		{Item: "reversal_count", ATM: 2, Host: 1},
		{Item: "reversal_amount", ATM: 70000, Host: 50000, Money: true},
		{Item: "net_debit", ATM: 1780000, Host: 1800000, Money: true},
	}
	return b
}

func (b *Backend) notify() {
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

// Snapshot implements ui.Backend.
func (b *Backend) Snapshot() ui.Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.snap
	s.Presets = slices.Clone(s.Presets)
	return s
}

// Changed implements ui.Backend.
func (b *Backend) Changed() <-chan struct{} { return b.changed }

// RequestWithdrawal implements ui.Backend.
func (b *Backend) RequestWithdrawal(amount int64) error {
	b.enter("RequestWithdrawal", fmt.Sprintf("RequestWithdrawal(%d)", amount))
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requested = append(b.requested, amount)
	if b.RequestErr != nil {
		return b.RequestErr
	}
	if b.snap.Phase != ui.Idle {
		return fmt.Errorf("uifake: session already in phase %s", b.snap.Phase)
	}
	if b.Payable != nil {
		if ok, reason, nearest := b.Payable(amount); !ok {
			return &ui.CannotPayError{Reason: reason, Nearest: nearest}
		}
	} else if amount < b.snap.MinAmount || amount > b.snap.MaxAmount || amount%b.snap.Multiple != 0 {
		return &ui.CannotPayError{Reason: "limit"}
	}
	b.snap.Phase = ui.AwaitingPhone
	b.snap.Amount = amount
	b.snap.ReasonCode = ""
	b.snap.Deadline = b.now().Add(b.QRTimeout)
	b.snap.QRPayload = b.payload()
	b.snap.CanExtend = true
	b.notify()
	return nil
}

// payload is the QR text of the current session in the format of atm/qr
// (currency 156 is CNY), with the fake's fixed nonce and MAC.
func (b *Backend) payload() string {
	return qr.Payload{
		TerminalID: b.snap.TerminalID,
		Amount:     b.snap.Amount,
		Currency:   "156",
		Nonce:      fakeNonce,
		Expiry:     b.snap.Deadline,
		MAC:        fakeMAC,
	}.String()
}

// Cancel implements ui.Backend: it ends the session and returns to Idle.
func (b *Backend) Cancel() {
	b.enter("Cancel", "Cancel")
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cancels++
	if b.snap.Phase == ui.OutOfService {
		return
	}
	b.reset()
	b.notify()
}

func (b *Backend) reset() {
	b.snap.Phase = ui.Idle
	b.snap.Amount = 0
	b.snap.QRPayload = ""
	b.snap.Deadline = time.Time{}
	b.snap.ReasonCode = ""
	b.snap.CanExtend = false
	b.snap.Account, b.snap.RRN, b.snap.SessionRef = ui.AccountUnknown, "", ""
}

// MoreTime implements ui.Backend: it extends the deadline of a timed
// phase; like the core, the take-cash time only once.
func (b *Backend) MoreTime() {
	b.enter("MoreTime", "MoreTime")
	b.mu.Lock()
	defer b.mu.Unlock()
	b.moreTimes++
	if !b.snap.Deadline.IsZero() && b.snap.CanExtend {
		b.snap.Deadline = b.now().Add(b.Extend)
		b.snap.CanExtend = b.snap.Phase == ui.AwaitingPhone
		b.notify()
	}
}

// Supervisor implements ui.Backend.
func (b *Backend) Supervisor() ui.SupervisorInfo {
	b.enter("Supervisor", "Supervisor")
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sup
}

// PrintReceipt implements ui.ReceiptPrinter.
func (b *Backend) PrintReceipt(lang string) error {
	b.enter("PrintReceipt", "PrintReceipt")
	b.mu.Lock()
	b.receiptLang = lang
	b.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.receipts++
	return b.PrintErr
}

// OperatorLogin implements ui.OperatorLogin; the call is recorded as
// "OperatorLogin(ID)", never with the PIN.
func (b *Backend) OperatorLogin(id, pin string) error {
	b.enter("OperatorLogin", "OperatorLogin("+id+")")
	b.mu.Lock()
	defer b.mu.Unlock()
	if id == b.LockedOperator {
		return fmt.Errorf("uifake: %w", ui.ErrLoginLocked)
	}
	if want, ok := b.Operators[id]; !ok || want != pin {
		return errors.New("uifake: operator ID or PIN not accepted")
	}
	return nil
}

// SetPhase moves the fake to phase p with reason code (for Declined/Failed),
// setting a deadline for the timed phases, and signals Changed.
func (b *Backend) SetPhase(p ui.Phase, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p == ui.Idle {
		b.reset()
		b.notify()
		return
	}
	if b.snap.Amount == 0 {
		b.snap.Amount = 50000
	}
	b.snap.Phase = p
	b.snap.ReasonCode = reason
	b.snap.CanExtend = p == ui.AwaitingPhone || p == ui.TakeCash
	b.snap.Account, b.snap.RRN, b.snap.SessionRef = ui.AccountUnknown, "", ""
	switch p {
	case ui.AwaitingPhone:
		b.snap.Deadline = b.now().Add(b.QRTimeout)
		if b.snap.QRPayload == "" {
			b.snap.QRPayload = b.payload()
		}
	case ui.TakeCash:
		b.snap.Deadline = b.now().Add(b.TakeTimeout)
	default:
		b.snap.Deadline = time.Time{}
	}
	// The outcomes, as the core reports them (tests change them with Update).
	switch {
	case p == ui.Complete:
		b.snap.Account, b.snap.RRN = ui.AccountCharged, FakeRRN
	case p == ui.Declined:
		b.snap.Account, b.snap.RRN = ui.AccountNotCharged, FakeRRN
	case p == ui.Failed && reason == "count":
		b.snap.Account, b.snap.SessionRef = ui.AccountChecking, fakeNonce[:8]
	case p == ui.Failed:
		b.snap.Account, b.snap.SessionRef = ui.AccountReversed, fakeNonce[:8]
	}
	b.notify()
}

// Update lets a test change any snapshot field, then signals Changed.
func (b *Backend) Update(f func(*ui.Snapshot)) {
	b.mu.Lock()
	f(&b.snap)
	b.mu.Unlock()
	b.notify()
}

// Requested returns the amounts passed to RequestWithdrawal so far.
func (b *Backend) Requested() []int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.requested)
}

// Counts returns how often Cancel, MoreTime and PrintReceipt were called.
func (b *Backend) Counts() (cancels, moreTimes, receipts int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cancels, b.moreTimes, b.receipts
}

// ReceiptLang returns the language the last receipt was asked in.
func (b *Backend) ReceiptLang() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.receiptLang
}

// SetTap makes the terminal contactless and shows st as the last tap's
// outcome (ui.Snapshot.Contactless, Tap).
func (b *Backend) SetTap(st ui.TapState) {
	b.mu.Lock()
	b.snap.Contactless, b.snap.Tap = true, st
	b.mu.Unlock()
	b.notify()
}
