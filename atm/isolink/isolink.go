// Package isolink is what the ATM's two ISO 8583 links (atm/hostlink to
// the bank host, proxyclient to the proxy) share on top of
// github.com/moov-io/iso8583-connection: one send bounded by a context.
package isolink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
)

// ErrNotSent wraps the context's error when ctx had ended, or left no
// time, before m was handed to the connection: m was certainly not sent.
var ErrNotSent = errors.New("isolink: not sent")

// Sender is the part of *connection.Connection that Send uses.
type Sender interface {
	Send(m *iso8583.Message, opts ...connection.Option) (*iso8583.Message, error)
}

// Send sends m on conn and waits for its answer for at most max, and never
// past ctx's deadline. It returns:
//   - the answer;
//   - ErrNotSent (wrapping ctx's error) when ctx had ended or left no time
//     before m was handed to the connection;
//   - ctx's error (wrapped) when ctx ends while waiting, whether or not m was
//     written: the caller decides whether that outcome is unknown;
//   - an error wrapping connection.ErrSendTimeout when no answer came in
//     time (the request may have reached the other side);
//   - the connection's error otherwise.
//
// max must be positive. ctx's deadline is read on the system clock, as the
// context package keeps it.
func Send(ctx context.Context, conn Sender, m *iso8583.Message, max time.Duration) (*iso8583.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	timeout := max
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("%w: %w", ErrNotSent, context.DeadlineExceeded)
	}
	type result struct {
		m   *iso8583.Message
		err error
	}
	ch := make(chan result, 1) // the sender never waits for a reader
	go func() {
		r, err := conn.Send(m, connection.SendTimeout(timeout))
		ch <- result{r, err}
	}()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("isolink: %w", ctx.Err())
	}
}
