package atm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cardless-atm/cardless/atm/qr"
	"github.com/cardless-atm/cardless/atm/store"
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
}

// HandleCommand accepts or refuses a dispense command and answers it with
// the session's outcome once the session is finished (cash taken, retracted,
// declined...). A repeated command for a session already handled gets that
// session's outcome again; it never causes a second dispense.
func (a *ATM) HandleCommand(ctx context.Context, cmd Command) Result {
	reply := make(chan Result, 1)
	if err := a.do(ctx, func(ctx context.Context) { a.acceptCommand(ctx, cmd, reply) }); err != nil {
		return Result{ResponseCode: "91"}
	}
	select {
	case r := <-reply:
		return r
	case <-ctx.Done():
		// The session goes on; its outcome reaches the host through the
		// advice or reversal, and a repeated command learns it.
		return Result{ResponseCode: "91"}
	}
}

func (a *ATM) acceptCommand(ctx context.Context, cmd Command, reply chan Result) {
	refuse := func(rc, reason, sessionID string) {
		a.log.Warn("dispense command refused", "rc", rc, "reason", reason, "stan", cmd.STAN, "session", short(sessionID))
		err := a.db.UpdateLabeled("refused", func(tx *store.Tx) error {
			_, err := tx.AppendJournal(store.Entry{Kind: "COMMAND REFUSED", SessionID: sessionID,
				Text: reason, Data: map[string]string{"rc": rc, "stan": cmd.STAN, "amount": fmt.Sprint(cmd.Amount)}})
			return err
		})
		if err != nil {
			a.log.Error("cannot journal refusal", "err", err)
		}
		reply <- Result{ResponseCode: rc}
	}
	p, err := qr.Parse(cmd.QRPayload)
	if err != nil {
		refuse("12", "malformed QR payload", "")
		return
	}
	if p.TerminalID != a.cfg.TerminalID || cmd.TerminalID != a.cfg.TerminalID {
		refuse("12", fmt.Sprintf("wrong terminal: QR %q, command %q", p.TerminalID, cmd.TerminalID), "")
		return
	}
	s, err := a.lookup(p.Nonce)
	if err != nil {
		refuse("12", "no such session", "")
		return
	}
	if p.Amount != s.Amount || cmd.Amount != s.Amount || p.Currency != s.Currency || cmd.Currency != s.Currency {
		refuse("13", fmt.Sprintf("amount or currency does not match the session (QR %d %s, command %d %s)",
			p.Amount, p.Currency, cmd.Amount, cmd.Currency), s.ID)
		return
	}
	if err := qr.Verify(p, a.qrMAC); err != nil {
		refuse("12", "QR MAC does not verify (tampered or forged QR)", s.ID)
		return
	}
	switch {
	case s.State == StateExpired:
		refuse("54", "session expired", s.ID)
		return
	case s.State == StateCancelled:
		refuse("12", "session cancelled", s.ID)
		return
	case s.State.Terminal():
		a.log.Info("repeated command for a finished session", "session", short(s.ID), "state", s.State)
		reply <- s.result()
		return
	case s.State != StateAwaitingPhone:
		a.log.Info("repeated command for a session in progress", "session", short(s.ID), "state", s.State)
		a.waiters[s.ID] = append(a.waiters[s.ID], reply)
		return
	}
	if !a.now().Before(s.Expires) {
		a.endWaiting(EvExpire, "SESSION EXPIRED")
		refuse("54", "session expired", s.ID)
		return
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	nonce, err := a.cfg.Dispenser.CommandNonce(dctx)
	cancel()
	if err != nil {
		refuse("96", "dispenser gave no command nonce: "+err.Error(), s.ID)
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
		refuse("96", "cannot store session state", s.ID)
		a.setService(false, "storage")
		a.stop(fmt.Errorf("%w: %w", ErrStorage, err))
		return
	}
	a.waiters[s.ID] = append(a.waiters[s.ID], reply)
	a.publish()
	a.log.Info("command accepted", "session", short(s.ID), "host_stan", s.HostSTAN)
	a.authorize(*s, cmd)
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
