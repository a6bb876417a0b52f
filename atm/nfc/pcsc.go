//go:build cgo || windows

package nfc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ebfe/scard"
)

// pollEvery bounds how long a wait for a card goes without checking its
// context (SCardGetStatusChange's timeout).
const pollEvery = 250 * time.Millisecond

// PCSC is a contactless reader through PC/SC (pcscd on Linux, WinSCard on
// Windows).
type PCSC struct {
	ctx    *scard.Context // nil once its service went away, until WaitCard establishes another
	name   string         // the substring of the reader's name to use; "" the first
	reader string         // the reader found
	state  scard.StateFlag
}

// NewPCSC connects to the PC/SC service. name picks the reader whose name
// contains it ("" the first reader); the reader may appear later.
func NewPCSC(name string) (*PCSC, error) {
	c, err := scard.EstablishContext()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return &PCSC{ctx: c, name: name}, nil
}

// Reader returns the reader's full name once found.
func (p *PCSC) Reader() string { return p.reader }

func (p *PCSC) findReader() (string, error) {
	names, err := p.ctx.ListReaders()
	if err != nil && !errors.Is(err, scard.ErrNoReadersAvailable) {
		return "", err
	}
	for _, n := range names {
		if strings.Contains(n, p.name) {
			return n, nil
		}
	}
	return "", nil
}

// WaitCard waits for a card to enter the field of the reader and connects
// to it. When the PC/SC service goes away (pcscd stopped or restarted:
// the context's handles are no longer valid), WaitCard fails, and the
// next call establishes a new context: a caller that tries again gets the
// reader back once the service is.
func (p *PCSC) WaitCard(ctx context.Context) (Card, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if p.ctx == nil {
			c, err := scard.EstablishContext()
			if err != nil {
				return nil, fmt.Errorf("nfc: PC/SC service: %w", err)
			}
			p.ctx, p.reader = c, ""
		}
		if p.reader == "" {
			r, err := p.findReader()
			if err != nil {
				p.drop(err)
				return nil, fmt.Errorf("nfc: list readers: %w", err)
			}
			if r == "" {
				sleep(ctx, pollEvery)
				continue
			}
			p.reader, p.state = r, scard.StateUnaware
		}
		rs := []scard.ReaderState{{Reader: p.reader, CurrentState: p.state}}
		err := p.ctx.GetStatusChange(rs, pollEvery)
		switch {
		case errors.Is(err, scard.ErrTimeout):
			continue
		case err != nil:
			// The reader went away (unplugged, pcscd restarted): look
			// for it again (with a new context if the service went).
			p.reader = ""
			p.drop(err)
			sleep(ctx, pollEvery)
			continue
		}
		was := p.state
		p.state = rs[0].EventState &^ scard.StateChanged
		if p.state&scard.StatePresent == 0 || was&scard.StatePresent != 0 && was != scard.StateUnaware {
			continue // empty, or the card already seen is still there
		}
		if p.state&scard.StateMute != 0 {
			continue // a card that does not answer
		}
		c, err := p.ctx.Connect(p.reader, scard.ShareExclusive, scard.ProtocolAny)
		if err != nil {
			if isRemoved(err) {
				continue
			}
			p.drop(err)
			return nil, fmt.Errorf("nfc: connect: %w", err)
		}
		return pcscCard{c}, nil
	}
}

// drop releases the context when err says its service went away (pcscd
// stopped; a call that was waiting when it died gets a communication error).
func (p *PCSC) drop(err error) {
	if errors.Is(err, scard.ErrNoService) || errors.Is(err, scard.ErrServiceStopped) || errors.Is(err, scard.ErrInvalidHandle) || errors.Is(err, scard.ErrCommError) {
		p.ctx.Release()
		p.ctx, p.reader = nil, ""
	}
}

// Close releases the PC/SC context.
func (p *PCSC) Close() error {
	if p.ctx == nil {
		return nil
	}
	return p.ctx.Release()
}

type pcscCard struct{ c *scard.Card }

func (c pcscCard) Transmit(apdu []byte) ([]byte, error) {
	r, err := c.c.Transmit(apdu)
	if err != nil {
		if isRemoved(err) || c.removed() {
			return nil, fmt.Errorf("%w: %w", ErrRemoved, err)
		}
		return nil, fmt.Errorf("nfc: transmit: %w", err)
	}
	if len(r) < 2 && c.removed() {
		// pcscd answers an exchange the card left in the middle of with
		// no bytes at all (no status word) as often as with an error.
		return nil, fmt.Errorf("%w: the reader returned %d bytes and the card is gone", ErrRemoved, len(r))
	}
	return r, nil
}

// removed tells whether a failed exchange was the card leaving the field:
// the reader may report the card's absence only at its next poll (pcscd
// polls every 400 ms), so it asks for up to a second. Only this reader's
// goroutine waits.
func (c pcscCard) removed() bool {
	for range 10 {
		_, err := c.c.Status()
		if err != nil && isRemoved(err) {
			return true
		}
		if err != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func (c pcscCard) Close() error { return c.c.Disconnect(scard.LeaveCard) }

func isRemoved(err error) bool {
	return errors.Is(err, scard.ErrRemovedCard) || errors.Is(err, scard.ErrResetCard) || errors.Is(err, scard.ErrNoSmartcard)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
