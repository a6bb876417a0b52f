package atm

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cardless-atm/cardless/atm/qr"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/atm/wire"
)

// Command is a dispense command as the proxy link delivers it (step E): the
// phone's withdrawal request, re-protected for this terminal.
type Command struct {
	STAN       string // STAN on the proxy link
	TerminalID string // field 41
	Amount     int64  // field 4
	Currency   string // field 49, numeric
	QRPayload  string // the QR text the phone read
	CustomerID string
	PINBlock   []byte // encrypted end to end for the host; never inspected or stored here
	DeviceID   string // the phone's device ID (field 123), passed to the host, which checks the phone's binding; never stored here
}

// HandleCommand accepts or refuses a dispense command and answers it with
// the session's outcome once the session is finished (cash taken, retracted,
// declined...). A repeated command for a session already handled gets that
// session's outcome again; it never causes a second dispense.
func (a *ATM) HandleCommand(ctx context.Context, cmd Command) Result {
	reply := make(chan Result, 1)
	if err := a.do(ctx, func(ctx context.Context) { a.acceptCommand(ctx, cmd, reply) }); err != nil {
		return Result{ResponseCode: wire.RCIssuerInoperative}
	}
	select {
	case r := <-reply:
		return r
	case <-ctx.Done():
		// The session goes on; its outcome reaches the host through the
		// advice or reversal, and a repeated command learns it.
		return Result{ResponseCode: wire.RCIssuerInoperative}
	}
}

func (a *ATM) acceptCommand(ctx context.Context, cmd Command, reply chan Result) {
	refuse := func(rc, reason, sessionID string) {
		a.journalRefusal(cmd, rc, reason, sessionID)
		reply <- Result{ResponseCode: rc}
	}
	p, err := qr.Parse(cmd.QRPayload)
	if err != nil {
		refuse(wire.RCInvalidTransaction, "malformed QR payload", "")
		return
	}
	if p.TerminalID != a.cfg.TerminalID || cmd.TerminalID != a.cfg.TerminalID {
		refuse(wire.RCInvalidTransaction, fmt.Sprintf("wrong terminal: QR %q, command %q", p.TerminalID, cmd.TerminalID), "")
		return
	}
	s, err := a.lookup(p.Nonce)
	if err != nil {
		refuse(wire.RCInvalidTransaction, "no such session", "")
		return
	}
	if p.Amount != s.Amount || cmd.Amount != s.Amount || p.Currency != s.Currency || cmd.Currency != s.Currency {
		refuse(wire.RCInvalidAmount, fmt.Sprintf("amount or currency does not match the session (QR %d %s, command %d %s)",
			p.Amount, p.Currency, cmd.Amount, cmd.Currency), s.ID)
		return
	}
	if err := qr.Verify(p, a.qrMAC); err != nil {
		refuse(wire.RCInvalidTransaction, "QR MAC does not verify (tampered or forged QR)", s.ID)
		return
	}
	from, err := a.requesterOf(cmd)
	if err != nil {
		refuse(wire.RCSystemMalfunction, "security module: "+err.Error(), s.ID)
		return
	}
	// A session already taken by a command answers a repeat of that same
	// request (a retry) with its outcome, and anyone else's request with
	// 94: a used QR scanned again, by another customer or with another
	// PIN, learns nothing of the first one's outcome.
	taken := s.Requester
	if a.accepting == s.ID {
		taken = a.acceptingFrom
	}
	switch {
	case s.State == StateExpired:
		refuse(wire.RCExpired, "session expired", s.ID)
		return
	case s.State == StateCancelled:
		refuse(wire.RCInvalidTransaction, "session cancelled", s.ID)
		return
	case taken != "" && taken != from:
		refuse(wire.RCDuplicate, "QR already used by another request (other customer or credential)", s.ID)
		return
	case s.State.Terminal():
		a.log.Info("repeated command for a finished session", "session", short(s.ID), "state", s.State)
		reply <- s.result()
		return
	case s.State != StateAwaitingPhone, a.accepting == s.ID:
		a.log.Info("repeated command for a session in progress", "session", short(s.ID), "state", s.State)
		a.waiters[s.ID] = append(a.waiters[s.ID], reply)
		return
	}
	if !a.now().Before(s.Expires) {
		a.endWaiting(EvExpire, "SESSION EXPIRED")
		refuse(wire.RCExpired, "session expired", s.ID)
		return
	}
	// The dispenser's command nonce is fetched off the owner goroutine (a
	// real device may take seconds); the session stays AwaitingPhone, so
	// the customer can still cancel, and a repeat of this command waits
	// for its outcome.
	a.accepting, a.acceptingFrom = s.ID, from
	a.waiters[s.ID] = append(a.waiters[s.ID], reply)
	id := s.ID
	a.background(func() {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		nonce, err := a.cfg.Dispenser.CommandNonce(dctx)
		cancel()
		a.post(func(context.Context) { a.nonceReady(cmd, id, nonce, err) })
	})
}

