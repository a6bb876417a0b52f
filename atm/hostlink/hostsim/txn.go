package hostsim

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/pinblock"
)

// authorize decides a 0200 and answers it. Everything it changes (account,
// daily usage, totals, the authorization record) is one bbolt Update.
func (s *Server) authorize(term string, w *wire.Withdrawal, f Faults) *wire.Withdrawal {
	now := s.now()
	resp := w.Response()
	out := &resp
	// On the host link the 0210 also echoes fields 12, 13 and 32.
	out.LocalTime, out.LocalDate, out.AcquirerID = w.LocalTime, w.LocalDate, w.AcquirerID
	log := s.log.With("terminal", term, "stan", w.STAN, "customer", maskID(w.CustomerID))
	decline := f.Decline
	if code, ok := strings.CutPrefix(w.CustomerID, MagicDeclinePrefix); ok && len(code) == 2 {
		decline = code
	}
	if decline != "" {
		out.ResponseCode = decline
		out.RRN = s.rrn(now)
		log.Warn("fault: 0200 declined", "rc", decline)
		return out
	}
	amount, err := wire.ParseAmount(w.Amount)
	if err != nil {
		out.ResponseCode = wire.RCInvalidAmount
		return out
	}
	sent, err := wire.ParseTransmissionDT(w.TransmissionDateTime, now)
	if err != nil {
		log.Warn("0200 with an invalid field 7", "err", err)
		out.ResponseCode = wire.RCInvalidTransaction
		return out
	}
	rec := authRecord{Terminal: term, STAN: w.STAN, CustomerID: w.CustomerID, Amount: amount,
		Currency: w.Currency, Nonce: w.DispenseNonce, Day: s.day(sent), Time: now}

	err = s.db.Update(func(tx *bolt.Tx) error {
		auths := tx.Bucket(bucketAuths)
		var old authRecord
		found, err := getJSON(auths, authKey(term, w.STAN, w.TransmissionDateTime), &old)
		if err != nil {
			return err
		}
		if found {
			switch {
			case old.Tombstone:
				log.Warn("0200 after its reversal: declined")
				rec.ResponseCode = wire.RCInvalidTransaction
			case old.CustomerID == rec.CustomerID && old.Amount == rec.Amount && old.Nonce == rec.Nonce:
				log.Info("duplicate 0200: original answer repeated", "rc", old.ResponseCode)
				rec = old
			default:
				log.Warn("0200 reuses a STAN with other content", "rc", wire.RCDuplicate)
				rec.ResponseCode = wire.RCDuplicate
			}
			return nil // nothing changes
		}
		rec.RRN = s.rrn(now)
		rec.ResponseCode, err = s.decide(tx, &rec, w.PINBlock, w.DeviceID)
		if err != nil {
			return err
		}
		return putJSON(auths, authKey(term, w.STAN, w.TransmissionDateTime), &rec)
	})
	if err != nil {
		log.Error("0200 failed", "err", err)
		out.ResponseCode = wire.RCSystemMalfunction
		return out
	}
	out.ResponseCode, out.RRN = rec.ResponseCode, rec.RRN
	if rec.ResponseCode == wire.RCApproved {
		out.AuthCode, out.DispenseToken = rec.AuthCode, rec.Token
	}
	log.Info("0210", "rc", out.ResponseCode, "amount", amount, "rrn", out.RRN)
	return out
}

const dayLayout = "2006-01-02"

// day is the calendar day, in the configured zone, that an authorization
// sent at t (its field 7) counts for: the ATM books it by the same instant.
func (s *Server) day(t time.Time) string { return t.In(s.zone).Format(dayLayout) }

