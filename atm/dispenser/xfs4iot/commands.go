package xfs4iot

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

// maxRemembered bounds the token-to-nonce memory of this process.
const maxRemembered = 64

// position is the output position the driver dispenses to.
const position = "outDefault"

// tokenErrors maps the end-to-end security completion codes.
var tokenErrors = map[string]error{
	"noCommandNonce":     dispenser.ErrNoCommandNonce,
	"invalidToken":       dispenser.ErrInvalidToken,
	"invalidTokenNonce":  dispenser.ErrInvalidTokenNonce,
	"invalidTokenHMAC":   dispenser.ErrInvalidTokenHMAC,
	"invalidTokenFormat": dispenser.ErrInvalidTokenFormat,
	// The device holds no key for the token: it cannot check one.
	"invalidTokenKeyNoValue": dispenser.ErrInvalidTokenHMAC,
}

// commandErrors maps payload errorCodes of commandErrorCode completions
// that mean nothing moved.
var commandErrors = map[string]error{
	"notDispensable":      dispenser.ErrNotDispensable,
	"invalidCurrency":     dispenser.ErrNotDispensable,
	"invalidDenomination": dispenser.ErrNotDispensable,
	"invalidMixNumber":    dispenser.ErrNotDispensable,
	"tooManyItems":        dispenser.ErrTooManyItems,
	"itemsLeft":           dispenser.ErrSequence,
	"shutterOpen":         dispenser.ErrSequence,
	"noItems":             dispenser.ErrSequence,
	"safeDoorOpen":        dispenser.ErrDeviceNotReady,
	"exchangeActive":      dispenser.ErrDeviceNotReady,
	"unsupportedPosition": dispenser.ErrDeviceNotReady,
}

// refusedBeforeMoving reports the completions of a Dispense that the
// standard defines as refusals before any note moves: the token
// refusals, deviceNotReady, a payload the service rejected
// (invalidData, unsupportedCommand, sequenceError) and the command error
// codes of a dispense that cannot start.
func refusedBeforeMoving(ce *CompletionError) bool {
	if _, ok := tokenErrors[ce.Code]; ok {
		return true
	}
	switch ce.Code {
	case "deviceNotReady", "invalidData", "unsupportedCommand", "sequenceError", "invalidCommand":
		return true
	case "commandErrorCode":
		_, ok := commandErrors[ce.ErrorCode]
		return ok
	}
	return false
}

// noMove maps the error of a command that did not move notes (or whose
// moves the caller handled) to the core's errors. A refused command never
// ran; a lost link or an ended context leave the outcome unknown and come
// back unchanged.
func noMove(err error) error {
	var re *RefusedError
	var ce *CompletionError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re), errors.Is(err, ErrLinkLost):
		return fmt.Errorf("%w: %v", dispenser.ErrDeviceNotReady, err)
	case errors.As(err, &ce):
		if s, ok := tokenErrors[ce.Code]; ok {
			return fmt.Errorf("%w (%v)", s, err)
		}
		if ce.Code == "commandErrorCode" {
			if s, ok := commandErrors[ce.ErrorCode]; ok {
				return fmt.Errorf("%w (%v)", s, err)
			}
		}
		// deviceNotReady, hardwareError, timeOut, unsupportedCommand,
		// invalidData, userError, fraudAttempt, sequenceError, ...
		if ce.Code == "sequenceError" {
			return fmt.Errorf("%w (%v)", dispenser.ErrSequence, err)
		}
		return fmt.Errorf("%w (%v)", dispenser.ErrDeviceNotReady, err)
	}
	return err
}

// deviceStates are the Common.Status device values the core knows.
var deviceStates = []dispenser.DeviceState{dispenser.StateOnline, dispenser.StateOffline, dispenser.StatePowerOff,
	dispenser.StateNoDevice, dispenser.StateHardwareError, dispenser.StateUserError, dispenser.StateBusy, dispenser.StateFraudAttempt}

