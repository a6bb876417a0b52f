package xfs4iotsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

var nameSegmentRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

// Commands served, by interface (Common.Capabilities lists them).
var interfaceCommands = []struct {
	name     string
	commands []string
	events   []string
}{
	{"Common", []string{"Common.Capabilities", "Common.ClearCommandNonce", "Common.GetCommandNonce", "Common.Status"},
		[]string{"Common.NonceClearedEvent", "Common.StatusChangedEvent"}},
	{"CashDispenser", []string{"CashDispenser.Denominate", "CashDispenser.Dispense", "CashDispenser.GetPresentStatus", "CashDispenser.Present", "CashDispenser.Reject"},
		[]string{"CashDispenser.IncompleteDispenseEvent"}},
	{"CashManagement", []string{"CashManagement.Reset", "CashManagement.Retract"},
		[]string{"CashManagement.ItemsPresentedEvent", "CashManagement.ItemsTakenEvent"}},
	{"Storage", []string{"Storage.GetStorage"},
		[]string{"Storage.CountsChangedEvent", "Storage.StorageThresholdEvent"}},
}

func (s *Server) supported(publisher bool, name string) bool {
	if publisher {
		return name == "ServicePublisher.GetServices"
	}
	return payloadFor(name) != nil
}

// payloadFor returns a new payload value for a service command, nil for a
// command the service does not serve.
func payloadFor(name string) any {
	switch name {
	case "ServicePublisher.GetServices", "Common.Capabilities", "Common.Status", "Common.GetCommandNonce",
		"Common.ClearCommandNonce", "Storage.GetStorage", "CashDispenser.Reject":
		return &emptyPayload{}
	case "CashDispenser.Denominate":
		return &denominatePayload{}
	case "CashDispenser.Dispense":
		return &dispensePayload{}
	case "CashDispenser.Present":
		return &positionPayload{}
	case "CashManagement.Retract":
		return &retractPayload{}
	case "CashManagement.Reset":
		return &resetPayload{}
	case "CashDispenser.GetPresentStatus":
		return &presentStatusPayload{}
	}
	return nil
}

// result helpers
func success(payload any) outcome { return outcome{code: "success", payload: payload} }
func failure(code, desc string) outcome {
	return outcome{code: code, desc: desc}
}
func commandError(errorCode, desc string) outcome {
	return outcome{code: "commandErrorCode", desc: desc, payload: map[string]any{"errorCode": errorCode}}
}

func (s *Server) getServices() outcome {
	return success(map[string]any{
		"vendorName": s.cfg.VendorName,
		"services":   []map[string]string{{"serviceURI": s.ServiceURL()}},
	})
}

// execute runs one service command on the device.
func (s *Server) execute(cmd *command) outcome {
	ctx := s.ctx
	p := payloadFor(cmd.Name)
	if err := decodePayload(cmd.Payload, p); err != nil { // checked at acknowledge time; defensive
		return failure("invalidData", err.Error())
	}
	switch cmd.Name {
	case "Common.Capabilities":
		return success(s.capabilities())
	case "Common.Status":
		return success(s.status())
	case "Storage.GetStorage":
		return success(map[string]any{"storage": s.storage()})
	case "Common.GetCommandNonce":
		n, err := s.sim.CommandNonce(ctx)
		if err != nil {
			return s.mapError(err)
		}
		return success(map[string]string{"commandNonce": n})
	case "Common.ClearCommandNonce":
		s.sim.ClearCommandNonce()
		return success(nil)
	case "CashDispenser.Denominate":
		return s.denominate(p.(*denominatePayload))
	case "CashDispenser.Dispense":
		return s.dispense(p.(*dispensePayload))
	case "CashDispenser.Present":
		return s.present(p.(*positionPayload))
	case "CashDispenser.Reject":
		return s.reject()
	case "CashManagement.Retract":
		return s.retract(p.(*retractPayload))
	case "CashManagement.Reset":
		return s.reset(p.(*resetPayload))
	case "CashDispenser.GetPresentStatus":
		return s.presentStatus(p.(*presentStatusPayload))
	}
	return failure("unsupportedCommand", cmd.Name+" is not supported")
}

// mapError maps a device error without a command-specific meaning.
func (s *Server) mapError(err error) outcome {
	switch {
	case errors.Is(err, dispenser.ErrDeviceNotReady):
		return failure("deviceNotReady", err.Error())
	case dispenser.IsTokenError(err):
		return failure(dispenser.Code(err), err.Error())
	case errors.Is(err, dispenser.ErrTooManyItems):
		return commandError("tooManyItems", err.Error())
	case errors.Is(err, dispenser.ErrNotDispensable):
		return commandError("notDispensable", err.Error())
	case errors.Is(err, dispenser.ErrNoItems):
		return commandError("noItems", err.Error())
	case errors.Is(err, context.Canceled):
		return failure("canceled", "simulator shutting down")
	}
	return failure("internalError", err.Error())
}

// mixRequest is a denomination request resolved to a mix of notes.
type mixRequest struct {
	mix      dispenser.Mix
	currency string
	amount   int64
}

