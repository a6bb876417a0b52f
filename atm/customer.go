package atm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/qr"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/hsm"
)

// RequestWithdrawal is step A and the fault check: the customer asked for
// amount. It checks the dispenser, the notes and the limits; if the amount
// can be paid it creates the session, commits it to bbolt and only then
// makes the QR (step B). A *CannotPayError says why not and which amounts can.
func (a *ATM) RequestWithdrawal(ctx context.Context, amount int64) (*Session, error) {
	var (
		out *Session
		err error
	)
	if e := a.do(ctx, func(ctx context.Context) { out, err = a.startSession(ctx, amount) }); e != nil {
		return nil, e
	}
	return out, err
}

// Cancel ends the session waiting for the phone. Once a dispense command has
// been accepted, the customer can no longer cancel.
func (a *ATM) Cancel(ctx context.Context) error {
	return a.do(ctx, func(ctx context.Context) { a.endWaiting(EvCancel, "CUSTOMER CANCELLED") })
}

// MoreTime gives the customer more time on the current timed screen: on the
// QR screen a fresh session lifetime (a new expiry written to bbolt and a
// new QR, same nonce, new MAC); on the take-cash screen one more take-cash
// period, once.
func (a *ATM) MoreTime(ctx context.Context) error {
	var err error
	if e := a.do(ctx, func(ctx context.Context) { err = a.extend() }); e != nil {
		return e
	}
	return err
}

// Dismiss clears a finished session from the screen.
func (a *ATM) Dismiss(ctx context.Context) error {
	return a.do(ctx, func(ctx context.Context) {
		if a.cur != nil && a.cur.State.Terminal() {
			a.cur = nil
			a.mu.Lock()
			a.view.Session = nil
			a.mu.Unlock()
			a.publish()
		}
	})
}

func (a *ATM) startSession(ctx context.Context, amount int64) (*Session, error) {
	if a.cur != nil && !a.cur.State.Terminal() {
		return nil, ErrBusy
	}
	reason, st := a.serviceProblem()
	if reason != "" {
		a.setService(false, reason)
		return nil, &CannotPayError{Reason: reason}
	}
	mix, cerr := a.checkAmount(amount, st)
	if cerr != nil {
		a.log.Info("amount refused", "amount", amount, "reason", cerr.Reason, "nearest", cerr.Nearest)
		return nil, cerr
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("atm: nonce: %w", err)
	}
	now := a.now().UTC()
	s := &Session{
		ID:         strings.ToUpper(hex.EncodeToString(nonce)),
		TerminalID: a.cfg.TerminalID,
		Amount:     amount,
		Currency:   a.cfg.Currency,
		Created:    now,
		Expires:    now.Add(a.cfg.SessionTTL).Truncate(time.Second),
	}
	var err error
	if s.QR, err = a.signQR(s); err != nil {
		return nil, err
	}
	next, _ := Next(StateNone, EvSessionCreated)
	s.State, s.Updated, s.Mix = next, now, mix
	// The nonce is registered as used and the session written in the same
	// transaction, before the QR reaches the screen.
	err = a.write(s, change{
		kind:  "SESSION CREATED",
		text:  fmt.Sprintf("QR session for %d, expires %s", amount, s.Expires.Format(time.RFC3339)),
		extra: func(tx *store.Tx, s *Session) error { return tx.UseNonce(s.ID) },
	})
	if err != nil {
		a.storageFailed(err)
		a.setService(false, "storage")
		return nil, fmt.Errorf("atm: cannot store session: %w", err)
	}
	a.cur = s
	a.publish()
	a.log.Info("session created", "session", short(s.ID), "amount", amount, "expires", s.Expires)
	cp := *s
	return &cp, nil
}

// signQR makes the QR payload of s with the terminal's QR MAC key.
func (a *ATM) signQR(s *Session) (string, error) {
	p := qr.Payload{TerminalID: s.TerminalID, Amount: s.Amount, Currency: s.Currency, Nonce: s.ID, Expiry: s.Expires}
	return qr.Sign(&p, a.qrMAC)
}

func (a *ATM) qrMAC(data []byte) ([]byte, error) {
	return a.cfg.HSM.GenerateMAC(hsm.QRMAC, data, hsm.PaddingMethod2)
}

