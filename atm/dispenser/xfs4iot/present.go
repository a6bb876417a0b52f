package xfs4iot

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

// ResponseToken is a parsed present-status response token:
// NONCE=…,TOKENFORMAT=1,TOKENLENGTH=NNNN,[DISPENSEID=…,]DISPENSED1=…,
// PRESENTED1=YES|NO,[PRESENTEDAMOUNT1=…,]RETRACTED1=YES|NO,
// [RETRACTEDAMOUNT1=…,]HMACSHA256=….
type ResponseToken struct {
	Nonce           string
	DispenseID      string // upper-case hex; "" when the device made no dispense yet
	Currency        string
	Dispensed       int64 // minor units; -1 when the count is unknown ("?")
	Presented       bool
	PresentedAmount int64
	Retracted       bool
	RetractedAmount int64
	HMAC            []byte
	Signed          string // the text the HMAC covers
}

// ErrResponseToken is a response token that is malformed.
var ErrResponseToken = errors.New("xfs4iot: malformed response token")

// ParseResponseToken parses a response token strictly (keys in the
// standard's order, each once, TOKENLENGTH equal to the length, amounts
// with exactly exponent decimals and one currency). It does not check the
// HMAC: VerifyResponseToken does.
func ParseResponseToken(s string, exponent int) (ResponseToken, error) {
	bad := func(format string, a ...any) (ResponseToken, error) {
		return ResponseToken{}, fmt.Errorf("%w: %s", ErrResponseToken, fmt.Sprintf(format, a...))
	}
	if len(s) > dispenser.MaxTokenLength {
		return bad("%d characters", len(s))
	}
	const mac = ",HMACSHA256="
	i := strings.LastIndex(s, mac)
	if i < 0 {
		return bad("no HMACSHA256")
	}
	var t ResponseToken
	t.Signed = s[:i+len(mac)]
	h, err := hex.DecodeString(s[i+len(mac):])
	if err != nil || len(h) != sha256.Size || strings.ToUpper(s[i+len(mac):]) != s[i+len(mac):] {
		return bad("HMACSHA256 must be 64 upper-case hex digits")
	}
	t.HMAC = h
	order := []string{"NONCE", "TOKENFORMAT", "TOKENLENGTH", "DISPENSEID", "DISPENSED1", "PRESENTED1", "PRESENTEDAMOUNT1", "RETRACTED1", "RETRACTEDAMOUNT1"}
	optional := map[string]bool{"DISPENSEID": true, "PRESENTEDAMOUNT1": true, "RETRACTEDAMOUNT1": true}
	next := 0
	seen := map[string]string{}
	for _, kv := range strings.Split(s[:i], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return bad("%q is not KEY=VALUE", kv)
		}
		for next < len(order) && order[next] != k && optional[order[next]] {
			next++
		}
		if next >= len(order) || order[next] != k {
			return bad("key %q out of order or unknown", k)
		}
		next++
		seen[k] = v
	}
	for _, k := range order {
		if _, ok := seen[k]; !ok && !optional[k] {
			return bad("no %s", k)
		}
	}
	if t.Nonce = seen["NONCE"]; t.Nonce == "" {
		return bad("empty NONCE")
	}
	if seen["TOKENFORMAT"] != "1" {
		return bad("TOKENFORMAT %q", seen["TOKENFORMAT"])
	}
	if l := seen["TOKENLENGTH"]; l != fmt.Sprintf("%04d", len(s)) {
		return bad("TOKENLENGTH %q for %d characters", l, len(s))
	}
	if id, ok := seen["DISPENSEID"]; ok {
		if b, err := hex.DecodeString(id); err != nil || len(b) != sha256.Size || strings.ToUpper(id) != id {
			return bad("DISPENSEID must be 64 upper-case hex digits")
		}
		t.DispenseID = id
	}
	yes := func(k string) (bool, error) {
		switch seen[k] {
		case "YES":
			return true, nil
		case "NO":
			return false, nil
		}
		return false, fmt.Errorf("%w: %s %q", ErrResponseToken, k, seen[k])
	}
	if t.Presented, err = yes("PRESENTED1"); err != nil {
		return ResponseToken{}, err
	}
	if t.Retracted, err = yes("RETRACTED1"); err != nil {
		return ResponseToken{}, err
	}
	if _, ok := seen["PRESENTEDAMOUNT1"]; ok != t.Presented {
		return bad("PRESENTEDAMOUNT1 must come with PRESENTED1=YES only")
	}
	if _, ok := seen["RETRACTEDAMOUNT1"]; ok != t.Retracted {
		return bad("RETRACTEDAMOUNT1 must come with RETRACTED1=YES only")
	}
	amount := func(k string) (int64, error) {
		v := seen[k]
		if len(v) < 4 {
			return 0, fmt.Errorf("%w: %s %q", ErrResponseToken, k, v)
		}
		cur, num := v[len(v)-3:], v[:len(v)-3]
		if strings.Trim(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" || (t.Currency != "" && cur != t.Currency) {
			return 0, fmt.Errorf("%w: %s currency %q", ErrResponseToken, k, cur)
		}
		t.Currency = cur
		whole, frac, _ := strings.Cut(num, ".")
		if len(frac) != exponent || (exponent > 0 && !strings.Contains(num, ".")) || whole == "" || strings.Trim(whole+frac, "0123456789") != "" || len(whole+frac) > 15 {
			return 0, fmt.Errorf("%w: %s amount %q must have %d decimals", ErrResponseToken, k, num, exponent)
		}
		n, err := strconv.ParseInt(whole+frac, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %s %q", ErrResponseToken, k, v)
		}
		return n, nil
	}
	if v := seen["DISPENSED1"]; v == "?" {
		t.Dispensed = -1
	} else if t.Dispensed, err = amount("DISPENSED1"); err != nil {
		return ResponseToken{}, err
	}
	if t.Presented {
		if t.PresentedAmount, err = amount("PRESENTEDAMOUNT1"); err != nil {
			return ResponseToken{}, err
		}
	}
	if t.Retracted {
		if t.RetractedAmount, err = amount("RETRACTEDAMOUNT1"); err != nil {
			return ResponseToken{}, err
		}
	}
	return t, nil
}

