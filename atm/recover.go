package atm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/store"
)

// Recover settles every session a crash or power cut left unfinished, before
// any customer is served. It is the one place a session leaves an in-flight
// state without Next: what the dispenser reports replaces the events that
// were lost. A session that was dispensing is "in doubt": the core asks the
// dispenser what was really paid (PresentStatuser), retracts notes still at
// the exit, reverses what was not paid, marks the session for the operator
// and journals it. It never dispenses for it again.
//
// A dispenser that cannot answer (offline, not ready) is not evidence: the
// session keeps its committed state, the terminal stays out of service
// ("recovery") and Run asks again every few seconds until it can settle it.
// Notes no session owns any more are cleared at the end.
func (a *ATM) Recover(ctx context.Context) error {
	skip := ""
	if a.cur != nil {
		skip = a.cur.ID
	}
	settled, unrecovered, err := a.recoverPass(ctx, skip)
	if err != nil {
		return err
	}
	a.settledByRecovery(settled, unrecovered)
	return nil
}

// retryRecovery runs a recovery pass in the background (the dispenser may
// take long to answer) and hands its outcome to the owner goroutine.
func (a *ATM) retryRecovery(ctx context.Context) {
	skip := ""
	if a.cur != nil {
		skip = a.cur.ID
	}
	a.recovering = true
	a.background(func() {
		settled, unrecovered, err := a.recoverPass(ctx, skip)
		a.post(func(ctx context.Context) {
			a.recovering = false
			if err != nil {
				a.stop(err)
				return
			}
			a.settledByRecovery(settled, unrecovered)
			a.refreshService(ctx)
		})
	})
}

// settledByRecovery records a recovery pass's outcome on the owner
// goroutine: a dispense command repeated while its session waited for
// recovery (acceptCommand parks it) learns the outcome now.
func (a *ATM) settledByRecovery(settled []Session, unrecovered int) {
	a.unrecovered = unrecovered
	for _, s := range settled {
		a.answer(s.ID, s.result())
	}
}