// resolve turns a DenominateRequestClass into a mix. A non-nil outcome is
// the refusal.
func (s *Server) resolve(req *denominateRequest) (mixRequest, *outcome) {
	fail := func(o outcome) (mixRequest, *outcome) { return mixRequest{}, &o }
	if req == nil || req.Denomination == nil {
		return fail(failure("invalidData", "denomination missing"))
	}
	if req.TellerID != nil {
		return fail(failure("invalidData", "tellerID: not a teller dispenser"))
	}
	app, svc := req.Denomination.App, req.Denomination.Service
	if (app == nil) == (svc == nil) {
		return fail(failure("invalidData", "exactly one of app and service is required"))
	}
	st, _ := s.sim.Status(s.ctx)
	unitByID := map[string]dispenser.CashUnit{}
	held := map[string]bool{}
	for _, u := range st.Units {
		unitByID[u.ID] = u
		held[u.Currency] = true
	}
	// One currency/amount pair, if given.
	parseCurrencies := func(m map[string]json.Number) (string, int64, *outcome) {
		if len(m) == 0 {
			return "", 0, nil
		}
		if len(m) > 1 {
			o := commandError("invalidCurrency", "more than one currency")
			return "", 0, &o
		}
		for cur, n := range m {
			if !currencyRE.MatchString(cur) {
				o := failure("invalidData", fmt.Sprintf("currency %.10q is not an ISO 4217 code", cur))
				return "", 0, &o
			}
			a, err := minorUnits(n, s.cfg.Exponent)
			if err != nil {
				o := failure("invalidData", fmt.Sprintf("amount %.30s: %v", string(n), err))
				return "", 0, &o
			}
			if !held[cur] {
				o := commandError("invalidCurrency", "no unit holds "+cur)
				return "", 0, &o
			}
			return cur, a, nil
		}
		return "", 0, nil
	}
	if app != nil {
		if len(app.CashBox) > 0 && string(app.CashBox) != "null" {
			return fail(failure("invalidData", "cashBox is not supported"))
		}
		if app.Counts == nil {
			return fail(failure("invalidData", "app.counts missing"))
		}
		mix := dispenser.Mix{}
		currency := ""
		for _, id := range slices.Sorted(maps.Keys(app.Counts)) {
			n := app.Counts[id]
			u, ok := unitByID[id]
			if !ok || n < 0 {
				return fail(failure("invalidData", fmt.Sprintf("counts: unknown unit %.20q or negative count", id)))
			}
			if n == 0 {
				continue
			}
			if currency != "" && u.Currency != currency {
				return fail(commandError("invalidDenomination", "counts mix currencies"))
			}
			currency = u.Currency
			mix[id] = n
		}
		cur, amount, o := parseCurrencies(app.Currencies)
		if o != nil {
			return mixRequest{}, o
		}
		if mix.Notes() == 0 {
			return fail(commandError("invalidDenomination", "no notes requested"))
		}
		value, _ := mix.Amount(st.Units)
		if cur != "" && (cur != currency || amount != value) {
			return fail(commandError("invalidDenomination", "currencies do not match the value of counts"))
		}
		return mixRequest{mix: mix, currency: currency, amount: value}, nil
	}
	if len(svc.CashBox) > 0 && string(svc.CashBox) != "null" {
		return fail(failure("invalidData", "cashBox is not supported"))
	}
	if len(svc.Partial) > 0 {
		return fail(failure("invalidData", "partial is not supported"))
	}
	cur, amount, o := parseCurrencies(svc.Currencies)
	if o != nil {
		return mixRequest{}, o
	}
	if cur == "" {
		return fail(failure("invalidData", "service.currencies missing"))
	}
	if svc.Mix != nil && *svc.Mix != "mix1" {
		return fail(commandError("invalidMixNumber", "only mix1 (minimum notes) is supported"))
	}
	mix, err := dispenser.Denominate(amount, st.Units, st.MaxNotes)
	if err != nil {
		o := s.mapError(err)
		return mixRequest{}, &o
	}
	return mixRequest{mix: mix, currency: cur, amount: amount}, nil
}

func (s *Server) denominate(p *denominatePayload) outcome {
	st, _ := s.sim.Status(s.ctx)
	if !st.Ready() {
		return failure("deviceNotReady", "device "+string(st.Device))
	}
	mr, o := s.resolve(p.Request)
	if o != nil {
		return *o
	}
	if mr.mix.Notes() > st.MaxNotes {
		return commandError("tooManyItems", fmt.Sprintf("%d notes, limit %d", mr.mix.Notes(), st.MaxNotes))
	}
	for id, n := range mr.mix {
		for _, u := range st.Units {
			if u.ID == id && (!u.Usable() || u.Count < n) {
				return commandError("notDispensable", "unit "+id+" cannot give the notes")
			}
		}
	}
	return success(map[string]any{"result": s.denominationOf(mr.mix, mr.currency, st.Units)})
}

