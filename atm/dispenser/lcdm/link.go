package lcdm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.bug.st/serial"

	"github.com/cardless-atm/cardless/atm/clock"
)

// Tries is how many times the driver sends a frame of a command that is
// safe to repeat (status, purge, ROM version) when the device NAKs it or
// does not answer, and how many damaged answers it NAKs before it gives
// up. A dispense frame is sent once, whatever happens.
const Tries = 3

// maxNoise bounds the bytes the driver skips while waiting for an ACK or
// an answer.
const maxNoise = 256

type linkKind int

const (
	linkNotSent   linkKind = iota // the frame was never written: nothing ran
	linkRefused                   // the device NAKed the frame (every try): nothing ran
	linkSilent                    // no ACK or NAK at all
	linkNoAnswer                  // ACK, then no intact answer
	linkIO                        // the port failed after the frame was written
	linkAmbiguous                 // a NAK that is not a clean refusal: the command may have run
)

// linkError is a failed exchange with the device.
type linkError struct {
	kind linkKind
	cmd  byte
	// mayHaveRun: the device may have received and executed the command
	// (it ACKed it, or a frame was written and not NAKed).
	mayHaveRun bool
	err        error
}

func (e *linkError) Error() string {
	what := map[linkKind]string{
		linkNotSent: "not sent", linkRefused: "refused by the device (NAK)",
		linkSilent: "no answer", linkNoAnswer: "acknowledged but no intact answer", linkIO: "port failure",
		linkAmbiguous: "ambiguous NAK, the command may have run",
	}[e.kind]
	s := fmt.Sprintf("lcdm: command %#02x: %s", e.cmd, what)
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

func (e *linkError) Unwrap() error { return e.err }

var errSilence = errors.New("silence")

// conn is an open serial link. Its methods are called with the driver's
// command slot held, never concurrently.
type conn struct {
	port serial.Port
	clk  clock.Clock
	buf  []byte
	// log receives every frame and control byte for debugging.
	trace func(dir string, b []byte)
}

// fill reads from the port into c.buf. It returns when at least one byte
// arrived, when ctx ends, or with errSilence once the timer t has fired
// and a full serial read after that brought nothing (so bytes already on
// their way are never lost to a clock that moves faster than the wire).
func (c *conn) fill(ctx context.Context, t clock.Timer) error {
	fired := false
	var tmp [64]byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wasFired := fired
		n, err := c.port.Read(tmp[:])
		if n > 0 {
			c.buf = append(c.buf, tmp[:n]...)
			return nil
		}
		if err != nil {
			return err
		}
		if wasFired {
			return errSilence
		}
		select {
		case <-t.C():
			fired = true
		default:
		}
	}
}

func (c *conn) write(b []byte) (int, error) {
	if c.trace != nil {
		c.trace("host->dev", b)
	}
	n, err := c.port.Write(b)
	if err == nil && n < len(b) {
		err = fmt.Errorf("short write %d of %d", n, len(b))
	}
	return n, err
}

// waitAck waits for ACK or NAK, skipping anything else (bounded): stray
// bytes, and whole stale answer frames, whose BCC may look like ACK or NAK.
func (c *conn) waitAck(ctx context.Context, t clock.Timer) (byte, error) {
	skipped := 0
	for {
		for len(c.buf) > 0 && skipped <= maxNoise {
			b := c.buf[0]
			if b == ACK || b == NAK {
				c.buf = c.buf[1:]
				if c.trace != nil {
					c.trace("dev->host", []byte{b})
				}
				return b, nil
			}
			n := 1
			if b == SOH {
				if n = staleFrameLen(c.buf); n == 0 {
					break // wait for the rest of the frame
				}
			}
			c.buf = c.buf[n:]
			skipped += n
		}
		if skipped > maxNoise {
			return 0, errors.New("noise on the line")
		}
		if err := c.fill(ctx, t); err != nil {
			return 0, err
		}
	}
}

// errAmbiguousNAK: a NAK came after a dispense frame but not as a clean
// refusal (see waitAckOnce).
var errAmbiguousNAK = errors.New("ambiguous NAK")

