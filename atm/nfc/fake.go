package nfc

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Exchange is one APDU a Fake card expects and what it answers.
type Exchange struct {
	Command  []byte
	Response []byte
	Err      error // returned instead of Response (e.g. ErrRemoved)
}

// FakeCard is a card that expects exactly the given exchanges, in order.
// Any other command, or a command after the last, fails the exchange and
// is recorded in Unexpected.
type FakeCard struct {
	mu         sync.Mutex
	script     []Exchange
	Unexpected []string
	closed     bool
}

// NewFakeCard returns a card following script.
func NewFakeCard(script ...Exchange) *FakeCard { return &FakeCard{script: script} }

func (c *FakeCard) Transmit(apdu []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		c.Unexpected = append(c.Unexpected, fmt.Sprintf("% X after Close", apdu))
		return nil, errors.New("fake card: closed")
	}
	if len(c.script) == 0 {
		c.Unexpected = append(c.Unexpected, fmt.Sprintf("% X after the script", apdu))
		return nil, errors.New("fake card: unexpected command")
	}
	x := c.script[0]
	if string(x.Command) != string(apdu) {
		c.Unexpected = append(c.Unexpected, fmt.Sprintf("% X, want % X", apdu, x.Command))
		return nil, errors.New("fake card: unexpected command")
	}
	c.script = c.script[1:]
	return x.Response, x.Err
}

func (c *FakeCard) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// Check reports the commands that were not sent and any unexpected ones.
func (c *FakeCard) Check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.Unexpected) > 0 || len(c.script) > 0 {
		return fmt.Errorf("fake card: unexpected %v; %d exchanges not made", c.Unexpected, len(c.script))
	}
	return nil
}

// Closed reports whether Close was called.
func (c *FakeCard) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// FakeReader is a reader a test drives: each WaitCard waits for the card
// (or the failure) the test hands it with Give or Fail, as a real reader
// waits for a card to enter its field. A second WaitCard while one waits,
// or a WaitCard after Close, is recorded in Unexpected; a Give or Fail
// that no WaitCard takes before its context is done returns an error (a
// missing call).
type FakeReader struct {
	next chan readerStep

	mu         sync.Mutex
	calls      int           // WaitCard calls so far
	waiting    bool          // a WaitCard call waits for a step
	started    chan struct{} // closed and replaced when a WaitCard starts waiting
	closed     bool
	Unexpected []string
}

type readerStep struct {
	card Card
	err  error
}

// NewFakeReader returns a reader with an empty field.
func NewFakeReader() *FakeReader {
	return &FakeReader{next: make(chan readerStep), started: make(chan struct{})}
}

// WaitCard waits until the test gives a card or a failure, or ctx is done.
func (r *FakeReader) WaitCard(ctx context.Context) (Card, error) {
	r.mu.Lock()
	if r.closed {
		r.Unexpected = append(r.Unexpected, "WaitCard after Close")
		r.mu.Unlock()
		return nil, errors.New("fake reader: closed")
	}
	if r.waiting {
		r.Unexpected = append(r.Unexpected, "WaitCard while another WaitCard waits")
		r.mu.Unlock()
		return nil, errors.New("fake reader: concurrent WaitCard")
	}
	r.calls++
	r.waiting = true
	close(r.started)
	r.started = make(chan struct{})
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.waiting = false
		r.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case s := <-r.next:
		return s.card, s.err
	}
}

// Give hands card to the WaitCard that waits (or the next one): an error
// if none takes it before ctx is done.
func (r *FakeReader) Give(ctx context.Context, card Card) error {
	return r.step(ctx, readerStep{card: card}, "a card")
}

// Fail makes the waiting (or the next) WaitCard return err: an error if
// none is called before ctx is done.
func (r *FakeReader) Fail(ctx context.Context, err error) error {
	return r.step(ctx, readerStep{err: err}, "a failure")
}

func (r *FakeReader) step(ctx context.Context, s readerStep, what string) error {
	select {
	case r.next <- s:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("fake reader: no WaitCard took %s (%d calls): %w", what, r.Calls(), ctx.Err())
	}
}

// Waiting blocks until the n-th WaitCard call (the first is 1) waits for
// a step, or ctx is done: the reader's user has finished with everything
// the first n-1 calls returned. It fails at once if the n-th call is over
// (an unexpected earlier call).
func (r *FakeReader) Waiting(ctx context.Context, n int) error {
	for {
		r.mu.Lock()
		calls, waiting, started := r.calls, r.waiting, r.started
		r.mu.Unlock()
		switch {
		case calls == n && waiting:
			return nil
		case calls > n || calls == n && !waiting:
			return fmt.Errorf("fake reader: WaitCard call %d is over (%d calls)", n, calls)
		}
		select {
		case <-started:
		case <-ctx.Done():
			return fmt.Errorf("fake reader: WaitCard call %d never came (%d calls): %w", n, calls, ctx.Err())
		}
	}
}

// Calls returns how many times WaitCard was called.
func (r *FakeReader) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// Check reports the unexpected calls.
func (r *FakeReader) Check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.Unexpected) > 0 {
		return fmt.Errorf("fake reader: unexpected %v", r.Unexpected)
	}
	return nil
}

// Close closes the reader: a later WaitCard is unexpected.
func (r *FakeReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}