// recoverPass settles what it can of the sessions left in flight (all but
// skip) and returns them, with how many still wait for the dispenser. It
// touches no state of the owner goroutine, so it may run in the background.
func (a *ATM) recoverPass(ctx context.Context, skip string) (settled []Session, unrecovered int, err error) {
	if err := a.initUnitCounters(ctx); err != nil {
		return nil, 0, err
	}
	if err := a.ensureSessionIndex(); err != nil {
		return nil, 0, fmt.Errorf("atm: recovery: %w", err)
	}
	var open []Session
	err = a.db.View(func(tx *store.Tx) error {
		all, err := openSessions(tx)
		for _, s := range all {
			if !s.State.Terminal() && s.ID != skip {
				open = append(open, s)
			}
		}
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("atm: recovery: %w", err)
	}
	for i := range open {
		ns, err := a.recoverOne(ctx, &open[i])
		switch {
		case errors.Is(err, errDeviceUnavailable):
			// Not evidence of anything: keep the session as it is, stay
			// out of service, and ask the dispenser again later.
			unrecovered++
			a.log.Warn("recovery waits for the dispenser", "session", short(open[i].ID), "state", open[i].State, "err", err)
		case err != nil:
			return settled, unrecovered, err
		default:
			settled = append(settled, ns)
		}
	}
	if unrecovered == 0 {
		a.clearLeftovers(ctx)
	}
	return settled, unrecovered, nil
}

// RecoveryTimeout bounds each dispenser request recovery makes: a device
// that does not answer in time is not evidence of anything (the session
// waits and recovery asks again), except for a retract, whose outcome is
// then unknown (the operator counts).
const RecoveryTimeout = 30 * time.Second

// errDeviceUnavailable: the dispenser could not be asked what it did.
var errDeviceUnavailable = errors.New("atm: dispenser unavailable for recovery")

// clearLeftovers clears notes no session owns any more: notes in the
// stacker are purged to the reject bin (reset), notes at the exit are
// retracted, so the next customer's dispense is not refused.
func (a *ATM) clearLeftovers(ctx context.Context) {
	p, ok := a.cfg.Dispenser.(PresentStatuser)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, RecoveryTimeout)
	defer cancel()
	ps, err := p.PresentStatus(ctx)
	if err != nil {
		return
	}
	if a.countInterruptedClear(ps) {
		return
	}
	var (
		what                string
		rejected, retracted dispenser.Mix
		intent              bool // the clear moves notes that must be counted
	)
	st, serr := a.dispenserStatus(ctx)
	switch {
	case serr == nil && st.Device == dispenser.StateHardwareError:
		// A fault left by the last run (a jam, say): reset, as an ATM does
		// at start; notes stuck inside go to the reject bin. Notes of a
		// jam were counted as rejected when the jam was committed.
		if r, ok := a.cfg.Dispenser.(Resetter); ok {
			err, what = r.Reset(ctx), "device fault cleared by a reset at start; notes inside purged to the reject bin"
		}
	case ps.State == dispenser.PresentStacked:
		if r, ok := a.cfg.Dispenser.(Resetter); ok {
			if intent = a.markClear(ps); !intent {
				return
			}
			err, what = r.Reset(ctx), "notes left in the stacker purged to the reject bin"
			rejected = ps.Dispensed
		}
	case ps.State == dispenser.PresentPresented:
		if intent = a.markClear(ps); !intent {
			return
		}
		var res dispenser.Result
		res, err = a.cfg.Dispenser.Retract(ctx)
		what, retracted = "notes left at the exit retracted", res.Mix
	}
	if what == "" {
		return
	}
	if err != nil {
		a.log.Error("cannot clear notes left in the dispenser", "err", err)
		return
	}
	a.log.Warn(what)
	if err := a.db.UpdateLabeled("leftovers", func(tx *store.Tx) error {
		if err := countUnits(tx, a.cashUnits(), nil, retracted, rejected); err != nil {
			return err
		}
		if intent {
			if err := setClearMark(tx, 0); err != nil {
				return err
			}
		}
		_, err := tx.AppendJournal(store.Entry{Kind: "LEFTOVER NOTES CLEARED", Text: what, Data: map[string]string{"mix": ps.Dispensed.String()}})
		return err
	}); err != nil {
		a.log.Error("journal", "err", err)
	}
}

// clearMark is the store counter that holds the device's dispense sequence
// number whose leftover notes the ATM is clearing (0: none). It is
// committed before the retract or purge and reset by the commit that
// counts the notes, so that a crash between the two is recognised at the
// next start (countInterruptedClear).
const clearMark = "leftover_clear_seq"

func setClearMark(tx *store.Tx, seq uint64) error {
	cur, err := tx.Counter(clearMark)
	if err != nil {
		return err
	}
	_, err = tx.AddCounter(clearMark, int64(seq)-cur)
	return err
}

// markClear commits the intent to clear the notes of dispense ps.Seq
// before the device moves them; false if it could not be committed (then
// nothing is moved).
func (a *ATM) markClear(ps dispenser.PresentStatus) bool {
	err := a.db.UpdateLabeled("leftovers-intent", func(tx *store.Tx) error { return setClearMark(tx, ps.Seq) })
	if err != nil {
		a.log.Error("leftover notes left in place: intent not committed", "err", err)
		return false
	}
	return true
}