// Status reads Common.Status and Storage.GetStorage.
func (d *Driver) Status(ctx context.Context) (dispenser.Status, error) {
	m, err := d.call(ctx, "Common.Status", nil, nil)
	if err != nil {
		return dispenser.Status{}, noMove(err)
	}
	var st statusCompletion
	if err := json.Unmarshal(m.Payload, &st); err != nil {
		return dispenser.Status{}, fmt.Errorf("xfs4iot: Common.Status payload: %w", err)
	}
	units, err := d.storage(ctx)
	if err != nil {
		return dispenser.Status{}, err
	}
	out := dispenser.Status{Device: dispenser.DeviceState(st.Common.Device), MaxNotes: d.maxNotesNow()}
	if !slices.Contains(deviceStates, out.Device) {
		// potentialFraud, starting, ...: not fit to pay.
		d.log.Warn("xfs4iot device state taken as hardwareError", "device", st.Common.Device)
		out.Device = dispenser.StateHardwareError
	}
	for _, u := range units {
		out.Units = append(out.Units, u.cash)
	}
	return out, nil
}

func (d *Driver) maxNotesNow() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.maxNotes
}

// storage reads the cash units (Storage.GetStorage) and remembers them.
func (d *Driver) storage(ctx context.Context) ([]unit, error) {
	m, err := d.call(ctx, "Storage.GetStorage", nil, nil)
	if err != nil {
		return nil, noMove(err)
	}
	var gs getStorageCompletion
	if err := json.Unmarshal(m.Payload, &gs); err != nil {
		return nil, fmt.Errorf("xfs4iot: Storage.GetStorage payload: %w", err)
	}
	var units []unit
	for key, su := range gs.Storage {
		if su.Cash == nil {
			continue // not a cash unit
		}
		u, err := d.cashUnit(key, su)
		if err != nil {
			return nil, fmt.Errorf("xfs4iot: storage unit %s: %w", key, err)
		}
		units = append(units, u)
	}
	slices.SortFunc(units, func(a, b unit) int {
		if len(a.key) != len(b.key) {
			return len(a.key) - len(b.key) // unit2 before unit10
		}
		return strings.Compare(a.key, b.key)
	})
	d.mu.Lock()
	d.units = units
	d.mu.Unlock()
	return units, nil
}

func (d *Driver) cashUnit(key string, su storageUnit) (unit, error) {
	c := su.Cash
	value, err := minorUnits(c.Configuration.Value, d.cfg.Exponent)
	if err != nil {
		return unit{}, err
	}
	initial, err := fit(c.Status.Initial)
	if err != nil {
		return unit{}, err
	}
	count := initial
	for _, m := range []map[string]json.RawMessage{c.Status.Out.Presented, c.Status.Out.Rejected, c.Status.Out.Stacked} {
		n, err := fit(m)
		if err != nil {
			return unit{}, err
		}
		count -= n
	}
	if count < 0 {
		return unit{}, fmt.Errorf("more notes out (%d) than loaded (%d)", initial-count, initial)
	}
	id := su.ID
	if id == "" {
		id = key
	}
	status := dispenser.UnitOK
	switch {
	case su.Status != "ok":
		status = dispenser.UnitInoperative
	case c.Status.ReplenishmentStatus == "empty" || count == 0:
		status = dispenser.UnitEmpty
	case c.Status.ReplenishmentStatus == "low":
		status = dispenser.UnitLow
	}
	return unit{key: key, cash: dispenser.CashUnit{ID: id, Denomination: value, Currency: c.Configuration.Currency, Count: count, Status: status}}, nil
}

// knownUnits returns the units last read, reading them if there are none.
func (d *Driver) knownUnits(ctx context.Context) ([]unit, error) {
	d.mu.Lock()
	units := d.units
	d.mu.Unlock()
	if units != nil {
		return units, nil
	}
	return d.storage(ctx)
}