// ackOnce is the device's reaction to a frame that is never sent again.
type ackOnce int

const (
	ackTaken   ackOnce = iota // ACK: the device took the frame
	ackRefused                // a clean NAK: the device refused the frame, nothing ran
)

// waitAckOnce waits for the device's reaction to a frame that must never
// be sent twice (a dispense). Stray bytes and whole stale answer frames
// before an ACK are skipped, as in waitAck. A NAK is taken as a refusal
// only when it is the very first byte read after the write and nothing
// follows until quiet has fired (armed before the write at twice the ACK
// timeout, so the line stays quiet for at least one ACK timeout after the
// NAK) and one more serial read found the line silent. Any other NAK (after
// other bytes, or followed by anything: the real ACK, an answer, noise) may
// be a stray 0x15 — the tail of a stale answer cut by ResetInputBuffer,
// line noise — while the device took the frame: errAmbiguousNAK.
func (c *conn) waitAckOnce(ctx context.Context, ackT, quiet clock.Timer) (ackOnce, error) {
	seen := 0 // bytes read before an ACK or NAK
	for {
		for len(c.buf) > 0 && seen <= maxNoise {
			b := c.buf[0]
			if b == ACK {
				c.buf = c.buf[1:]
				if c.trace != nil {
					c.trace("dev->host", []byte{b})
				}
				return ackTaken, nil
			}
			if b == NAK {
				if seen > 0 {
					if c.trace != nil {
						c.trace("dev->host", c.buf)
					}
					return 0, fmt.Errorf("%w: NAK after %d other bytes", errAmbiguousNAK, seen)
				}
				if c.trace != nil {
					c.trace("dev->host", []byte{b})
				}
				c.buf = c.buf[1:]
				for len(c.buf) == 0 {
					err := c.fill(ctx, quiet)
					if errors.Is(err, errSilence) {
						return ackRefused, nil
					}
					if err != nil {
						return 0, err
					}
				}
				if c.trace != nil {
					c.trace("dev->host", c.buf)
				}
				return 0, fmt.Errorf("%w: NAK followed by % X", errAmbiguousNAK, c.buf)
			}
			n := 1
			if b == SOH {
				if n = staleFrameLen(c.buf); n == 0 {
					break // wait for the rest of the frame
				}
			}
			c.buf = c.buf[n:]
			seen += n
		}
		if seen > maxNoise {
			return 0, errors.New("noise on the line")
		}
		if err := c.fill(ctx, ackT); err != nil {
			return 0, err
		}
	}
}

// staleFrameLen is the length of the answer frame at the start of b (which
// starts with SOH), or 0 if more bytes are needed to skip it whole.
func staleFrameLen(b []byte) int {
	if len(b) < 4 {
		return 0
	}
	if len(b) >= ErrorAnswerLength && b[ErrorAnswerLength-2] == ETX && BCC(b[:ErrorAnswerLength-1]) == b[ErrorAnswerLength-1] {
		return ErrorAnswerLength
	}
	n := AnswerLength(b[3])
	if n == 0 {
		return 1 // not a frame we know: skip the SOH alone
	}
	if len(b) < n {
		return 0
	}
	return n
}

// readAnswer reads one answer frame to cmd: it skips to SOH and takes the
// command's answer length (or the 7-byte error-only form). A frame whose
// BCC or framing is wrong comes back as an error with ok=false and the
// bytes consumed, so the caller NAKs it.
func (c *conn) readAnswer(ctx context.Context, t clock.Timer, cmd byte) (Frame, error) {
	want := AnswerLength(cmd)
	skipped := 0
	for {
		// Skip to SOH.
		for len(c.buf) > 0 && c.buf[0] != SOH {
			c.buf = c.buf[1:]
			if skipped++; skipped > maxNoise {
				return Frame{}, errors.New("noise on the line")
			}
		}
		b := c.buf
		if len(b) >= ErrorAnswerLength && b[ErrorAnswerLength-2] == ETX && BCC(b[:ErrorAnswerLength-1]) == b[ErrorAnswerLength-1] &&
			(want == ErrorAnswerLength || b[4] != byte(Good)) {
			c.buf = c.buf[ErrorAnswerLength:]
			return c.parse(b[:ErrorAnswerLength])
		}
		if len(b) >= want {
			c.buf = c.buf[want:]
			return c.parse(b[:want])
		}
		if err := c.fill(ctx, t); err != nil {
			if errors.Is(err, errSilence) && len(c.buf) > 0 {
				// A truncated answer: take it as damaged.
				b := c.buf
				c.buf = nil
				return c.parse(b)
			}
			return Frame{}, err
		}
	}
}

