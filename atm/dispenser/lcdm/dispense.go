package lcdm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

// chunk is one dispense command: notes from the upper and lower cassette.
type chunk [2]int

// split divides a dispense of up notes from the upper and lo from the
// lower cassette into commands of at most MaxPerCommand per cassette,
// using the combined command while both cassettes have notes left.
func split(up, lo int) []chunk {
	var out []chunk
	for up > 0 || lo > 0 {
		c := chunk{min(up, MaxPerCommand), min(lo, MaxPerCommand)}
		out = append(out, c)
		up, lo = up-c[0], lo-c[1]
	}
	return out
}

// tally is what the commands of one Dispense moved, per unit ID.
type tally struct {
	picked, delivered, rejected dispenser.Mix // rejected includes notes stuck in the transport
}

// outcome of a dispense command sequence.
type outcome int

const (
	outDone    outcome = iota // every command answered, all notes delivered
	outStopped                // the device stopped with exact counts
	outNotRun                 // a command was refused (NAK) or never sent: it did not run
	outUnknown                // the device may have moved notes nobody counted
)

// checkCounts validates one cassette's counts against its request.
func checkCounts(c CassetteCount, req int) error {
	if c.Exit+c.Reject > c.Check || c.Exit > req {
		return fmt.Errorf("inconsistent counts: check %d, exit %d, reject %d for %d requested", c.Check, c.Exit, c.Reject, req)
	}
	if req == 0 && (c.Check != 0 || c.Exit != 0 || c.Reject != 0) {
		return fmt.Errorf("counts %d/%d/%d from a cassette that was not asked for notes", c.Check, c.Exit, c.Reject)
	}
	return nil
}

// judge interprets one dispense answer to the request req (upper, lower).
// It returns outDone when the command delivered everything, outStopped with
// the code when the device stopped with exact counts, outUnknown when the
// counts cannot be trusted. latch says whether the device needs a purge.
//
// An error-only answer carries no counts: unless its code comes only
// before any note moves (ErrorCode.BeforeNotesMove), the notes the command
// moved are unknown.
func judge(a DispenseAnswer, req chunk) (out outcome, latch bool, reason error) {
	code := ErrorCode(a.Error)
	if a.ErrorOnly && !code.BeforeNotesMove() {
		return outUnknown, true, fmt.Errorf("%s in an error-only answer (no counts): notes may have moved", code)
	}
	cs := [2]CassetteCount{a.Upper, a.Lower}
	for i, c := range cs {
		if err := checkCounts(c, req[i]); err != nil {
			return outUnknown, true, fmt.Errorf("%s: %w", code, err)
		}
	}
	stuck := cs[0].Stuck() + cs[1].Stuck()
	complete := cs[0].Exit == req[0] && cs[1].Exit == req[1]
	switch code.Class() {
	case ClassExitJam:
		return outUnknown, true, fmt.Errorf("%s: a note may be half out of the exit", code)
	case ClassOK:
		if complete && stuck == 0 {
			return outDone, false, nil
		}
		return outStopped, true, fmt.Errorf("%s but %d of %d notes delivered, %d in the transport", code,
			cs[0].Exit+cs[1].Exit, req[0]+req[1], stuck)
	case ClassBillEnd:
		return outStopped, stuck > 0, fmt.Errorf("%s", code)
	}
	return outStopped, true, fmt.Errorf("%s", code)
}

