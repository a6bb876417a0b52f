package atm

import (
	"context"
	"errors"
	"fmt"
	"github.com/cardless-atm/cardless/atm/host"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/wire"
)

// The actions below run in their own goroutine, each after the state that
// protects it has been committed, and post their outcome back to the owner
// goroutine as the next event.

// step runs act in a goroutine and hands its outcome to on, on the owner
// goroutine, for the session id if it is still current and in state want.
func (a *ATM) step(id string, want State, act func(ctx context.Context) func(s *Session)) {
	ctx := a.baseCtx()
	a.background(func() {
		on := act(ctx)
		if ctx.Err() != nil {
			// Shutting down: the device call may have been cut short. Its
			// result is not evidence of anything; the session stays in its
			// committed state and Recover settles it at the next start.
			a.log.Warn("shutdown during a device or host step; recovery will settle the session", "session", short(id), "state", want)
			return
		}
		a.post(func(context.Context) {
			s := a.cur
			if s == nil || s.ID != id || s.State != want {
				a.log.Error("stale action result ignored", "session", short(id), "want", want)
				return
			}
			on(s)
		})
	})
}

// advance commits ch and then starts what the new state stands for. A commit
// error stops the session where it is (nothing done unrecorded), takes the
// terminal out of service and stops the core (ErrStorage): the appliance
// restarts and Recover settles the session from its last committed state.
func (a *ATM) advance(s *Session, ch change) {
	if err := a.commit(s, ch); err != nil {
		a.log.Error("cannot commit state change; stopping for recovery", "session", short(s.ID), "event", ch.ev, "err", err)
		a.storageFailed(err)
		a.setService(false, "storage")
		a.stop(fmt.Errorf("%w: session %s, event %s: %w", ErrStorage, short(s.ID), ch.ev, err))
		return
	}
	a.log.Info("session", "session", short(s.ID), "state", s.State, "event", ch.ev)
	if a.cfg.Observer != nil {
		a.cfg.Observer(*s)
	}
	a.publish()
	switch s.State {
	case StateDispensing:
		a.dispense(*s)
	case StatePresenting:
		a.present(*s)
	case StateAwaitingTake:
		a.waitTaken(*s)
	case StateRetracting:
		a.retract(*s)
	}
	if s.State.Terminal() {
		a.finish(s)
	}
}

func (a *ATM) authorize(s Session, cmd Command) {
	a.step(s.ID, StateAuthorizing, func(ctx context.Context) func(*Session) {
		ctx, cancel := context.WithTimeout(ctx, a.cfg.HostTimeout)
		defer cancel()
		resp, err := a.cfg.Host.Authorize(ctx, host.AuthRequest{
			STAN: s.HostSTAN, TerminalID: s.TerminalID, Amount: s.Amount, Currency: s.Currency,
			CustomerID: cmd.CustomerID, PINBlock: cmd.PINBlock, DeviceID: cmd.DeviceID, DispenseNonce: s.DispenseNonce, Time: s.HostTime,
		})
		return func(s *Session) { a.onAuthorized(s, resp, err) }
	})
}

func (a *ATM) onAuthorized(s *Session, resp host.AuthResponse, err error) {
	switch {
	case err == nil && resp.ResponseCode == wire.RCApproved:
		a.advance(s, change{ev: EvApproved, kind: "APPROVED", text: "host approved; dispensing",
			data: map[string]string{"auth": resp.AuthCode, "rrn": resp.RRN},
			mutate: func(ns *Session) {
				ns.ResponseCode, ns.AuthCode, ns.RRN, ns.Token = resp.ResponseCode, resp.AuthCode, resp.RRN, resp.Token
			}})
	case err == nil:
		a.advance(s, change{ev: EvDeclined, kind: "DECLINED", text: "host declined",
			data: map[string]string{"rc": resp.ResponseCode, "rrn": resp.RRN},
			mutate: func(ns *Session) {
				// The host's retrieval reference goes back to the phone
				// with the decline: the bank's app quotes it to the customer.
				ns.ResponseCode, ns.RRN, ns.Reason = resp.ResponseCode, resp.RRN, "declined"
			}})
	case errors.Is(err, host.ErrUnavailable):
		a.advance(s, change{ev: EvHostUnavailable, kind: "HOST UNAVAILABLE", text: "host link down; nothing sent",
			mutate: func(ns *Session) { ns.ResponseCode, ns.Reason = wire.RCIssuerInoperative, "host_unavailable" }})
	default:
		// Outcome unknown: the host may have debited. Reverse, never retry.
		a.advance(s, change{ev: EvHostUnknown, kind: "HOST NO ANSWER", text: "authorization outcome unknown: " + err.Error(),
			mutate: func(ns *Session) { ns.ResponseCode, ns.Reason = wire.RCIssuerInoperative, causeHostUnknown },
			queue:  []string{KindReversal}})
	}
}