// requesterOf is the keyed fingerprint of the credentials cmd carries: a
// retail MAC under the QR key (in the security module) of the customer
// field, the PIN block and, when the phone sent one, its device ID, so
// the store keeps nothing from which the customer ID could be guessed,
// and a request from another phone is not "the same request". (Without a
// device ID the data is what it was before device IDs existed; the PIN
// block has a fixed length, so the two forms cannot collide.)
func (a *ATM) requesterOf(cmd Command) (string, error) {
	data := make([]byte, 0, len(cmd.CustomerID)+len(cmd.PINBlock)+len(cmd.DeviceID)+24)
	data = append(data, "cardless requester\x00"...)
	data = append(data, cmd.CustomerID...)
	data = append(data, 0)
	data = append(data, cmd.PINBlock...)
	if cmd.DeviceID != "" {
		data = append(data, 0)
		data = append(data, cmd.DeviceID...)
	}
	mac, err := a.qrMAC(data)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(mac), nil
}

// nonceReady goes on with a dispense command once the dispenser gave its
// command nonce (or failed to): the session is authorized only if it is
// still the one waiting for the phone, unexpired.
func (a *ATM) nonceReady(cmd Command, id, nonce string, err error) {
	from := a.acceptingFrom
	a.accepting, a.acceptingFrom = "", ""
	refuseAll := func(rc, reason string) {
		a.journalRefusal(cmd, rc, reason, id)
		r := Result{ResponseCode: rc}
		if s, lerr := a.lookup(id); lerr == nil && s.State.Terminal() {
			r = s.result() // e.g. cancelled meanwhile: every repeat gets that outcome
		}
		a.answer(id, r)
	}
	s := a.cur
	switch {
	case s == nil || s.ID != id || s.State != StateAwaitingPhone:
		state := "gone"
		if s != nil && s.ID == id {
			state = s.State.String()
		}
		refuseAll(wire.RCInvalidTransaction, "session ended ("+state+") while the dispenser was asked for a command nonce")
		return
	case err != nil:
		refuseAll(wire.RCSystemMalfunction, "dispenser gave no command nonce: "+err.Error())
		return
	case !a.now().Before(s.Expires):
		a.endWaiting(EvExpire, "SESSION EXPIRED")
		refuseAll(wire.RCExpired, "session expired")
		return
	}
	err = a.commit(s, change{
		ev:   EvCommandAccepted,
		kind: "COMMAND ACCEPTED",
		text: "dispense command accepted; authorizing with the host",
		data: map[string]string{"stan": cmd.STAN, "customer": maskID(cmd.CustomerID)},
		mutate: func(ns *Session) {
			ns.CommandSTAN = cmd.STAN
			ns.Customer = maskID(cmd.CustomerID)
			ns.Requester = from
			ns.DispenseNonce = nonce
			ns.HostTime = a.now().UTC().Truncate(time.Second)
		},
		// The host STAN is allocated in the same transaction, so the
		// reversal of an interrupted authorization can name it.
		extra: func(tx *store.Tx, ns *Session) (err error) {
			ns.HostSTAN, err = tx.NextSTAN()
			return err
		},
	})
	if err != nil {
		a.log.Error("cannot commit accepted command; stopping for recovery", "err", err)
		refuseAll(wire.RCSystemMalfunction, "cannot store session state")
		a.setService(false, "storage")
		a.stop(fmt.Errorf("%w: %w", ErrStorage, err))
		return
	}
	a.publish()
	a.log.Info("command accepted", "session", short(s.ID), "host_stan", s.HostSTAN)
	a.authorize(*s, cmd)
}

// answer gives r to every dispense command waiting for session id.
func (a *ATM) answer(id string, r Result) {
	for _, ch := range a.waiters[id] {
		ch <- r
	}
	delete(a.waiters, id)
}

// lookup finds a session by nonce: the current one, or one in the store.
func (a *ATM) lookup(id string) (*Session, error) {
	if a.cur != nil && a.cur.ID == id {
		return a.cur, nil
	}
	var s Session
	err := a.db.View(func(tx *store.Tx) error {
		b, err := tx.GetSession(id)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &s)
	})
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			a.log.Error("session lookup", "err", err)
		}
		return nil, err
	}
	return &s, nil
}

// maskID keeps the last four characters of a customer identifier.
func maskID(id string) string {
	if len(id) <= 4 {
		return "****"
	}
	return "****" + id[len(id)-4:]
}