// CommandNonce gets the device's command nonce (Common.GetCommandNonce).
func (d *Driver) CommandNonce(ctx context.Context) (string, error) {
	m, err := d.call(ctx, "Common.GetCommandNonce", nil, nil)
	if err != nil {
		return "", noMove(err)
	}
	var p nonceCompletion
	if err := json.Unmarshal(m.Payload, &p); err != nil || p.CommandNonce == "" {
		return "", fmt.Errorf("%w: Common.GetCommandNonce answered without a nonce", dispenser.ErrDeviceNotReady)
	}
	return p.CommandNonce, nil
}

// clearNonce ends the token's life after a dispense (the standard lets a
// token be reused for its nonce until the nonce is cleared).
func (d *Driver) clearNonce(ctx context.Context) {
	if _, err := d.call(ctx, "Common.ClearCommandNonce", nil, nil); err != nil {
		d.log.Warn("xfs4iot: could not clear the command nonce", "err", err)
	}
}

// mixOf converts a denomination's values (storage keys) to a mix (unit IDs).
func mixOf(den *denomination, units []unit) (dispenser.Mix, error) {
	m := dispenser.Mix{}
	for key, n := range den.Values {
		i := slices.IndexFunc(units, func(u unit) bool { return u.key == key })
		if i < 0 || n < 0 {
			return nil, fmt.Errorf("xfs4iot: denomination names unknown unit %q or a negative count", key)
		}
		if n > 0 {
			m[units[i].cash.ID] += n
		}
	}
	return m, nil
}

func cashOf(units []unit) []dispenser.CashUnit {
	out := make([]dispenser.CashUnit, len(units))
	for i, u := range units {
		out[i] = u.cash
	}
	return out
}

// countUnknown is the outcome of a dispense whose notes nobody counted.
func countUnknown(why error) error {
	return &dispenser.DispenseError{Code: "hardwareError", CountKnown: false,
		Err: fmt.Errorf("%w: %v", dispenser.ErrCountUnknown, why)}
}

