package proxyclient

import (
	"errors"
	"github.com/cardless-atm/cardless/hsm/tr31"
	"sync"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
)

// inbound handles requests from the proxy (and late responses). It runs on
// its own goroutine per message.
func (c *Client) inbound(conn *connection.Connection, m *iso8583.Message) {
	mti := wire.MTI(m)
	c.log.Debug("received", "msg", wire.Loggable(m))
	switch mti {
	case wire.MTIFinancialRequest:
		c.withdrawal(conn, m)
	case wire.MTINetMgmtRequest:
		c.netMgmtRequest(conn, m)
	default:
		c.log.Warn("unexpected message ignored", "mti", mti, "stan", wire.STAN(m))
	}
}

func (c *Client) netMgmtRequest(conn *connection.Connection, m *iso8583.Message) {
	var req wire.NetMgmt
	if err := wire.Parse(m, &req); err != nil {
		c.log.Warn("0800 refused", "reason", err)
		return
	}
	rc := wire.RCApproved
	switch req.NetMgmtCode {
	case wire.NetEcho:
	case wire.NetKeyChange:
		err, ok := c.takeKX(c.kxPush, req.STAN)
		switch {
		case !ok:
			rc = wire.RCSystemMalfunction
		case errors.Is(err, hsm.ErrKCVMismatch), errors.Is(err, errReplayedKeyChange), errors.Is(err, tr31.ErrMAC),
			errors.Is(err, hsm.ErrKeyUsage), errors.Is(err, errKeyFormat):
			rc = wire.RCSecurityViolation
		case err != nil:
			rc = wire.RCSystemMalfunction
		}
	default:
		rc = wire.RCInvalidTransaction
	}
	ans := req.Response(rc)
	// The ATM answers with its own clock and terminal ID.
	ans.TransmissionDateTime, ans.TerminalID = wire.FormatTransmissionDT(c.cfg.Clock.Now()), c.cfg.TerminalID
	resp, err := wire.Build(&ans)
	if err == nil {
		err = conn.Reply(resp)
	}
	if err != nil {
		c.log.Warn("0810 not sent", "stan", req.STAN, "err", err)
	}
}

// stanWindow remembers STANs within a duplicate window. The zero value is
// ready to use; it is safe for concurrent use.
type stanWindow struct {
	mu   sync.Mutex
	seen map[string]*stanEntry
}

type stanEntry struct {
	at   time.Time
	busy bool // still being handled: kept however old
}

// add forgets the STANs recorded more than window before now (except busy
// ones) and reports whether stan is still recorded; if it is not, add
// records it at now, busy until release when busy is set.
func (w *stanWindow) add(stan string, now time.Time, window time.Duration, busy bool) (seen bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for s, e := range w.seen {
		if !e.busy && now.Sub(e.at) > window {
			delete(w.seen, s)
		}
	}
	if _, ok := w.seen[stan]; ok {
		return true
	}
	if w.seen == nil {
		w.seen = map[string]*stanEntry{}
	}
	w.seen[stan] = &stanEntry{at: now, busy: busy}
	return false
}

// release marks stan handled, its window running from at.
func (w *stanWindow) release(stan string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.seen[stan]; ok {
		e.busy, e.at = false, at
	}
}

// stale reports whether a transmission date-time (MMDDhhmmss UTC, field 7)
// lies further than the duplicate window from now: a replayed message.
func stale(dt string, now time.Time, window time.Duration) bool {
	if dt == "" {
		return false
	}
	now = now.UTC()
	t, err := time.Parse("0102150405", dt)
	if err != nil {
		return true
	}
	best := time.Duration(1<<63 - 1)
	for _, y := range []int{now.Year() - 1, now.Year(), now.Year() + 1} {
		d := time.Date(y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC).Sub(now).Abs()
		best = min(best, d)
	}
	return best > window
}