// Dispense pays mix out into the customer's tray (there is no shutter:
// delivered notes are paid). The host token is checked with
// dispenser.VerifyToken against the driver's command nonce before any
// command reaches the device; any call consumes the nonce.
//
// On success Result.Mix is the notes delivered and Result.Rejected those
// the device diverted to its reject tray. On a fault the error is a
// *dispenser.DispenseError:
//
//   - ErrShortDispense, Dispensed = exactly the notes delivered, when some
//     notes reached the tray (also over several commands of a split
//     dispense), or none when the cassette was empty;
//   - ErrJam, Dispensed = the notes picked, when none reached the tray
//     (they are in the reject tray or stuck inside, purged on Reset);
//   - ErrCountUnknown (CountKnown false) after a jam at the exit, counts
//     that do not add up, or no answer once a dispense command was sent.
//
// After a fault Status reports hardwareError and Dispense is refused with
// ErrDeviceNotReady until Reset. Counts and the present status are in the
// state file before Dispense returns; the dispense is recorded as "count
// unknown" before the first command is sent, so a crash mid-dispense is
// never taken for "nothing paid".
func (d *Driver) Dispense(ctx context.Context, mix dispenser.Mix, token string) (dispenser.Result, error) {
	d.mu.Lock()
	nonce := d.nonce
	d.nonce = "" // one token, one attempt
	req, currency, amount, err := d.checkDispense(mix, token, nonce)
	d.mu.Unlock()
	if err != nil {
		return dispenser.Result{}, err
	}
	if err := d.acquire(ctx); err != nil {
		return dispenser.Result{}, notReady(err)
	}
	defer d.release()
	if err := d.ensureReady(ctx); err != nil {
		return dispenser.Result{}, err
	}
	s, err := d.status(ctx)
	if err != nil {
		return dispenser.Result{}, err
	}
	if err := d.healthy(s); err != nil {
		return dispenser.Result{}, err
	}

	// Write ahead: a crash from here on leaves "count unknown".
	d.mu.Lock()
	if d.st.PurgeNeeded {
		d.mu.Unlock()
		return dispenser.Result{}, fmt.Errorf("%w: fault %s, Reset required", dispenser.ErrDeviceNotReady, d.st.Fault)
	}
	pre := d.st.clone()
	st := d.st.clone()
	st.Last = dispenser.PresentStatus{Seq: pre.Last.Seq + 1, Nonce: nonce, Currency: currency, State: dispenser.PresentFailed,
		ErrorCode: dispenser.Code(dispenser.ErrCountUnknown), CountKnown: false, Requested: mix.Clone()}
	st.PurgeNeeded, st.Fault = true, "dispense in progress"
	err = d.save(st)
	d.mu.Unlock()
	if err != nil {
		return dispenser.Result{}, notReady(err)
	}
	d.log.Info("lcdm dispense", "seq", st.Last.Seq, "mix", mix.String(), "amount", amount, "currency", currency)

	ids := [2]string{}
	for i := range min(2, len(pre.Units)) {
		ids[i] = pre.Units[i].ID
	}
	t := tally{picked: dispenser.Mix{}, delivered: dispenser.Mix{}, rejected: dispenser.Mix{}}
	var (
		out      = outDone
		latch    bool
		reason   error
		billEnd  [2]bool
		unknownN chunk // the request of a command whose result is unknown
	)
	wctx := context.WithoutCancel(ctx) // a sent dispense is never abandoned
	for i, c := range split(req[0], req[1]) {
		if i > 0 {
			d.log.Info("lcdm dispense command", "seq", st.Last.Seq, "command", i+1, "upper", c[0], "lower", c[1],
				"delivered_so_far", t.delivered.String())
		}
		f, _ := DispenseCommand(c[0], c[1])
		timeout := d.to.Dispense + d.to.PerNote*time.Duration(c[0]+c[1])
		ans, err := d.command(wctx, f.Cmd, f.Data, timeout, false)
		if err != nil {
			var le *linkError
			if errors.As(err, &le) && !le.mayHaveRun {
				out, reason = outNotRun, err
			} else {
				out, reason, latch, unknownN = outUnknown, err, true, c
			}
			break
		}
		a, err := ParseDispenseAnswer(ans)
		if err != nil {
			out, reason, latch, unknownN = outUnknown, err, true, c
			break
		}
		o, l, why := judge(a, c)
		if !a.ErrorOnly { // an error-only answer has no cassette status
			d.mu.Lock()
			d.nearUp, d.nearLo = a.Upper.Status == CassetteNearEnd, a.Lower.Status == CassetteNearEnd
			d.mu.Unlock()
		}
		if o == outUnknown {
			out, reason, latch, unknownN = o, why, l, c
			break
		}
		for i, cc := range [2]CassetteCount{a.Upper, a.Lower} {
			if ids[i] == "" {
				continue
			}
			add(t.picked, ids[i], cc.Check)
			add(t.delivered, ids[i], cc.Exit)
			add(t.rejected, ids[i], cc.Reject+cc.Stuck())
		}
		if o == outStopped {
			out, latch, reason = o, l, why
			billEnd = [2]bool{ErrorCode(a.Error) == UpperBillEnd, ErrorCode(a.Error) == LowerBillEnd}
			break
		}
	}
	return d.finish(pre, mix, currency, t, out, latch, reason, billEnd, unknownN, ids)
}