func (a *ATM) dispense(s Session) {
	a.step(s.ID, StateDispensing, func(ctx context.Context) func(*Session) {
		res, err := a.cfg.Dispenser.Dispense(ctx, s.Mix, s.Token)
		return func(s *Session) { a.onDispensed(s, res, err) }
	})
}

func (a *ATM) onDispensed(s *Session, res dispenser.Result, err error) {
	var de *dispenser.DispenseError
	switch {
	case err == nil:
		ch := change{ev: EvDispensed, kind: "CASH DISPENSED", text: "notes counted: " + res.Mix.String(),
			dispensed: res.Mix,
			mutate:    func(ns *Session) { ns.Dispensed, ns.DispensedMix = res.Amount, res.Mix }}
		if res.Rejected.Notes() > 0 {
			// Notes the device diverted to its reject bin on the way out
			// left the cassettes too.
			ch.text += "; diverted to the reject bin: " + res.Rejected.String()
			ch.dispensed = res.Mix.Plus(res.Rejected)
			ch.rejected = res.Rejected.Clone()
		}
		a.advance(s, ch)
	case errors.As(err, &de) && de.CountKnown && errors.Is(err, dispenser.ErrJam):
		// The picked notes are stuck inside; a reset purges them to the
		// reject bin. Nothing reached the customer: reverse in full.
		a.advance(s, change{ev: EvDispenseFailed, kind: "DISPENSE JAMMED", text: fmt.Sprintf("%v; notes purged to the reject bin", err),
			data: map[string]string{"xfs": dispenser.Code(err)}, dispensed: de.Dispensed, rejected: de.Dispensed,
			mutate: func(ns *Session) { ns.Reason = "dispense_failed:" + dispenser.Code(err) },
			queue:  []string{KindReversal}})
		a.resetDevice()
	case errors.As(err, &de) && de.CountKnown && de.Dispensed.Notes() > 0:
		amt, _ := de.Dispensed.Amount(a.cashUnits())
		a.advance(s, change{ev: EvPartialDispense, kind: "PARTIAL DISPENSE", text: fmt.Sprintf("%v; notes counted: %s", err, de.Dispensed),
			dispensed: de.Dispensed,
			mutate:    func(ns *Session) { ns.Dispensed, ns.DispensedMix, ns.Reason = amt, de.Dispensed, dispenser.Code(err) }})
	case errors.As(err, &de) && !de.CountKnown, errors.Is(err, dispenser.ErrCountUnknown):
		a.advance(s, change{ev: EvCountUnknown, kind: "IN DOUBT", text: "dispensed count unknown; operator must count: " + err.Error(),
			mutate: func(ns *Session) { ns.Reason, ns.Operator = "count_unknown", true }})
	case err != nil && (de != nil || isNoMove(err)):
		// Nothing left the cassettes: the whole amount goes back.
		a.advance(s, change{ev: EvDispenseFailed, kind: "DISPENSE FAILED", text: "no notes dispensed: " + err.Error(),
			data:   map[string]string{"xfs": dispenser.Code(err)},
			mutate: func(ns *Session) { ns.Reason = "dispense_failed:" + dispenser.Code(err) },
			queue:  []string{KindReversal}})
		if errors.Is(err, dispenser.ErrSequence) {
			// Notes of an earlier transaction are still in the device:
			// clear them so the next customer is not refused too.
			a.resetDevice()
		}
	default:
		// Unknown failure (e.g. device link lost mid-command): as in doubt.
		a.advance(s, change{ev: EvCountUnknown, kind: "IN DOUBT", text: "dispense outcome unknown; operator must count: " + err.Error(),
			mutate: func(ns *Session) { ns.Reason, ns.Operator = "count_unknown", true }})
	}
}

// isNoMove reports refusals that happen before any note moves.
func isNoMove(err error) bool {
	return dispenser.IsTokenError(err) || errors.Is(err, dispenser.ErrNotDispensable) ||
		errors.Is(err, dispenser.ErrTooManyItems) || errors.Is(err, dispenser.ErrDeviceNotReady) ||
		errors.Is(err, dispenser.ErrSequence)
}

func (a *ATM) present(s Session) {
	a.step(s.ID, StatePresenting, func(ctx context.Context) func(*Session) {
		err := a.cfg.Dispenser.Present(ctx)
		return func(s *Session) {
			if err != nil {
				a.advance(s, change{ev: EvPresentFailed, kind: "PRESENT FAILED", text: err.Error()})
				return
			}
			a.advance(s, change{ev: EvPresented, kind: "CASH PRESENTED", text: "notes presented: " + s.DispensedMix.String(),
				mutate: func(ns *Session) { ns.TakeDeadline = a.now().UTC().Add(a.cfg.TakeTimeout) }})
		}
	})
}