// decide runs the checks in order and, on approval, debits the account and
// fills rec's auth code and token. It returns the response code. device
// is field 123 ("" when absent): the phone must be bound to the customer
// (checkBinding) before its PIN is even looked at, so a phone that is not
// bound cannot try PINs.
func (s *Server) decide(tx *bolt.Tx, rec *authRecord, pinBlock []byte, device string) (string, error) {
	cur, ok := s.cfg.Currencies[rec.Currency]
	if !ok || len(rec.Nonce) != dispenser.NonceLength || strings.ToUpper(rec.Nonce) != rec.Nonce {
		return wire.RCInvalidTransaction, nil
	}
	if device != "" && !wire.ValidDeviceID(device) {
		return wire.RCFormatError, nil
	}
	customers := tx.Bucket(bucketCustomers)
	var a account
	found, err := getJSON(customers, []byte(rec.CustomerID), &a)
	if err != nil {
		return "", err
	}
	switch {
	case !found:
		return wire.RCInvalidAccount, nil
	case a.Blocked:
		return wire.RCDoNotHonour, nil
	}
	if rc := s.checkBinding(tx, a.ID, device); rc != "" {
		return rc, nil
	}
	if rc, err := s.checkPIN(customers, &a, pinBlock); err != nil || rc != "" {
		return rc, err
	}
	used, err := dailyUsed(tx, a.ID, rec.Day)
	if err != nil {
		return "", err
	}
	var code string
	switch {
	case rec.Amount <= 0:
		code = wire.RCInvalidAmount
	case a.PerTxnLimit > 0 && rec.Amount > a.PerTxnLimit:
		code = wire.RCExceedsLimit
	case a.DailyLimit > 0 && used+rec.Amount > a.DailyLimit:
		code = wire.RCExceedsLimit
	case rec.Amount > a.Balance:
		code = wire.RCInsufficientFunds
	}
	if code != "" {
		return code, putJSON(customers, []byte(a.ID), &a)
	}
	// Approve.
	token, err := dispenser.BuildToken(rec.Nonce, rec.Amount, cur.Alpha, cur.Exponent, func(data []byte) ([]byte, error) {
		return s.hsm.HMACSHA256(hsm.TokenKey, data)
	})
	if err != nil {
		return "", fmt.Errorf("dispense token: %w", err)
	}
	a.Balance -= rec.Amount
	if err := putJSON(customers, []byte(a.ID), &a); err != nil {
		return "", err
	}
	if err := addDaily(tx, a.ID, rec.Day, rec.Amount); err != nil {
		return "", err
	}
	if err := addTotals(tx, rec.Day, rec.Terminal, 1, rec.Amount, 0); err != nil {
		return "", err
	}
	rec.AuthCode, rec.Token, rec.Debited = authCode(), token, true
	return wire.RCApproved, nil
}

// pinOK decrypts the PIN block under the app PIN key and compares the PIN
// with the stored hash. The clear block and PIN never leave this function.
func (s *Server) pinOK(a *account, block []byte) bool {
	if len(block) != pinblock.Size {
		return false
	}
	clearBlock, err := s.hsm.Decrypt(hsm.AppPINKey, block)
	if err != nil {
		return false
	}
	defer clear(clearBlock)
	pin, err := pinblock.Parse(clearBlock)
	if err != nil {
		return false
	}
	return a.pinMatches(pin)
}

// advice applies a completion advice once per terminal and original STAN.
func (s *Server) advice(term string, a *wire.Advice) *wire.Advice {
	out := &wire.Advice{MTI: wire.MTIAdviceResp, ProcessingCode: a.ProcessingCode, Amount: a.Amount,
		TransmissionDateTime: a.TransmissionDateTime, STAN: a.STAN, AcquirerID: a.AcquirerID,
		TerminalID: a.TerminalID, Currency: a.Currency, OriginalData: a.OriginalData, ResponseCode: wire.RCApproved}
	od, err := original0200(a.OriginalData)
	if err != nil {
		s.log.Warn("0220 without valid original data", "terminal", term, "stan", a.STAN)
		out.ResponseCode = wire.RCInvalidTransaction
		return out
	}
	log := s.log.With("terminal", term, "stan", a.STAN, "original", od.STAN)
	err = s.db.Update(func(tx *bolt.Tx) error {
		auths := tx.Bucket(bucketAuths)
		var rec authRecord
		found, err := getJSON(auths, authKey(term, od.STAN, od.TransmitDT), &rec)
		switch {
		case err != nil:
			return err
		case !found:
			log.Warn("completion for an unknown original: acknowledged, nothing applied")
			return nil
		case rec.Completed:
			log.Info("duplicate completion: acknowledged, not applied again")
			return nil
		case !rec.Debited:
			log.Warn("completion for an authorization that was not approved: acknowledged", "rc", rec.ResponseCode)
			return nil
		case rec.Reversed:
			// One authorization ends either way, never both: a completion
			// after a reversal contradicts it. Refused for the bank to
			// reconcile; nothing is applied.
			log.Error("ALARM completion for an authorization already reversed: refused", "credited", rec.Credited)
			out.ResponseCode = wire.RCInvalidTransaction
			return nil
		}
		rec.Completed = true
		log.Info("completion applied")
		return putJSON(auths, authKey(term, od.STAN, od.TransmitDT), &rec)
	})
	if err != nil {
		log.Error("0220 failed", "err", err)
		out.ResponseCode = wire.RCSystemMalfunction
	}
	return out
}

// original0200 parses field 90 of a 0220 or 0420, which must name a 0200
// (the host knows no other original).
func original0200(field90 string) (wire.OriginalData, error) {
	od, err := wire.ParseOriginalData(field90)
	if err == nil && od.MTI != wire.MTIFinancialRequest {
		err = errors.New("original is not a 0200")
	}
	return od, err
}