// Dispense moves the notes of mix into the stacker
// (CashDispenser.Dispense with the end-to-end token). A lost link or an
// unanswered command is "count unknown", never "nothing paid".
func (d *Driver) Dispense(ctx context.Context, mix dispenser.Mix, token string) (dispenser.Result, error) {
	units, err := d.knownUnits(ctx)
	if err != nil {
		return dispenser.Result{}, err
	}
	var p dispenseCommand
	p.Position, p.Token = position, token
	p.Denomination.Denomination.App.Counts = map[string]int{}
	currency := ""
	for id, n := range mix {
		i := slices.IndexFunc(units, func(u unit) bool { return u.cash.ID == id })
		switch {
		case i < 0 || n < 0:
			return dispenser.Result{}, fmt.Errorf("%w: unknown unit %q or negative count", dispenser.ErrNotDispensable, id)
		case n == 0:
			continue
		case currency != "" && units[i].cash.Currency != currency:
			return dispenser.Result{}, fmt.Errorf("%w: mix mixes currencies", dispenser.ErrNotDispensable)
		}
		currency = units[i].cash.Currency
		p.Denomination.Denomination.App.Counts[units[i].key] = n
	}
	amount, err := mix.Amount(cashOf(units))
	if err != nil || len(p.Denomination.Denomination.App.Counts) == 0 {
		return dispenser.Result{}, fmt.Errorf("%w: empty mix", dispenser.ErrNotDispensable)
	}
	p.Denomination.Denomination.App.Currencies = map[string]json.Number{currency: majorUnits(amount, d.cfg.Exponent)}
	if t, err := dispenser.ParseToken(token); err == nil {
		d.mu.Lock()
		if len(d.nonces) >= maxRemembered {
			clear(d.nonces) // only the last dispense's matters to recovery
		}
		d.nonces[strings.ToUpper(hex.EncodeToString(t.HMAC))] = t.Nonce
		d.mu.Unlock()
	}

	var incomplete *denomination
	m, err := d.call(ctx, "CashDispenser.Dispense", p, func(ev Message) {
		if ev.Header.Name == "CashDispenser.IncompleteDispenseEvent" {
			var den denomination
			if json.Unmarshal(ev.Payload, &den) == nil && den.Values != nil {
				incomplete = &den
			}
		}
	})
	var re *RefusedError
	if !errors.As(err, &re) {
		defer d.clearNonce(context.WithoutCancel(ctx))
	}
	var ce *CompletionError
	switch {
	case err == nil:
		var c denominationCompletion
		if json.Unmarshal(m.Payload, &c) != nil || c.Denomination == nil {
			return dispenser.Result{}, countUnknown(errors.New("success without the notes dispensed"))
		}
		got, err := mixOf(c.Denomination, units)
		if err != nil {
			return dispenser.Result{}, countUnknown(err)
		}
		a, _ := got.Amount(cashOf(units))
		return dispenser.Result{Mix: got, Amount: a}, nil
	case errors.As(err, &ce):
		// Counts are reliable only when the completion itself carries the
		// denomination (docs/xfs4iot.md §4.8); the event is logged, not
		// trusted instead.
		var c denominationCompletion
		_ = json.Unmarshal(ce.Payload, &c)
		den := c.Denomination
		if den == nil && incomplete != nil {
			d.log.Warn("xfs4iot: incomplete dispense reported only by its event: count taken as unknown", "values", fmt.Sprint(incomplete.Values))
		}
		moved := func(code string, sentinel error) error {
			got, merr := mixOf(den, units)
			if merr != nil {
				return countUnknown(merr)
			}
			return &dispenser.DispenseError{Code: code, Dispensed: got, CountKnown: true, Err: fmt.Errorf("%w (%v)", sentinel, err)}
		}
		switch {
		case ce.Code == "commandErrorCode" && ce.ErrorCode == "cashUnitError" && den != nil:
			return dispenser.Result{}, moved("incompleteDispense", dispenser.ErrShortDispense)
		case ce.Code == "hardwareError" && den != nil:
			return dispenser.Result{}, moved("cashUnitError", dispenser.ErrJam)
		case refusedBeforeMoving(ce):
			return dispenser.Result{}, noMove(err)
		}
		// Anything else (hardwareError or cashUnitError without a count,
		// timeOut, internalError, canceled, userError, fraudAttempt, an
		// error code this driver does not know): the device may have
		// moved notes and cannot say which.
		return dispenser.Result{}, countUnknown(err)
	case errors.As(err, &re), errors.Is(err, dispenser.ErrDeviceNotReady):
		return dispenser.Result{}, noMove(err) // never sent or never ran
	}
	return dispenser.Result{}, countUnknown(err)
}

// Present moves the stacked notes to the exit (CashDispenser.Present).
func (d *Driver) Present(ctx context.Context) error {
	d.mu.Lock()
	d.taken, d.takenSeen = make(chan struct{}), false
	d.mu.Unlock()
	_, err := d.call(ctx, "CashDispenser.Present", positionPayload{Position: position}, nil)
	if err == nil {
		return nil
	}
	d.mu.Lock()
	d.taken = nil
	d.mu.Unlock()
	var ce *CompletionError
	if errors.As(err, &ce) && ce.Code == "commandErrorCode" && ce.ErrorCode == "shutterNotOpen" {
		return &dispenser.DispenseError{Code: "shutterNotOpen", Dispensed: dispenser.Mix{}, CountKnown: true,
			Err: fmt.Errorf("%w (%v)", dispenser.ErrShutter, err)}
	}
	return noMove(err)
}