// countInterruptedClear counts the notes of a leftover clear that the
// device carried out but the ATM did not record (it stopped between the
// retract or purge and the commit), and reports whether it did.
func (a *ATM) countInterruptedClear(ps dispenser.PresentStatus) bool {
	var mark int64
	if err := a.db.View(func(tx *store.Tx) (err error) { mark, err = tx.Counter(clearMark); return err }); err != nil || mark == 0 {
		return false
	}
	if uint64(mark) != ps.Seq || !ps.CountKnown || (ps.State != dispenser.PresentRetracted && ps.State != dispenser.PresentRejected) {
		return false // the clear did not happen: it is done again
	}
	retracted, rejected := ps.Retracted.Clone(), notPresented(&ps)
	text := fmt.Sprintf("leftover notes cleared before a restart, counted now: retracted %s, rejected %s", retracted, rejected)
	a.log.Warn(text)
	if err := a.db.UpdateLabeled("leftovers", func(tx *store.Tx) error {
		if err := countUnits(tx, a.cashUnits(), nil, retracted, rejected); err != nil {
			return err
		}
		if err := setClearMark(tx, 0); err != nil {
			return err
		}
		_, err := tx.AppendJournal(store.Entry{Kind: "LEFTOVER NOTES CLEARED", Text: text, Data: map[string]string{"mix": ps.Dispensed.String()}})
		return err
	}); err != nil {
		a.log.Error("journal", "err", err)
	}
	return true
}

// Resolution is how recovery settles a session.
type Resolution struct {
	State    State
	Paid     int64  // in the customer's hands
	Queue    string // KindAdvice, KindReversal or ""
	Retract  bool   // notes are at the exit: retract them first
	Purge    bool   // notes are in the stacker: reset the device (to the reject bin)
	Operator bool
	Text     string
}

// Resolve is recovery's pure decision for a session found in state s.State,
// given what the dispenser reports about its last dispense (ps nil: the
// dispenser cannot say).
func Resolve(s Session, ps *dispenser.PresentStatus) Resolution {
	switch s.State {
	case StateAwaitingPhone:
		return Resolution{State: StateExpired, Text: "session ended by restart"}
	case StateAuthorizing:
		return Resolution{State: StateFailed, Queue: KindReversal, Operator: true,
			Text: "authorization interrupted by restart: outcome unknown, reversing"}
	}
	if ps == nil {
		return Resolution{State: StateInDoubt, Operator: true, Text: "dispenser cannot report the last dispense; operator must count"}
	}
	if !ps.Of(s.DispenseNonce, s.Token) {
		if s.State != StateDispensing {
			// The ATM committed this session's notes as counted by the
			// device: a device with no record of them lost its memory or
			// was swapped. Its word alone never reverses a withdrawal.
			return Resolution{State: StateInDoubt, Operator: true,
				Text: "the dispenser has no record of this session's dispense, which the ATM recorded (device memory lost or device replaced); operator must count"}
		}
		return Resolution{State: StateFailed, Queue: KindReversal, Operator: true,
			Text: "the dispenser has no dispense for this session: nothing paid, reversing"}
	}
	if !ps.CountKnown {
		return Resolution{State: StateInDoubt, Operator: true, Text: "dispensed count unknown; operator must count"}
	}
	switch ps.State {
	case dispenser.PresentTaken:
		paid := ps.PaidAmount()
		return Resolution{State: StateCompleted, Paid: paid, Queue: queueKind(paid, s.Amount), Operator: true,
			Text: fmt.Sprintf("recovered: customer took %d", paid)}
	case dispenser.PresentPresented:
		return Resolution{State: StateRetracted, Retract: true, Queue: KindReversal, Operator: true,
			Text: "recovered: notes at the exit retracted, reversing"}
	case dispenser.PresentStacked:
		return Resolution{State: StateFailed, Purge: true, Queue: KindReversal, Operator: true,
			Text: "recovered: notes never presented, purged to the reject bin, reversing"}
	default: // retracted, rejected, failed, none: nothing in the customer's hands
		st := StateFailed
		if ps.State == dispenser.PresentRetracted {
			st = StateRetracted
		}
		return Resolution{State: st, Queue: KindReversal, Operator: true,
			Text: fmt.Sprintf("recovered: last dispense %s, nothing paid, reversing", ps.State)}
	}
}