func (c *Client) withdrawal(conn *connection.Connection, m *iso8583.Message) {
	now := c.cfg.Clock.Now()
	var req wire.Withdrawal
	if err := wire.Parse(m, &req); err != nil {
		c.log.Warn("0200 refused", "reason", err)
		return
	}
	resp := req.Response()
	// The ATM also echoes fields 12, 13 and 37, and names itself in 41.
	resp.LocalTime, resp.LocalDate, resp.RRN = req.LocalTime, req.LocalDate, req.RRN
	resp.TerminalID = c.cfg.TerminalID
	reply := func(r wire.Withdrawal) {
		msg, err := wire.Build(&r)
		if err != nil {
			// A result field the spec cannot carry (e.g. a 5-character
			// auth code): answer 96 without the result fields.
			c.log.Error("0210 cannot be built; answering 96", "stan", r.STAN, "err", err)
			r.ResponseCode, r.AuthCode, r.RRN, r.ReplacementAmounts = wire.RCSystemMalfunction, "", "", ""
			msg, err = wire.Build(&r)
		}
		if err == nil {
			err = conn.Reply(msg)
		}
		if err != nil {
			// The link dropped while the ATM worked: the answer is lost; the
			// ATM core's journal holds the outcome.
			c.log.Error("0210 not sent", "stan", r.STAN, "rc", r.ResponseCode, "err", err)
			return
		}
		c.log.Info("dispense command answered", "stan", r.STAN, "rc", r.ResponseCode)
	}

	switch {
	case req.STAN == "":
		c.log.Warn("0200 without STAN ignored")
		return
	case c.seen.add(req.STAN, now, c.cfg.DuplicateWindow, true):
		c.log.Warn("duplicate dispense command refused", "stan", req.STAN)
		resp.ResponseCode = wire.RCDuplicate
		reply(resp)
		return
	}
	defer c.seen.release(req.STAN, now) // the duplicate window runs from the command's arrival
	if stale(req.TransmissionDateTime, now, c.cfg.DuplicateWindow) {
		c.log.Warn("replayed dispense command refused (transmission time outside the window)", "stan", req.STAN)
		resp.ResponseCode = wire.RCDuplicate
		reply(resp)
		return
	}
	amount, err := wire.ParseAmount(req.Amount)
	switch {
	case err != nil:
		resp.ResponseCode = wire.RCInvalidAmount
	case req.TerminalID != c.cfg.TerminalID:
		c.log.Warn("dispense command for another terminal refused", "stan", req.STAN, "field41", req.TerminalID)
		resp.ResponseCode = wire.RCInvalidTransaction
	}
	if resp.ResponseCode != "" {
		reply(resp)
		return
	}

	c.mu.Lock()
	ctx := c.runCtx
	c.mu.Unlock()
	res := c.cfg.Handler.HandleWithdrawal(ctx, Command{
		STAN:       req.STAN,
		TerminalID: req.TerminalID,
		Amount:     amount,
		Currency:   req.Currency,
		QRPayload:  req.QRPayload,
		CustomerID: req.CustomerID,
		PINBlock:   req.PINBlock,
		DeviceID:   req.DeviceID,
		ReceivedAt: now,
	})
	resp.ResponseCode = res.ResponseCode
	if resp.ResponseCode == "" {
		resp.ResponseCode = wire.RCSystemMalfunction
	}
	resp.AuthCode = res.AuthCode
	if res.RRN != "" {
		resp.RRN = res.RRN
	}
	if resp.ResponseCode == wire.RCApproved && res.Dispensed != amount {
		// Field 95 only on an approved partial payout (protocol.md §7.2);
		// a refusal pays nothing and says so with its response code.
		resp.ReplacementAmounts = wire.ReplacementAmounts{Transaction: res.Dispensed, Settlement: res.Dispensed}.String()
	}
	if resp.ResponseCode == wire.RCApproved {
		resp.Receipt = res.Receipt
	}
	reply(resp)
}