// checkAmount is the fault check: limits, then whether the notes in the
// cassettes can make the amount within the dispenser's note limit. It
// returns the notes to dispense.
func (a *ATM) checkAmount(amount int64, st dispenser.Status) (dispenser.Mix, *CannotPayError) {
	l := a.cfg.Limits
	nearest := func() []int64 {
		return dispenser.NearestWithin(amount, st.Units, st.MaxNotes, 2, dispenser.Bounds{Min: l.Min, Max: l.Max, Multiple: l.Multiple})
	}
	switch {
	case amount <= 0 || amount < l.Min || amount > l.Max:
		return nil, &CannotPayError{Reason: "limit", Nearest: a.payable(nearest())}
	case l.Multiple > 0 && amount%l.Multiple != 0:
		return nil, &CannotPayError{Reason: "multiple", Nearest: a.payable(nearest())}
	}
	if l.Daily > 0 {
		var total int64
		err := a.db.View(func(tx *store.Tx) error {
			var err error
			total, err = tx.DailyTotal(a.Day(a.now()))
			return err
		})
		if err != nil {
			// Fail closed: a total that cannot be read is not taken as 0.
			a.log.Error("cannot read today's total for the daily limit", "err", err)
			return nil, &CannotPayError{Reason: "daily_limit"}
		}
		if total+amount > l.Daily {
			return nil, &CannotPayError{Reason: "daily_limit"}
		}
	}
	mix, err := dispenser.Denominate(amount, st.Units, st.MaxNotes)
	if err != nil {
		return nil, &CannotPayError{Reason: "notes", Nearest: a.payable(nearest())}
	}
	return mix, nil
}

// payable keeps the suggestions that also pass the limits.
func (a *ATM) payable(in []int64) []int64 {
	l := a.cfg.Limits
	var out []int64
	for _, v := range in {
		if v >= l.Min && v <= l.Max && (l.Multiple == 0 || v%l.Multiple == 0) {
			out = append(out, v)
		}
	}
	return out
}

// endWaiting ends a session still waiting for the phone (cancel or expiry).
func (a *ATM) endWaiting(ev Event, kind string) {
	s := a.cur
	if s == nil || s.State != StateAwaitingPhone {
		return
	}
	if err := a.commit(s, change{ev: ev, kind: kind}); err != nil {
		a.log.Error("cannot end session", "err", err)
		return
	}
	a.log.Info("session ended", "session", short(s.ID), "state", s.State)
	a.finish(s)
}

func (a *ATM) checkExpiry(context.Context) {
	if s := a.cur; s != nil && s.State == StateAwaitingPhone && !a.now().Before(s.Expires) {
		a.endWaiting(EvExpire, "SESSION EXPIRED")
	}
}

func (a *ATM) extend() error {
	s := a.cur
	if s != nil && s.State == StateAwaitingTake {
		return a.extendTake(s)
	}
	if s == nil || s.State != StateAwaitingPhone {
		return errors.New("atm: no session waiting for the phone or the customer")
	}
	ns := *s
	ns.Expires = a.now().UTC().Add(a.cfg.SessionTTL).Truncate(time.Second)
	q, err := a.signQR(&ns)
	if err != nil {
		return err
	}
	ns.QR = q
	if err := a.write(&ns, change{kind: "MORE TIME", text: "customer asked for more time; new expiry " + ns.Expires.Format(time.RFC3339)}); err != nil {
		return err
	}
	*s = ns
	a.publish()
	return nil
}

// finish publishes a session that reached a terminal state and answers
// every dispense command waiting for it.
func (a *ATM) finish(s *Session) {
	a.publish()
	a.answer(s.ID, s.result())
	if s.State == StateCompleted || s.State == StateRetracted || s.State == StateFailed {
		a.wakeSAF()
	}
	a.wakeStatus()
}

// Payable tells the screens what the cassettes can pay now within the
// limits, from the dispenser status last read (it never waits for the
// device): the amounts of in that can be paid, in their order, and the
// largest payable amount. known is false while the dispenser has not
// reported a usable status; the screens then keep the configured offer and
// the request itself says what cannot be paid.
func (a *ATM) Payable(in []int64) (ok []int64, largest int64, known bool) {
	st, err := a.cachedStatus()
	if err != nil || !st.Ready() {
		return nil, 0, false
	}
	l := a.cfg.Limits
	for _, v := range a.payable(in) {
		if _, err := dispenser.Denominate(v, st.Units, st.MaxNotes); err == nil {
			ok = append(ok, v)
		}
	}
	if l.Max > 0 {
		if top := dispenser.NearestWithin(l.Max+1, st.Units, st.MaxNotes, 1, dispenser.Bounds{Min: l.Min, Max: l.Max, Multiple: l.Multiple}); len(top) > 0 && top[0] <= l.Max {
			largest = top[0]
		}
	}
	return ok, largest, true
}