// VerifyResponseToken parses s and checks that it answers nonce and that
// its HMAC-SHA256 under key verifies (constant-time).
func VerifyResponseToken(s, nonce string, key []byte, exponent int) (ResponseToken, error) {
	t, err := ParseResponseToken(s, exponent)
	if err != nil {
		return ResponseToken{}, err
	}
	if subtle.ConstantTimeCompare([]byte(t.Nonce), []byte(nonce)) != 1 {
		return ResponseToken{}, fmt.Errorf("%w: the response token answers another nonce", ErrUnverified)
	}
	if len(key) == 0 {
		return ResponseToken{}, fmt.Errorf("%w: no response key", ErrUnverified)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(t.Signed))
	if !hmac.Equal(m.Sum(nil), t.HMAC) {
		return ResponseToken{}, fmt.Errorf("%w: the response token's HMAC does not verify", ErrUnverified)
	}
	return t, nil
}

// PresentStatus asks the device what the last dispense did
// (CashDispenser.GetPresentStatus with a fresh nonce) and believes it only
// when the response token's HMAC verifies with the response key. The
// unsigned denomination in the payload must agree with the signed amounts.
func (d *Driver) PresentStatus(ctx context.Context) (dispenser.PresentStatus, error) {
	if len(d.cfg.ResponseKey) == 0 {
		return dispenser.PresentStatus{}, fmt.Errorf("%w: no response key configured", ErrUnverified)
	}
	units, err := d.storage(ctx)
	if err != nil {
		return dispenser.PresentStatus{}, err
	}
	var nb [16]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return dispenser.PresentStatus{}, err
	}
	nonce := strings.ToUpper(hex.EncodeToString(nb[:]))
	m, err := d.call(ctx, "CashDispenser.GetPresentStatus", presentStatusCommand{Position: position, Nonce: nonce}, nil)
	if err != nil {
		return dispenser.PresentStatus{}, noMove(err)
	}
	var p presentStatusCompletion
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		return dispenser.PresentStatus{}, fmt.Errorf("xfs4iot: GetPresentStatus payload: %w", err)
	}
	if p.Token == "" {
		return dispenser.PresentStatus{}, fmt.Errorf("%w: the device sent no response token", ErrUnverified)
	}
	t, err := VerifyResponseToken(p.Token, nonce, d.cfg.ResponseKey, d.cfg.Exponent)
	if err != nil {
		return dispenser.PresentStatus{}, err
	}
	ps := dispenser.PresentStatus{State: dispenser.PresentNone, CountKnown: t.Dispensed >= 0, Currency: t.Currency}
	if t.DispenseID == "" {
		if t.Dispensed != 0 || t.Presented || t.Retracted {
			return dispenser.PresentStatus{}, fmt.Errorf("%w: the response token reports cash moved but names no dispense", ErrUnverified)
		}
		return ps, nil // no dispense yet
	}
	id, _ := hex.DecodeString(t.DispenseID)
	// 62 bits: the core keeps the sequence in a signed counter; never 0.
	ps.Seq = binary.BigEndian.Uint64(id[:8])>>2 | 1
	ps.DispenseID = t.DispenseID
	d.mu.Lock()
	ps.Nonce = d.nonces[t.DispenseID] // known for this process's dispenses only
	d.mu.Unlock()
	if ps.CountKnown {
		if p.Denomination == nil {
			return dispenser.PresentStatus{}, fmt.Errorf("%w: signed amounts without a denomination", ErrUnverified)
		}
		mix, err := mixOf(p.Denomination, units)
		if err != nil {
			return dispenser.PresentStatus{}, err
		}
		a, _ := mix.Amount(cashOf(units))
		if a != t.Dispensed {
			return dispenser.PresentStatus{}, fmt.Errorf("%w: the denomination (%d) disagrees with the signed DISPENSED1 (%d)", ErrUnverified, a, t.Dispensed)
		}
		ps.Dispensed, ps.DispensedAmount = mix, a
		if t.Presented {
			if t.PresentedAmount != a {
				return dispenser.PresentStatus{}, fmt.Errorf("%w: presented %d of %d dispensed", ErrUnverified, t.PresentedAmount, a)
			}
			ps.Presented, ps.PresentedAmount = mix.Clone(), a
		}
		if t.Retracted {
			if t.RetractedAmount != ps.PresentedAmount {
				return dispenser.PresentStatus{}, fmt.Errorf("%w: retracted %d of %d presented", ErrUnverified, t.RetractedAmount, ps.PresentedAmount)
			}
			ps.Retracted, ps.RetractedAmount = mix.Clone(), t.RetractedAmount
		}
	}
	// Where the notes are now: Common.Status says whether the exit and the
	// stacker hold notes.
	sm, err := d.call(ctx, "Common.Status", nil, nil)
	if err != nil {
		return dispenser.PresentStatus{}, noMove(err)
	}
	var st statusCompletion
	if err := json.Unmarshal(sm.Payload, &st); err != nil {
		return dispenser.PresentStatus{}, fmt.Errorf("xfs4iot: Common.Status payload: %w", err)
	}
	// Only an explicit "empty" says the notes are gone: a status that is
	// missing, unknown or names no outDefault position leaves them where
	// they may still be (recovery then retracts or purges, and a retract
	// that finds nothing settles it).
	stacker, exit := "", ""
	if st.CashDispenser != nil {
		stacker = st.CashDispenser.IntermediateStacker
		for _, pos := range st.CashDispenser.Positions {
			if pos.Position == position {
				exit = pos.PositionStatus
			}
		}
	}
	switch {
	case !ps.CountKnown:
		ps.State = dispenser.PresentFailed
	case t.Retracted:
		ps.State = dispenser.PresentRetracted
	case t.Presented && exit == "empty":
		ps.State, ps.Taken = dispenser.PresentTaken, true
	case t.Presented:
		ps.State = dispenser.PresentPresented
	case st.Common.Device == string(dispenser.StateHardwareError):
		ps.State = dispenser.PresentFailed // jammed inside, until a reset purges them
	case stacker == "empty":
		ps.State = dispenser.PresentRejected
	default:
		ps.State = dispenser.PresentStacked
	}
	return ps, nil
}
