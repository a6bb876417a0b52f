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

// FakeReader hands out the cards sent on Cards, one per WaitCard.
type FakeReader struct {
	Cards chan Card
}

// NewFakeReader returns a reader with no card.
func NewFakeReader() *FakeReader { return &FakeReader{Cards: make(chan Card)} }

func (r *FakeReader) WaitCard(ctx context.Context) (Card, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case c, ok := <-r.Cards:
		if !ok {
			return nil, errors.New("fake reader: closed")
		}
		return c, nil
	}
}

func (r *FakeReader) Close() error { return nil }
