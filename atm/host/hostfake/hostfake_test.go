package hostfake_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/host"
	"github.com/cardless-atm/cardless/atm/host/hostfake"
)

var key = []byte("development token key 0123456789")

const (
	nonce1 = "0123456789ABCDEF0123456789ABCDEF"
	nonce2 = "FEDCBA9876543210FEDCBA9876543210"
)

// recorder is a testing.TB that records failures and runs its cleanups
// when told, so a test can watch the fake fail another test.
type recorder struct {
	testing.TB
	errs     []string
	cleanups []func()
}

func (r *recorder) Helper()          {}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func auth() host.AuthRequest {
	return host.AuthRequest{STAN: "000001", Amount: 10000, Currency: "156", DispenseNonce: nonce1}
}

func TestApprovesWithAGenuineToken(t *testing.T) {
	h := hostfake.New(key, "CNY", 2)
	resp, err := h.Authorize(context.Background(), auth())
	if err != nil || !resp.Approved() || resp.Token == "" {
		t.Fatalf("Authorize = %+v, %v", resp, err)
	}
	if err := dispenser.VerifyToken(resp.Token, nonce1, key, 10000, "CNY", 2); err != nil {
		t.Fatalf("token does not verify as the device checks it: %v", err)
	}
}

func TestExpectedCallsPass(t *testing.T) {
	r := &recorder{TB: t}
	h := hostfake.New(key, "CNY", 2)
	h.Expect(r, hostfake.Authorize, hostfake.Advise)
	ctx := context.Background()
	if _, err := h.Authorize(ctx, auth()); err != nil {
		t.Fatal(err)
	}
	if err := h.Advise(ctx, host.Advice{STAN: "000002"}); err != nil {
		t.Fatal(err)
	}
	r.end()
	if len(r.errs) != 0 {
		t.Fatalf("failures %q", r.errs)
	}
}

func TestUnexpectedCallFails(t *testing.T) {
	r := &recorder{TB: t}
	h := hostfake.New(key, "CNY", 2)
	h.Expect(r, hostfake.Authorize)
	ctx := context.Background()
	if _, err := h.Authorize(ctx, auth()); err != nil {
		t.Fatal(err)
	}
	err := h.Reverse(ctx, host.Reversal{STAN: "000002"})
	if !errors.Is(err, host.ErrUnavailable) {
		t.Fatalf("unexpected Reverse returned %v, want ErrUnavailable", err)
	}
	r.end()
	want := []string{"hostfake: unexpected Reverse call (still expected: []; calls before it: [Authorize])"}
	if !slices.Equal(r.errs, want) {
		t.Fatalf("failures %q, want %q", r.errs, want)
	}
	if _, _, rev := h.Counts(); rev != 0 {
		t.Fatal("an unexpected reversal counted as acknowledged")
	}
}

func TestMissingCallFails(t *testing.T) {
	r := &recorder{TB: t}
	h := hostfake.New(key, "CNY", 2)
	h.Expect(r, hostfake.Authorize, hostfake.Reverse)
	if _, err := h.Authorize(context.Background(), auth()); err != nil {
		t.Fatal(err)
	}
	r.end()
	want := []string{"hostfake: expected calls never made: [Reverse] (calls received: [Authorize])"}
	if !slices.Equal(r.errs, want) {
		t.Fatalf("failures %q, want %q", r.errs, want)
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	h := hostfake.New(key, "CNY", 2)
	h.SetFaults(hostfake.Faults{ResponseCode: "51"})
	if resp, err := h.Authorize(ctx, auth()); err != nil || resp.ResponseCode != "51" || resp.Token != "" {
		t.Fatalf("decline: %+v %v", resp, err)
	}
	h.SetFaults(hostfake.Faults{AuthErr: host.ErrOutcomeUnknown})
	if _, err := h.Authorize(ctx, auth()); !errors.Is(err, host.ErrOutcomeUnknown) {
		t.Fatalf("AuthErr: %v", err)
	}
	h.SetFaults(hostfake.Faults{SAFErr: host.ErrUnavailable})
	if err := h.Advise(ctx, host.Advice{}); !errors.Is(err, host.ErrUnavailable) {
		t.Fatalf("SAFErr: %v", err)
	}
	h.SetFaults(hostfake.Faults{Token: hostfake.TokenReuse})
	first, _ := h.Authorize(ctx, auth())
	second, _ := h.Authorize(ctx, host.AuthRequest{STAN: "000002", Amount: 10000, Currency: "156", DispenseNonce: nonce2})
	if first.Token == "" || second.Token != first.Token {
		t.Fatalf("TokenReuse: %q then %q", first.Token, second.Token)
	}
	if a, adv, rev := h.Counts(); a != 4 || adv != 0 || rev != 0 || h.Unacknowledged() != 1 {
		t.Fatalf("counts %d %d %d, unacknowledged %d", a, adv, rev, h.Unacknowledged())
	}
}