// reversal applies a reversal once per terminal and original STAN: it
// credits back the original amount minus what was dispensed (field 95).
func (s *Server) reversal(term string, r *wire.Reversal) *wire.Reversal {
	out := &wire.Reversal{MTI: wire.MTIReversalResp, ProcessingCode: r.ProcessingCode, Amount: r.Amount,
		TransmissionDateTime: r.TransmissionDateTime, STAN: r.STAN, AcquirerID: r.AcquirerID,
		TerminalID: r.TerminalID, Currency: r.Currency, OriginalData: r.OriginalData, ResponseCode: wire.RCApproved}
	od, err := original0200(r.OriginalData)
	var dispensed int64
	if err == nil && r.ReplacementAmounts != "" {
		var ra wire.ReplacementAmounts
		if ra, err = wire.ParseReplacementAmounts(r.ReplacementAmounts); err == nil {
			dispensed = ra.Transaction
		}
	}
	if err != nil {
		s.log.Warn("0420 with invalid field 90 or 95", "terminal", term, "stan", r.STAN)
		out.ResponseCode = wire.RCInvalidTransaction
		return out
	}
	log := s.log.With("terminal", term, "stan", r.STAN, "original", od.STAN, "reason", r.ResponseCode)
	err = s.db.Update(func(tx *bolt.Tx) error {
		auths := tx.Bucket(bucketAuths)
		key := authKey(term, od.STAN, od.TransmitDT)
		var rec authRecord
		found, err := getJSON(auths, key, &rec)
		switch {
		case err != nil:
			return err
		case !found:
			log.Warn("reversal for an unknown original: acknowledged, nothing to undo; a late 0200 will be declined")
			amount, _ := wire.ParseAmount(r.Amount)
			now := s.now()
			day := s.day(now)
			if sent, err := wire.ParseTransmissionDT(od.TransmitDT, now); err == nil {
				day = s.day(sent)
			}
			tomb := authRecord{Terminal: term, STAN: od.STAN, Amount: amount, Currency: r.Currency,
				Day: day, Time: now, Tombstone: true, Reversed: true}
			return putJSON(auths, key, &tomb)
		case rec.Reversed:
			log.Info("duplicate reversal: acknowledged, not applied again")
			return nil
		case rec.Completed:
			// The ATM advised that the customer took the cash; a reversal
			// now (a forged or mistaken operator settlement, say) would
			// credit money that was paid out. Refused for the bank to
			// reconcile; nothing is applied.
			log.Error("ALARM reversal for an authorization already completed: refused")
			out.ResponseCode = wire.RCInvalidTransaction
			return nil
		case !rec.Debited:
			rec.Reversed = true
			log.Info("reversal of an authorization that was not approved: nothing to undo", "rc", rec.ResponseCode)
			return putJSON(auths, key, &rec)
		}
		if amt, err := wire.ParseAmount(r.Amount); err != nil || amt != rec.Amount {
			log.Warn("reversal amount differs from the authorization; the authorized amount is used")
		}
		credit := rec.Amount - min(max(dispensed, 0), rec.Amount)
		customers := tx.Bucket(bucketCustomers)
		var a account
		ok, err := getJSON(customers, []byte(rec.CustomerID), &a)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("account of the authorization is missing")
		}
		a.Balance += credit
		if err := putJSON(customers, []byte(a.ID), &a); err != nil {
			return err
		}
		if err := addDaily(tx, a.ID, rec.Day, -credit); err != nil {
			return err
		}
		if err := addTotals(tx, rec.Day, term, 0, 0, credit); err != nil {
			return err
		}
		rec.Reversed, rec.Credited = true, credit
		log.Info("reversal applied", "credited", credit, "dispensed", dispensed)
		return putJSON(auths, key, &rec)
	})
	if err != nil {
		log.Error("0420 failed", "err", err)
		out.ResponseCode = wire.RCSystemMalfunction
	}
	return out
}

// authCode returns a random 6-digit authorization code.
func authCode() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) % 1000000
	return fmt.Sprintf("%06d", n)
}

// rrn returns a 12-digit retrieval reference number: YYMM and a sequence
// that starts from the clock, so a restarted simulator does not repeat it.
func (s *Server) rrn(now time.Time) string {
	s.rrnOnce.Do(func() { s.rrnSeq.Store(uint64(now.Unix()%10000000) * 10) })
	return now.UTC().Format("0601") + fmt.Sprintf("%08d", s.rrnSeq.Add(1)%100000000)
}
