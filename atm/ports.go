package atm

import (
	"context"
	"github.com/cardless-atm/cardless/atm/host"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

// Dispenser is what the core needs from a cash dispenser: the XFS4IoT
// CashDispenser sequence with the end-to-end token. The simulator
// (atm/dispenser/dispensersim) and real drivers satisfy it.
type Dispenser interface {
	Status(ctx context.Context) (dispenser.Status, error)
	// CommandNonce returns a fresh command nonce for the next token.
	CommandNonce(ctx context.Context) (string, error)
	// Dispense counts notes out into the stacker; the device itself refuses
	// it without a valid host token for at least the mix's value.
	Dispense(ctx context.Context, mix dispenser.Mix, token string) (dispenser.Result, error)
	Present(ctx context.Context) error
	WaitTaken(ctx context.Context, timeout time.Duration) (taken bool, err error)
	Retract(ctx context.Context) (dispenser.Result, error)
}

// PresentStatuser is the optional capability recovery uses to learn what a
// dispense interrupted by a crash really did. Without it, every in-flight
// dispense found at start-up is left in doubt for the operator.
type PresentStatuser interface {
	PresentStatus(ctx context.Context) (dispenser.PresentStatus, error)
}

// Resetter is the optional capability to clear notes left in the transport
// (purged to the reject bin) after a fault.
type Resetter interface {
	Reset(ctx context.Context) error
}

// Host is the bank host: authorization, completion advice and reversal.
//
// Authorize errors: host.ErrUnavailable means nothing was sent (decline,
// no reversal); any other error means the outcome is unknown: the core
// reverses and never retries the request.
type Host interface {
	Authorize(ctx context.Context, req host.AuthRequest) (host.AuthResponse, error)
	Advise(ctx context.Context, a host.Advice) error
	Reverse(ctx context.Context, r host.Reversal) error
}

// Links reports the health of the appliance's links; the core goes out of
// service while the proxy link is down (no dispense command could arrive).
type Links interface {
	ProxyUp() bool
	HostUp() bool
}