func (a *ATM) recoverOne(ctx context.Context, s *Session) (Session, error) {
	var ps *dispenser.PresentStatus
	if s.State.InFlight() && s.State != StateAuthorizing {
		if p, ok := a.cfg.Dispenser.(PresentStatuser); ok {
			pctx, cancel := context.WithTimeout(ctx, RecoveryTimeout)
			got, err := p.PresentStatus(pctx)
			cancel()
			switch {
			case errors.Is(err, dispenser.ErrUnverifiable):
				// Waiting will not make the device's word believable: as
				// with a device that cannot report, an operator counts.
				a.log.Error("ALARM: recovery cannot verify the dispenser's account of the last dispense; session left to an operator",
					"session", s.ID, "err", err)
			case err != nil:
				return Session{}, fmt.Errorf("%w: %w", errDeviceUnavailable, err)
			default:
				ps = &got
			}
		}
	}
	r := Resolve(*s, ps)
	ch := change{kind: "RECOVERY", text: r.Text}
	if ps != nil && ps.Of(s.DispenseNonce, s.Token) && s.State == StateDispensing {
		// The crash came before the dispense was recorded: count it now.
		ch.dispensed = ps.Dispensed
	}
	if ret, rej, ok := movedBeforeCrash(*s, ps); ok {
		ch.retracted, ch.rejected = ret, rej
		ch.text += fmt.Sprintf("; the device had already moved this session's notes (retracted %s, rejected %s): counted", ret, rej)
	}
	if r.Retract {
		rctx, cancel := context.WithTimeout(ctx, RecoveryTimeout)
		res, err := a.cfg.Dispenser.Retract(rctx)
		cancel()
		switch {
		case errors.Is(err, dispenser.ErrNoItems):
			r = Resolution{State: StateCompleted, Paid: ps.PresentedAmount, Queue: queueKind(ps.PresentedAmount, s.Amount), Operator: true,
				Text: "recovered: notes were taken before the retract"}
			ch.text = r.Text
		case errors.Is(err, dispenser.ErrDeviceNotReady) || ctx.Err() != nil:
			return Session{}, fmt.Errorf("%w: retract: %w", errDeviceUnavailable, err)
		case err != nil:
			r = Resolution{State: StateInDoubt, Operator: true, Text: "recovery retract failed; operator must count: " + err.Error()}
			ch.text = r.Text
		default:
			ch.retracted = res.Mix
		}
	}
	if r.Purge {
		if rs, ok := a.cfg.Dispenser.(Resetter); ok {
			rctx, cancel := context.WithTimeout(ctx, RecoveryTimeout)
			err := rs.Reset(rctx)
			cancel()
			switch {
			case errors.Is(err, dispenser.ErrDeviceNotReady) || ctx.Err() != nil:
				// Not evidence: the session keeps its state and the next
				// pass sees what the device did (movedBeforeCrash).
				return Session{}, fmt.Errorf("%w: reset: %w", errDeviceUnavailable, err)
			case err != nil:
				// The notes stay stacked, no session owns them after this
				// commit: clearLeftovers purges and counts them.
				a.log.Error("recovery: reset", "err", err)
			default:
				ch.rejected = ps.Dispensed
			}
		}
	}
	ns := *s
	ns.State, ns.Paid, ns.Operator = r.State, r.Paid, r.Operator
	ns.Reason = "recovered"
	if s.State == StateAuthorizing {
		ns.Reason = causeHostUnknown
	}
	ns.Updated = a.now().UTC()
	if r.Queue != "" {
		ch.queue = []string{r.Queue}
	}
	if r.Paid > 0 {
		ch.daily = r.Paid
	}
	ch.data = map[string]string{"from": s.State.String()}
	if err := a.write(&ns, ch); err != nil {
		return Session{}, fmt.Errorf("atm: recovery of session %s: %w", short(s.ID), err)
	}
	a.log.Warn("recovered session", "session", short(s.ID), "from", s.State, "to", ns.State, "paid", r.Paid, "queued", r.Queue, "operator", r.Operator)
	return ns, nil
}