func (a *ATM) waitTaken(s Session) {
	a.takeGen++
	gen := a.takeGen
	timeout := s.TakeDeadline.Sub(a.now())
	if s.TakeDeadline.IsZero() || timeout > a.cfg.TakeTimeout {
		timeout = a.cfg.TakeTimeout
	}
	ctx, cancel := context.WithCancel(a.baseCtx())
	a.takeCancel = cancel
	// The take-cash timer is the core's own, on its clock: the device's
	// wait (given the same timeout) is only a backstop. When the timer
	// fires first the device wait is abandoned and the notes retracted.
	timer := a.cfg.Clock.AfterFunc(timeout, func() {
		a.post(func(context.Context) {
			if gen != a.takeGen || a.cur == nil || a.cur.ID != s.ID || a.cur.State != StateAwaitingTake {
				return
			}
			a.takeGen++ // the device wait's result is stale from now on
			cancel()
			a.advance(a.cur, change{ev: EvTakeTimeout, kind: "CASH NOT TAKEN", text: "notes not taken in time"})
		})
	})
	a.step(s.ID, StateAwaitingTake, func(context.Context) func(*Session) {
		taken, err := a.cfg.Dispenser.WaitTaken(ctx, timeout)
		return func(s *Session) {
			if gen != a.takeGen {
				return // superseded by a longer wait (more time) or by the timer
			}
			timer.Stop()
			cancel()
			if err == nil && taken {
				a.taken(s)
				return
			}
			text := "notes not taken in time"
			if err != nil {
				text = "take-cash wait failed: " + err.Error()
			}
			a.advance(s, change{ev: EvTakeTimeout, kind: "CASH NOT TAKEN", text: text})
		}
	})
}

// extendTake gives the customer one more take-cash period. It is allowed
// once per session: notes left at the exit are exposed to anyone passing.
func (a *ATM) extendTake(s *Session) error {
	if s.TakeExtended {
		return errors.New("atm: the take-cash timer was already extended")
	}
	ns := *s
	ns.TakeExtended = true
	ns.TakeDeadline = a.now().UTC().Add(a.cfg.TakeTimeout)
	if err := a.write(&ns, change{kind: "MORE TIME", text: "customer asked for more time to take the cash"}); err != nil {
		return err
	}
	*s = ns
	if a.takeCancel != nil {
		a.takeCancel()
	}
	a.publish()
	a.waitTaken(ns)
	return nil
}

// taken completes the session: the customer has the notes. A full payment
// is confirmed by a completion advice, a partial one by a partial reversal.
func (a *ATM) taken(s *Session) {
	a.advance(s, change{ev: EvTaken, kind: "CASH TAKEN", text: fmt.Sprintf("customer took %d of %d", s.Dispensed, s.Amount),
		mutate: func(ns *Session) { ns.Paid = ns.Dispensed },
		queue:  []string{queueKind(s.Dispensed, s.Amount)}, daily: s.Dispensed})
}

func (a *ATM) retract(s Session) {
	a.step(s.ID, StateRetracting, func(ctx context.Context) func(*Session) {
		res, err := a.cfg.Dispenser.Retract(ctx)
		return func(s *Session) {
			switch {
			case errors.Is(err, dispenser.ErrNoItems):
				a.taken(s)
			case err != nil:
				a.advance(s, change{ev: EvRetractFailed, kind: "IN DOUBT", text: "retract failed; operator must count: " + err.Error(),
					mutate: func(ns *Session) { ns.Reason, ns.Operator = "retract_failed", true }})
			default:
				ch := change{ev: EvRetracted, kind: "CASH RETRACTED", text: "notes retracted: " + res.Mix.String(),
					retracted: res.Mix,
					mutate:    func(ns *Session) { ns.Paid, ns.Reason = 0, causeNotTaken },
					queue:     []string{KindReversal}}
				if s.TakeDeadline.IsZero() {
					// Never presented (the present failed): the device
					// purges stacked notes to the reject bin, not the
					// retract bin.
					ch.kind, ch.text, ch.retracted, ch.rejected = "CASH REJECTED", "notes never presented, purged to the reject bin: "+res.Mix.String(), nil, res.Mix
					ch.mutate = func(ns *Session) { ns.Paid, ns.Reason = 0, "present_failed" }
				}
				a.advance(s, ch)
			}
		}
	})
}

// resetDevice clears notes left in the transport after a fault (to the
// reject bin) so the terminal can serve the next customer.
func (a *ATM) resetDevice() {
	r, ok := a.cfg.Dispenser.(Resetter)
	if !ok {
		return
	}
	a.background(func() {
		ctx, cancel := context.WithTimeout(a.baseCtx(), 30*time.Second)
		defer cancel()
		if err := r.Reset(ctx); err != nil {
			a.log.Error("dispenser reset failed", "err", err)
			return
		}
		a.log.Info("dispenser reset: notes purged to the reject bin")
	})
}
