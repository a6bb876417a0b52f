// Package hostfake is an in-process bank host for tests of the ATM's core,
// beside the contract it fakes (package host) as dispensersim is beside
// atm/dispenser. It approves withdrawals with a real XFS4IoT dispense
// token (signed with the test's token key, as the bank host would),
// acknowledges advices and reversals, answers a reconciliation request
// with the totals of the calls it received, records every call, and
// injects faults (declines, outcome-unknown errors, forged or short
// tokens, a host that does not acknowledge, totals that disagree).
//
// Expect makes it strict, as periph's conntest.Playback is: every call
// must be the next one the test expects, and when the test ends no
// expected call may be left over.
package hostfake

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/host"
	"github.com/cardless-atm/cardless/atm/wire"
)

// Kind names a call to the host.
type Kind string

// The calls of the atm.Host interface, and of its optional
// atm.Reconciler.
const (
	Authorize Kind = "Authorize"
	Advise    Kind = "Advise"
	Reverse   Kind = "Reverse"
	Reconcile Kind = "Reconcile"
)

// DeclineRRN is the retrieval reference number (field 37) of every decline
// the fake gives, as a real host gives one with each answer.
const DeclineRRN = "000000000099"

// Token modes of Faults.Token: what an approval carries instead of a
// genuine dispense token.
const (
	TokenNone  = "none"  // approve without a token
	TokenSmall = "small" // a token covering one minor unit less than the amount
	TokenReuse = "reuse" // the token of the previous approval given in this mode
)

// Faults change the host's answers. The zero value approves everything.
type Faults struct {
	// ResponseCode, if set and not 00, declines every authorization.
	ResponseCode string
	// AuthErr, if set, is returned by Authorize instead of an answer
	// (host.ErrUnavailable, host.ErrOutcomeUnknown...).
	AuthErr error
	// ForgedToken signs dispense tokens with a key that is not the
	// device's.
	ForgedToken bool
	// Token is one of the Token* modes, or "" for genuine tokens.
	Token string
	// SAFErr, if set, is returned by Advise and Reverse (the host does not
	// acknowledge); nothing is recorded as applied.
	SAFErr error
	// Totals, if set, is what Reconcile answers instead of the totals of
	// the calls received (a host whose books disagree); ReconErr, if set,
	// is returned by Reconcile instead.
	Totals   *host.Totals
	ReconErr error
}

// Call is one call the host received, with what it answered.
type Call struct {
	Kind     Kind
	Auth     host.AuthRequest  // Kind == Authorize
	Advice   host.Advice       // Kind == Advise
	Reversal host.Reversal     // Kind == Reverse
	Recon    host.ReconRequest // Kind == Reconcile
	Answer   host.AuthResponse // Kind == Authorize: what it answered
	Err      error             // what the call returned
}

// Host is the fake. Its methods are safe for concurrent use.
type Host struct {
	// Zone is the time zone of the business day Reconcile books an
	// authorization for (by its Time); nil means UTC. Set it before use.
	Zone *time.Location

	tokenKey []byte
	alpha    string
	exponent int

	mu        sync.Mutex
	faults    Faults
	lastToken string
	calls     []Call
	t         testing.TB // set by Expect
	expect    []Kind
}

// New returns a host that signs dispense tokens with tokenKey (the
// dispenser's token key) for amounts in the currency alpha with exponent
// digits.
func New(tokenKey []byte, alpha string, exponent int) *Host {
	return &Host{tokenKey: tokenKey, alpha: alpha, exponent: exponent}
}

// SetFaults replaces the faults. Changing the token mode forgets the token
// kept for TokenReuse: the next approval in that mode records its own.
func (h *Host) SetFaults(f Faults) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f.Token != h.faults.Token {
		h.lastToken = ""
	}
	h.faults = f
}

// Expect makes the host strict for the rest of t: the calls it receives
// must be exactly kinds, in order. A call that is not the next expected
// one fails t at once and is answered with an error (host.ErrUnavailable
// for Authorize, so nothing is paid); expected calls still missing when t
// ends fail it then.
func (h *Host) Expect(t testing.TB, kinds ...Kind) {
	t.Helper()
	h.mu.Lock()
	h.t, h.expect = t, slices.Clone(kinds)
	h.mu.Unlock()
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.expect) > 0 {
			t.Errorf("hostfake: expected calls never made: %v (calls received: %s)", h.expect, h.kindsLocked())
		}
		h.t = nil
	})
}

// check records c and, when strict, fails on an unexpected call; it
// returns the error an unexpected call is answered with. h.mu is held.
func (h *Host) check(k Kind) error {
	if h.t == nil {
		return nil
	}
	if len(h.expect) == 0 || h.expect[0] != k {
		h.t.Errorf("hostfake: unexpected %s call (still expected: %v; calls before it: %s)", k, h.expect, h.kindsLocked())
		return fmt.Errorf("%w: hostfake: unexpected %s call", host.ErrUnavailable, k)
	}
	h.expect = h.expect[1:]
	return nil
}

func (h *Host) kindsLocked() string {
	k := make([]string, len(h.calls))
	for i, c := range h.calls {
		k[i] = string(c.Kind)
	}
	return "[" + strings.Join(k, " ") + "]"
}

// Authorize implements atm.Host.
func (h *Host) Authorize(ctx context.Context, r host.AuthRequest) (host.AuthResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	resp, err := h.authorize(r)
	if cerr := h.check(Authorize); cerr != nil {
		resp, err = host.AuthResponse{}, cerr
	}
	h.calls = append(h.calls, Call{Kind: Authorize, Auth: r, Answer: resp, Err: err})
	return resp, err
}