type damaged struct{ err error }

func (d damaged) Error() string { return "damaged answer: " + d.err.Error() }

func (c *conn) parse(b []byte) (Frame, error) {
	if c.trace != nil {
		c.trace("dev->host", b)
	}
	f, err := ParseFrame(b)
	if err != nil {
		return Frame{}, damaged{err}
	}
	if f.ID != ID || f.Start != SOH {
		return Frame{}, damaged{fmt.Errorf("unexpected start %#02x or ID %#02x", f.Start, f.ID)}
	}
	return f, nil
}

// exchange sends cmd with data and returns the device's answer, which it
// ACKs, and NAKs a damaged answer (at most Tries times). When repeatable
// (status, purge, ROM version), a NAK or silence makes it send the frame
// again (at most Tries times). A frame that is not repeatable (a dispense)
// is sent once: see exchangeOnce.
//
// Timers are armed on the clock before the frame is written, so a test's
// simulator that advances a fake clock when it stays silent always fires
// them.
func (c *conn) exchange(ctx context.Context, cmd byte, data []byte, ackTimeout, answerTimeout time.Duration, repeatable bool) (Frame, error) {
	if !repeatable {
		return c.exchangeOnce(ctx, cmd, data, ackTimeout, answerTimeout)
	}
	frame := Command(cmd, data...).Encode()
	mayHaveRun := false
	var lastErr error
	kind := linkRefused
	for try := 1; try <= Tries; try++ {
		if err := ctx.Err(); err != nil {
			return Frame{}, &linkError{kind: linkNotSent, cmd: cmd, mayHaveRun: mayHaveRun, err: err}
		}
		c.buf = nil
		_ = c.port.ResetInputBuffer() // stale bytes of an abandoned exchange
		ackT := c.clk.NewTimer(ackTimeout)
		ansT := c.clk.NewTimer(ackTimeout + answerTimeout)
		stop := func() { ackT.Stop(); ansT.Stop() }
		n, err := c.write(frame)
		if err != nil {
			stop()
			if n == 0 && !mayHaveRun {
				return Frame{}, &linkError{kind: linkNotSent, cmd: cmd, err: err}
			}
			return Frame{}, &linkError{kind: linkIO, cmd: cmd, mayHaveRun: true, err: err}
		}
		b, err := c.waitAck(ctx, ackT)
		switch {
		case err == nil && b == NAK:
			stop()
			lastErr, kind = fmt.Errorf("NAK %d times", try), linkRefused
			continue
		case errors.Is(err, errSilence):
			stop()
			mayHaveRun = true // the device may have taken it and lost its ACK
			lastErr, kind = errors.New("no ACK"), linkSilent
			continue
		case err != nil:
			stop()
			return Frame{}, &linkError{kind: linkIO, cmd: cmd, mayHaveRun: true, err: err}
		}
		ackT.Stop()
		mayHaveRun = true
		f, err := c.answer(ctx, ansT, cmd, ackTimeout, answerTimeout)
		if err == nil {
			return f, nil
		}
		lastErr, kind = err, linkNoAnswer
		var le *linkError
		if errors.As(err, &le) {
			return Frame{}, err
		}
	}
	return Frame{}, &linkError{kind: kind, cmd: cmd, mayHaveRun: mayHaveRun, err: lastErr}
}