func add(m dispenser.Mix, id string, n int) {
	if n != 0 {
		m[id] += n
	}
}

// checkDispense validates a dispense before any I/O: readiness as far as
// the driver knows it, the mix, the token, the note limit and the counts.
// It returns the notes per cassette. Callers hold d.mu.
func (d *Driver) checkDispense(mix dispenser.Mix, token, nonce string) (req chunk, currency string, amount int64, err error) {
	if d.closed {
		return req, "", 0, fmt.Errorf("%w: driver closed", dispenser.ErrDeviceNotReady)
	}
	if d.st.PurgeNeeded {
		return req, "", 0, fmt.Errorf("%w: fault %s, Reset required", dispenser.ErrDeviceNotReady, d.st.Fault)
	}
	for id, n := range mix {
		u := d.st.unit(id)
		if u == nil || n < 0 {
			return req, "", 0, fmt.Errorf("%w: unknown unit %q or negative count", dispenser.ErrNotDispensable, id)
		}
		if n == 0 {
			continue
		}
		if currency != "" && u.Currency != currency {
			return req, "", 0, fmt.Errorf("%w: mix mixes currencies", dispenser.ErrNotDispensable)
		}
		currency = u.Currency
	}
	if mix.Notes() == 0 {
		return req, "", 0, fmt.Errorf("%w: empty mix", dispenser.ErrNotDispensable)
	}
	amount = d.st.amount(mix)
	if err := dispenser.VerifyToken(token, nonce, d.cfg.TokenKey, amount, currency, d.cfg.Exponent); err != nil {
		d.log.Warn("lcdm dispense refused: token", "code", dispenser.Code(err), "amount", amount, "currency", currency)
		return req, "", 0, err
	}
	if mix.Notes() > d.cfg.MaxNotes {
		return req, "", 0, fmt.Errorf("%w: %d notes, limit %d", dispenser.ErrTooManyItems, mix.Notes(), d.cfg.MaxNotes)
	}
	for i, u := range d.st.Units {
		n := mix[u.ID]
		if n > 0 && (u.Inoperative || u.BillEnd || u.Count < n) {
			return req, "", 0, fmt.Errorf("%w: unit %s cannot give %d notes", dispenser.ErrNotDispensable, u.ID, n)
		}
		if i < 2 {
			req[i] = n
		}
	}
	return req, currency, amount, nil
}