func (s *Server) dispense(p *dispensePayload) outcome {
	// Every accepted Dispense uses up the command nonce, whatever happens.
	refuse := func(o outcome) outcome {
		s.sim.ClearCommandNonce()
		return o
	}
	mr, o := s.resolve(p.Denomination)
	if o != nil && o.code == "invalidData" {
		return refuse(*o)
	}
	if !enumOK(p.Position, outputPositions) {
		return refuse(failure("invalidData", "position"))
	}
	if p.Position != nil && *p.Position != "outDefault" {
		return refuse(commandError("unsupportedPosition", "only outDefault"))
	}
	if o != nil {
		return refuse(*o)
	}
	token := ""
	if p.Token != nil {
		token = *p.Token
	}
	res, err := s.sim.Dispense(s.ctx, mr.mix, token)
	units := s.cashUnits()
	if err == nil {
		return success(map[string]any{"denomination": s.denominationOf(res.Mix, mr.currency, units)})
	}
	var de *dispenser.DispenseError
	switch {
	case errors.Is(err, dispenser.ErrSequence):
		return commandError("itemsLeft", err.Error())
	case errors.As(err, &de) && errors.Is(err, dispenser.ErrCountUnknown):
		s.mu.Lock()
		for id, n := range mr.mix {
			if n > 0 {
				s.countUnknown[id] = true
			}
		}
		s.mu.Unlock()
		return failure("hardwareError", "dispensed count unknown: notes may have left the cassettes")
	case errors.As(err, &de):
		d := s.denominationOf(de.Dispensed, mr.currency, units)
		out := outcome{payload: map[string]any{"denomination": d}}
		if errors.Is(err, dispenser.ErrJam) {
			out.code, out.desc = "hardwareError", fmt.Sprintf("notes jammed after %d of %d", de.Dispensed.Notes(), mr.mix.Notes())
		} else {
			out.code, out.desc = "commandErrorCode", fmt.Sprintf("short dispense: %d of %d notes", de.Dispensed.Notes(), mr.mix.Notes())
			out.payload = map[string]any{"errorCode": "cashUnitError", "denomination": d}
		}
		out.events = []evt{{"CashDispenser.IncompleteDispenseEvent", d}}
		return out
	}
	return s.mapError(err)
}

func (s *Server) present(p *positionPayload) outcome {
	if !enumOK(p.Position, outputPositions) {
		return failure("invalidData", "position")
	}
	if p.Position != nil && *p.Position != "outDefault" {
		return commandError("unsupportedPosition", "only outDefault")
	}
	err := s.sim.Present(s.ctx)
	var de *dispenser.DispenseError
	switch {
	case err == nil:
	case errors.Is(err, dispenser.ErrSequence):
		return commandError("noItems", "nothing in the stacker")
	case errors.As(err, &de) && errors.Is(err, dispenser.ErrShutter):
		return commandError("shutterNotOpen", "shutter failure: nothing reached the customer")
	default:
		return s.mapError(err)
	}
	pos := map[string]string{"position": "outDefault", "additionalBunches": "0"}
	out := success(map[string]any{"position": pos})
	out.uns = []evt{{"CashManagement.ItemsPresentedEvent", pos}}
	out.afterSend = s.watchTake
	return out
}

func (s *Server) reject() outcome {
	if st := s.deviceState(); st != dispenser.StateOnline {
		return failure("deviceNotReady", "device "+string(st))
	}
	stacker, exit := s.sim.Stacked()
	if stacker.Notes() == 0 || exit.Notes() > 0 {
		return commandError("noItems", "no notes in the stacker")
	}
	if _, err := s.sim.Retract(s.ctx); err != nil {
		return s.mapError(err)
	}
	return success(nil)
}

func (s *Server) retract(p *retractPayload) outcome {
	if l := p.Location; l != nil {
		if !enumOK(l.OutputPosition, outputPositions) || !enumOK(l.RetractArea, retractAreas) {
			return failure("invalidData", "location")
		}
		if l.Index != nil {
			return failure("invalidData", "index is not supported")
		}
		if l.OutputPosition != nil && *l.OutputPosition != "outDefault" {
			return commandError("invalidRetractPosition", "only outDefault")
		}
		if l.RetractArea != nil && *l.RetractArea != "retract" && *l.RetractArea != "reject" {
			return commandError("notRetractArea", "only retract and reject")
		}
	}
	if _, err := s.sim.Retract(s.ctx); err != nil {
		return s.mapError(err)
	}
	return success(nil)
}

func (s *Server) reset(p *resetPayload) outcome {
	if pos := p.Position; pos != nil {
		if !enumOK(pos.Target, itemTargets) {
			return failure("invalidData", "position.target")
		}
		if pos.Unit != nil || pos.Index != nil {
			return commandError("unsupportedPosition", "unit and index are not supported")
		}
		if pos.Target != nil && *pos.Target != "retract" && *pos.Target != "reject" {
			return commandError("unsupportedPosition", "only retract and reject")
		}
	}
	if err := s.sim.Reset(s.ctx); err != nil {
		return s.mapError(err)
	}
	s.mu.Lock()
	clear(s.countUnknown)
	s.mu.Unlock()
	return success(nil)
}
