package hostsim

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/cardless-atm/cardless/atm/wire"
)

// The reconciliation request (0500 -> 0510, docs/protocol.md §7.7): a
// terminal asks for the host's totals of its withdrawals on one business
// day. The host computes them from the authorizations it recorded for
// that terminal (every 0200, with what later 0220s and 0420s did to it),
// not from the running totals kept for Totals, so the answer is what the
// host's own transactions say.
//
// The business day of an authorization is the day, in Config.DayZone
// (UTC when empty), of its 0200's transmission time (field 7): the day
// the authorization was recorded with, which the customer's daily limit
// uses too. A reversal or advice counts on its original's day. Field 15
// (MMDD) is read as the day nearest the host's clock in that zone.

// DayTotals computes one terminal's totals for day (YYYY-MM-DD) in
// currency (ISO 4217 numeric) from the recorded authorizations:
//
//   - Approved: the 0200s approved (and debited), with their amounts;
//   - Reversals: the 0420s applied to approved ones, with what they
//     credited back (the authorized amount less field 95);
//   - Advices: the 0220s applied, with the authorized amounts they
//     confirmed as paid;
//   - NetDebit: Approved.Amount less Reversals.Amount.
//
// Declined authorizations and reversals of unknown originals count
// nowhere. It scans the terminal's authorizations (a simulator's
// volumes; a bank's host keeps an index by day).
func (s *Server) DayTotals(day, terminalID, currency string) (wire.ReconTotals, error) {
	var t wire.ReconTotals
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := []byte(terminalID + "/")
		c := tx.Bucket(bucketAuths).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var rec authRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("hostsim: corrupt authorization record: %w", err)
			}
			if rec.Day != day || rec.Currency != currency || rec.Tombstone || !rec.Debited {
				continue
			}
			t.Approved.Count++
			t.Approved.Amount += rec.Amount
			if rec.Reversed {
				t.Reversals.Count++
				t.Reversals.Amount += rec.Credited
			}
			if rec.Completed {
				t.Advices.Count++
				t.Advices.Amount += rec.Amount
			}
		}
		return nil
	})
	t.NetDebit = t.Approved.Amount - t.Reversals.Amount
	return t, err
}

// reconcile answers a 0500 with the terminal's totals for the day it
// names: 00 and the totals; 30 for a field 15 that is not a date; 12 for
// a currency the host does not serve; 96 when the records cannot be read.
func (s *Server) reconcile(term string, r *wire.Reconciliation) *wire.Reconciliation {
	out := r.Response()
	log := s.log.With("terminal", term, "stan", r.STAN)
	day, err := wire.ParseSettlementDate(r.SettlementDate, s.now(), s.zone)
	if err != nil {
		log.Warn("0500 without a valid business day (field 15)", "err", err)
		out.ResponseCode = wire.RCFormatError
		return &out
	}
	if _, ok := s.cfg.Currencies[r.SettlementCurrency]; !ok {
		log.Warn("0500 for a currency the host does not serve", "currency", r.SettlementCurrency)
		out.ResponseCode = wire.RCInvalidTransaction
		return &out
	}
	t, err := s.DayTotals(day, term, r.SettlementCurrency)
	if err == nil {
		err = t.Put(&out)
	}
	if err != nil {
		log.Error("0500 failed", "err", err)
		out = r.Response()
		out.ResponseCode = wire.RCSystemMalfunction
		return &out
	}
	out.ResponseCode = wire.RCApproved
	log.Info("0510", "day", day, "approved", t.Approved.Count, "reversals", t.Reversals.Count, "advices", t.Advices.Count, "net", t.NetDebit)
	return &out
}