// exchangeOnce is exchange for a frame that is never sent twice (a
// dispense: a device that executed both frames would pay twice). The
// frame is written once. A clean NAK (see waitAckOnce) is a refusal: the
// command did not run (linkRefused, mayHaveRun false). Anything else that
// is not ACK then an intact answer — an ambiguous NAK, silence, no intact
// answer, a port failure after the write — leaves the command possibly
// run (mayHaveRun true).
func (c *conn) exchangeOnce(ctx context.Context, cmd byte, data []byte, ackTimeout, answerTimeout time.Duration) (Frame, error) {
	frame := Command(cmd, data...).Encode()
	if err := ctx.Err(); err != nil {
		return Frame{}, &linkError{kind: linkNotSent, cmd: cmd, err: err}
	}
	c.buf = nil
	_ = c.port.ResetInputBuffer() // stale bytes of an abandoned exchange
	ackT := c.clk.NewTimer(ackTimeout)
	quiet := c.clk.NewTimer(2 * ackTimeout)
	ansT := c.clk.NewTimer(ackTimeout + answerTimeout)
	stopAck := func() { ackT.Stop(); quiet.Stop() }
	n, err := c.write(frame)
	if err != nil {
		stopAck()
		ansT.Stop()
		if n == 0 {
			return Frame{}, &linkError{kind: linkNotSent, cmd: cmd, err: err}
		}
		return Frame{}, &linkError{kind: linkIO, cmd: cmd, mayHaveRun: true, err: err}
	}
	got, err := c.waitAckOnce(ctx, ackT, quiet)
	stopAck()
	switch {
	case err == nil && got == ackRefused:
		ansT.Stop()
		return Frame{}, &linkError{kind: linkRefused, cmd: cmd, err: errors.New(
			"the device answered the frame with NAK and nothing else: it did not run the command; a dispense frame is never sent again")}
	case errors.Is(err, errAmbiguousNAK):
		ansT.Stop()
		c.buf = nil
		return Frame{}, &linkError{kind: linkAmbiguous, cmd: cmd, mayHaveRun: true, err: err}
	case errors.Is(err, errSilence):
		ansT.Stop()
		return Frame{}, &linkError{kind: linkSilent, cmd: cmd, mayHaveRun: true, err: errors.New("no ACK")}
	case err != nil:
		ansT.Stop()
		return Frame{}, &linkError{kind: linkIO, cmd: cmd, mayHaveRun: true, err: err}
	}
	f, err := c.answer(ctx, ansT, cmd, ackTimeout, answerTimeout)
	if err == nil {
		return f, nil
	}
	var le *linkError
	if errors.As(err, &le) {
		return Frame{}, err
	}
	return Frame{}, &linkError{kind: linkNoAnswer, cmd: cmd, mayHaveRun: true, err: err}
}

// answer reads the answer after the ACK, NAKing damaged ones.
func (c *conn) answer(ctx context.Context, t clock.Timer, cmd byte, ackTimeout, answerTimeout time.Duration) (Frame, error) {
	defer func() { t.Stop() }()
	var last error
	for range Tries {
		f, err := c.readAnswer(ctx, t, cmd)
		var dm damaged
		switch {
		case err == nil && f.Cmd != cmd:
			err = damaged{fmt.Errorf("answer to command %#02x", f.Cmd)}
			fallthrough
		case errors.As(err, &dm):
			last = err
			t.Stop()
			t = c.clk.NewTimer(ackTimeout + answerTimeout) // armed before the NAK goes out
			c.buf = nil
			if _, werr := c.write([]byte{NAK}); werr != nil {
				return Frame{}, &linkError{kind: linkIO, cmd: cmd, mayHaveRun: true, err: werr}
			}
			continue
		case err != nil:
			return Frame{}, err
		}
		if _, err := c.write([]byte{ACK}); err != nil {
			// The answer is in hand; the device will resend it and the
			// next exchange discards it.
			_ = err
		}
		return f, nil
	}
	return Frame{}, fmt.Errorf("%d damaged answers: %w", Tries, last)
}

func parityOf(s string) (serial.Parity, error) {
	switch s {
	case "", "none", "N":
		return serial.NoParity, nil
	case "even", "E":
		return serial.EvenParity, nil
	case "odd", "O":
		return serial.OddParity, nil
	}
	return 0, fmt.Errorf("lcdm: parity %q: want none, even or odd", s)
}