// WaitTaken waits for CashManagement.ItemsTakenEvent after Present.
func (d *Driver) WaitTaken(ctx context.Context, timeout time.Duration) (bool, error) {
	d.mu.Lock()
	ch, svc := d.taken, d.svc
	d.mu.Unlock()
	if ch == nil {
		return false, fmt.Errorf("%w: no notes presented", dispenser.ErrSequence)
	}
	var lost <-chan struct{}
	if svc != nil {
		lost = svc.done
	}
	t := d.clk.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return true, nil
	case <-t.C():
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-lost:
		return false, fmt.Errorf("%w: while waiting for the notes to be taken", ErrLinkLost)
	}
}

// Retract takes back the notes of the last dispense, at the exit or in the
// stacker (CashManagement.Retract). What it took back is the last
// dispense's notes as the device reports them before the retract; with a
// response key the device's signed present status must confirm it
// afterwards (all of them, or the customer took some: an error, so the
// session goes to an operator). "No items" means the customer took them
// only if the device said it had presented them.
func (d *Driver) Retract(ctx context.Context) (dispenser.Result, error) {
	units, err := d.knownUnits(ctx)
	if err != nil {
		return dispenser.Result{}, err
	}
	m, err := d.call(ctx, "CashDispenser.GetPresentStatus", positionPayload{Position: position}, nil)
	if err != nil {
		return dispenser.Result{}, noMove(err)
	}
	var before presentStatusCompletion
	if err := json.Unmarshal(m.Payload, &before); err != nil {
		return dispenser.Result{}, fmt.Errorf("xfs4iot: GetPresentStatus payload: %w", err)
	}
	var rc retractCommand
	rc.Location.OutputPosition, rc.Location.RetractArea = position, "retract"
	_, err = d.call(ctx, "CashManagement.Retract", rc, nil)
	d.mu.Lock()
	d.taken = nil
	d.mu.Unlock()
	var ce *CompletionError
	switch {
	case errors.As(err, &ce) && ce.Code == "commandErrorCode" && ce.ErrorCode == "noItems":
		if before.PresentState != "presented" {
			return dispenser.Result{}, fmt.Errorf("xfs4iot: the device has no notes to retract but never presented them (presentState %q): where they went is unknown", before.PresentState)
		}
		return dispenser.Result{}, fmt.Errorf("%w (%v)", dispenser.ErrNoItems, err)
	case err != nil:
		return dispenser.Result{}, noMove(err)
	case before.Denomination == nil:
		return dispenser.Result{}, errors.New("xfs4iot: notes retracted, but the device never said which (count unknown)")
	}
	got, err := mixOf(before.Denomination, units)
	if err != nil {
		return dispenser.Result{}, err
	}
	a, _ := got.Amount(cashOf(units))
	if len(d.cfg.ResponseKey) > 0 {
		ps, err := d.PresentStatus(ctx)
		switch {
		case err != nil:
			return dispenser.Result{}, fmt.Errorf("xfs4iot: notes retracted, but the device's signed account of it failed: %w", err)
		case before.PresentState == "presented" && (ps.State != dispenser.PresentRetracted || ps.RetractedAmount != a):
			return dispenser.Result{}, fmt.Errorf("xfs4iot: the device signed retracted %d of %d presented (state %s): the customer may have taken some", ps.RetractedAmount, a, ps.State)
		case before.PresentState != "presented" && ps.State != dispenser.PresentRejected:
			return dispenser.Result{}, fmt.Errorf("xfs4iot: stacked notes retracted, but the device now says %s", ps.State)
		}
	}
	return dispenser.Result{Mix: got, Amount: a}, nil
}

// Reset recovers the device (CashManagement.Reset): clears a latched fault,
// purges notes inside to the reject bin, retracts notes at the exit.
func (d *Driver) Reset(ctx context.Context) error {
	d.mu.Lock()
	d.taken = nil
	d.mu.Unlock()
	_, err := d.call(ctx, "CashManagement.Reset", nil, nil)
	return noMove(err)
}