// finish records the outcome in the state file and builds the result.
func (d *Driver) finish(pre *state, mix dispenser.Mix, currency string, t tally, out outcome, latch bool, reason error,
	billEnd [2]bool, unknownN chunk, ids [2]string) (dispenser.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st.clone()
	for id, n := range t.picked {
		u := st.unit(id)
		u.Count -= n
		u.Picked += n
	}
	for id, n := range t.rejected {
		st.unit(id).Rejected += n
	}
	for i, b := range billEnd {
		if b && ids[i] != "" {
			st.unit(ids[i]).BillEnd = true
		}
	}
	last := &st.Last
	last.CountKnown = true
	last.Dispensed, last.DispensedAmount = t.picked.Clone(), st.amount(t.picked)
	last.Presented, last.PresentedAmount = t.delivered.Clone(), st.amount(t.delivered)
	st.PurgeNeeded, st.Fault = latch, ""
	if latch && reason != nil {
		st.Fault = reason.Error()
	}
	delivered := t.delivered.Notes()
	var res dispenser.Result
	var fail error
	switch {
	case out == outUnknown:
		// The commands before the unknown one are counted exactly (above:
		// picked, rejected); assume the unknown command took everything it
		// asked for. The dispense as a whole is count unknown.
		if delivered > 0 {
			reason = fmt.Errorf("%w (earlier commands delivered %s exactly; the rest is unknown)", reason, t.delivered)
			if latch {
				st.Fault = reason.Error()
			}
		}
		for i, n := range unknownN {
			if ids[i] != "" && n > 0 {
				u := st.unit(ids[i])
				u.Count -= n
				u.Picked += n
			}
		}
		last.CountKnown, last.State = false, dispenser.PresentFailed
		last.Dispensed, last.DispensedAmount, last.Presented, last.PresentedAmount = nil, 0, nil, 0
		fail = &dispenser.DispenseError{Code: dispenser.Code(dispenser.ErrCountUnknown), CountKnown: false,
			Err: fmt.Errorf("%w: %v", dispenser.ErrCountUnknown, reason)}
	case out == outDone || delivered == mix.Notes():
		last.State = dispenser.PresentPresented
		last.ErrorCode = ""
		res = dispenser.Result{Mix: t.delivered.Clone(), Amount: last.PresentedAmount}
		if t.rejected.Notes() > 0 {
			res.Rejected = t.rejected.Clone()
		}
	case out == outNotRun && t.picked.Notes() == 0:
		// The device refused the first command frame: nothing moved.
		*last = pre.last()
		st.PurgeNeeded, st.Fault = pre.PurgeNeeded, pre.Fault
		if err := d.save(st); err != nil {
			return dispenser.Result{}, err
		}
		return dispenser.Result{}, notReady(reason)
	case delivered > 0:
		last.State = dispenser.PresentPresented
		fail = &dispenser.DispenseError{Code: dispenser.Code(dispenser.ErrShortDispense), Dispensed: t.delivered.Clone(), CountKnown: true,
			Err: fmt.Errorf("%w: %v", dispenser.ErrShortDispense, reason)}
	case t.picked.Notes() > 0:
		last.State = dispenser.PresentFailed
		fail = &dispenser.DispenseError{Code: dispenser.Code(dispenser.ErrJam), Dispensed: t.picked.Clone(), CountKnown: true,
			Err: fmt.Errorf("%w: %v", dispenser.ErrJam, reason)}
	default:
		last.State = dispenser.PresentFailed
		fail = &dispenser.DispenseError{Code: dispenser.Code(dispenser.ErrShortDispense), Dispensed: dispenser.Mix{}, CountKnown: true,
			Err: fmt.Errorf("%w: nothing dispensed: %v", dispenser.ErrShortDispense, reason)}
	}
	if fail != nil {
		last.ErrorCode = dispenser.Code(fail)
	}
	if err := d.save(st); err != nil {
		// The device acted, the record failed: the write-ahead record
		// (count unknown, purge needed) stays in the file.
		d.log.Error("lcdm: state not saved after a dispense", "err", err)
		if fail == nil {
			return res, nil
		}
		return dispenser.Result{}, fail
	}
	d.log.Info("lcdm dispense done", "seq", last.Seq, "delivered", t.delivered.String(), "picked", t.picked.String(),
		"rejected", t.rejected.String(), "count_known", last.CountKnown, "code", dispenser.Code(fail), "purge_needed", st.PurgeNeeded)
	if fail != nil {
		return dispenser.Result{}, fail
	}
	return res, nil
}