// movedBeforeCrash reports the notes of session s that the device had
// already taken back in when the ATM stopped, as its last present status
// ps shows them: a retract to the retract bin or a purge to the reject bin
// (the flow's retract, or recovery's own retract or purge in an earlier
// pass) done by the device, with the commit that would have counted them
// lost; or a jam whose notes are stuck inside, which the reset at start
// purges, counted as the flow counts a jam. s is in flight, so no commit
// has counted them: the recovery commit counts them once.
func movedBeforeCrash(s Session, ps *dispenser.PresentStatus) (retracted, rejected dispenser.Mix, ok bool) {
	if ps == nil || !ps.Of(s.DispenseNonce, s.Token) || !ps.CountKnown {
		return nil, nil, false
	}
	switch ps.State {
	case dispenser.PresentRetracted, dispenser.PresentRejected:
		// Notes at the exit went to the retract bin, notes never
		// presented to the reject bin.
		return ps.Retracted.Clone(), notPresented(ps), true
	case dispenser.PresentFailed:
		if s.State == StateDispensing && ps.Dispensed.Notes() > 0 {
			return nil, ps.Dispensed.Clone(), true
		}
	}
	return nil, nil, false
}

// notPresented is what the last dispense took from the cassettes and never
// brought to the exit.
func notPresented(ps *dispenser.PresentStatus) dispenser.Mix {
	m := dispenser.Mix{}
	for id, n := range ps.Dispensed {
		if left := n - ps.Presented[id]; left > 0 {
			m[id] = left
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// initUnitCounters records the cassettes' loaded counts the first time the
// appliance sees them.
func (a *ATM) initUnitCounters(ctx context.Context) error {
	st, err := a.dispenserStatus(ctx)
	if err != nil {
		a.log.Warn("dispenser status at start", "err", err)
		return nil
	}
	return a.db.UpdateLabeled("units", func(tx *store.Tx) error {
		have, err := tx.UnitCounters()
		if err != nil {
			return err
		}
		if len(have) > 0 {
			return nil
		}
		for _, u := range st.Units {
			if err := tx.PutUnitCounters(store.UnitCounters{UnitID: u.ID, Denomination: u.Denomination, Currency: u.Currency,
				Loaded: int64(u.Count), Remaining: int64(u.Count)}); err != nil {
				return err
			}
		}
		return nil
	})
}

// open reports whether s belongs in the store's open-session index: not
// finished, or waiting for an operator's count.
func (s *Session) open() bool { return !s.State.Terminal() || s.State == StateInDoubt }

// ensureSessionIndex builds the open-session index of a store written
// before it existed, once, from a scan of every session inside one write
// transaction (no session can change meanwhile). Afterwards a start, and
// the in-doubt list, read only the open sessions, whatever the number of
// sessions the terminal has had.
func (a *ATM) ensureSessionIndex() error {
	return a.db.UpdateLabeled("session-index", func(tx *store.Tx) error {
		if _, err := tx.OpenSessions(); !errors.Is(err, store.ErrNoSessionIndex) {
			return err
		}
		var open []string
		err := tx.ForEachSession(func(id string, v []byte) error {
			var s Session
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("atm: session %s: %w", short(id), err)
			}
			if s.open() {
				open = append(open, id)
			}
			return nil
		})
		if err != nil {
			return err
		}
		a.log.Info("open-session index built", "open", len(open))
		return tx.IndexSessions(open)
	})
}

// openSessions reads the sessions of the open-session index, or every
// session of a store that has none yet (store.ErrNoSessionIndex) and keeps
// the open ones.
func openSessions(tx *store.Tx) ([]Session, error) {
	var out []Session
	ids, err := tx.OpenSessions()
	if errors.Is(err, store.ErrNoSessionIndex) {
		err = tx.ForEachSession(func(id string, v []byte) error {
			var s Session
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("atm: session %s: %w", short(id), err)
			}
			if s.open() {
				out = append(out, s)
			}
			return nil
		})
		return out, err
	}
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		v, err := tx.GetSession(id)
		if err != nil {
			return nil, err
		}
		var s Session
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("atm: session %s: %w", short(id), err)
		}
		out = append(out, s)
	}
	return out, nil
}