func (h *Host) authorize(r host.AuthRequest) (host.AuthResponse, error) {
	f := h.faults
	if f.AuthErr != nil {
		return host.AuthResponse{}, f.AuthErr
	}
	if f.ResponseCode != "" && f.ResponseCode != wire.RCApproved {
		return host.AuthResponse{ResponseCode: f.ResponseCode, RRN: DeclineRRN}, nil
	}
	key := h.tokenKey
	if f.ForgedToken {
		key = []byte("some other key, not the device's")
	}
	limit := r.Amount
	if f.Token == TokenSmall {
		limit--
	}
	tok, err := dispenser.BuildToken(r.DispenseNonce, limit, h.alpha, h.exponent, dispenser.HMACSHA256(key))
	if err != nil {
		return host.AuthResponse{}, fmt.Errorf("%w: hostfake: token: %w", host.ErrOutcomeUnknown, err)
	}
	switch f.Token {
	case TokenNone:
		tok = ""
	case TokenReuse:
		if h.lastToken != "" {
			tok = h.lastToken
		} else {
			h.lastToken = tok
		}
	}
	return host.AuthResponse{ResponseCode: wire.RCApproved, AuthCode: "A12345", RRN: "000000000001", Token: tok}, nil
}

// Advise implements atm.Host.
func (h *Host) Advise(ctx context.Context, a host.Advice) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	err := h.faults.SAFErr
	if cerr := h.check(Advise); cerr != nil {
		err = cerr
	}
	h.calls = append(h.calls, Call{Kind: Advise, Advice: a, Err: err})
	return err
}

// Reverse implements atm.Host.
func (h *Host) Reverse(ctx context.Context, r host.Reversal) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	err := h.faults.SAFErr
	if cerr := h.check(Reverse); cerr != nil {
		err = cerr
	}
	h.calls = append(h.calls, Call{Kind: Reverse, Reversal: r, Err: err})
	return err
}

// Calls returns every call received so far, in order.
func (h *Host) Calls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// Authorizations returns every authorization request received (answered
// or not).
func (h *Host) Authorizations() []host.AuthRequest {
	var out []host.AuthRequest
	for _, c := range h.Calls() {
		if c.Kind == Authorize {
			out = append(out, c.Auth)
		}
	}
	return out
}

// Advices returns the advices the host acknowledged.
func (h *Host) Advices() []host.Advice {
	var out []host.Advice
	for _, c := range h.Calls() {
		if c.Kind == Advise && c.Err == nil {
			out = append(out, c.Advice)
		}
	}
	return out
}

// Reversals returns the reversals the host acknowledged.
func (h *Host) Reversals() []host.Reversal {
	var out []host.Reversal
	for _, c := range h.Calls() {
		if c.Kind == Reverse && c.Err == nil {
			out = append(out, c.Reversal)
		}
	}
	return out
}

// Counts returns how many authorizations were received and how many
// advices and reversals were acknowledged.
func (h *Host) Counts() (auths, advices, reversals int) {
	return len(h.Authorizations()), len(h.Advices()), len(h.Reversals())
}

// Unacknowledged returns how many advices and reversals were answered
// with an error (Faults.SAFErr or an unexpected call).
func (h *Host) Unacknowledged() int {
	n := 0
	for _, c := range h.Calls() {
		if c.Kind != Authorize && c.Err != nil {
			n++
		}
	}
	return n
}

// Reconcile implements atm.Reconciler: the totals, for the terminal and
// the day of r (each authorization booked on the UTC day of its Time, or
// in Zone when set), of the calls received: approvals, the reversals and
// advices acknowledged for them (once per original STAN, as a host
// applies them), and the net debit. Faults.Totals and Faults.ReconErr
// replace the answer.
func (h *Host) Reconcile(ctx context.Context, r host.ReconRequest) (host.Totals, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tot, err := h.totals(r), h.faults.ReconErr
	if h.faults.Totals != nil {
		tot = *h.faults.Totals
	}
	if cerr := h.check(Reconcile); cerr != nil {
		err = cerr
	}
	if err != nil {
		tot = host.Totals{}
	}
	h.calls = append(h.calls, Call{Kind: Reconcile, Recon: r, Err: err})
	return tot, err
}

func (h *Host) totals(r host.ReconRequest) host.Totals {
	zone := h.Zone
	if zone == nil {
		zone = time.UTC
	}
	approved := map[string]int64{} // original STAN -> amount
	var t host.Totals
	for _, c := range h.calls {
		if c.Kind != Authorize || c.Err != nil || !c.Answer.Approved() || c.Auth.Currency != r.Currency ||
			(r.TerminalID != "" && c.Auth.TerminalID != "" && c.Auth.TerminalID != r.TerminalID) ||
			c.Auth.Time.In(zone).Format(time.DateOnly) != r.Day {
			continue
		}
		approved[c.Auth.STAN] = c.Auth.Amount
		t.Approved.Count++
		t.Approved.Amount += c.Auth.Amount
	}
	advised, reversed := map[string]bool{}, map[string]bool{}
	for _, c := range h.calls {
		if c.Err != nil {
			continue
		}
		switch {
		case c.Kind == Advise && !advised[c.Advice.Original.STAN]:
			if amt, ok := approved[c.Advice.Original.STAN]; ok {
				advised[c.Advice.Original.STAN] = true
				t.Advices.Count++
				t.Advices.Amount += amt
			}
		case c.Kind == Reverse && !reversed[c.Reversal.Original.STAN]:
			if amt, ok := approved[c.Reversal.Original.STAN]; ok {
				reversed[c.Reversal.Original.STAN] = true
				t.Reversals.Count++
				t.Reversals.Amount += amt - c.Reversal.Dispensed
			}
		}
	}
	t.NetDebit = t.Approved.Amount - t.Reversals.Amount
	return t
}
