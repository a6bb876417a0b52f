package lcdm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.bug.st/serial"

	"github.com/cardless-atm/cardless/atm/clock"
)

// Tries is how many times the driver sends a frame the device NAKs (or,
// for commands that are safe to repeat, does not answer), and how many
// damaged answers it NAKs before it gives up.
const Tries = 3

// maxNoise bounds the bytes the driver skips while waiting for an ACK or
// an answer.
const maxNoise = 256

type linkKind int

const (
	linkNotSent  linkKind = iota // the frame was never written: nothing ran
	linkRefused                  // the device NAKed every try: nothing ran
	linkSilent                   // no ACK or NAK at all
	linkNoAnswer                 // ACK, then no intact answer
	linkIO                       // the port failed after the frame was written
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
		linkNotSent: "not sent", linkRefused: fmt.Sprintf("refused (NAK %d times)", Tries),
		linkSilent: "no answer", linkNoAnswer: "acknowledged but no intact answer", linkIO: "port failure",
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
// ACKs. It sends the frame again after a NAK (at most Tries times) and NAKs
// a damaged answer (at most Tries times). When repeatable (status, purge,
// ROM version), silence also makes it send the frame again; a dispense
// frame is never sent again unless the device NAKed it, since a lost ACK
// would otherwise pay twice.
//
// Timers are armed on the clock before the frame is written, so a test's
// simulator that advances a fake clock when it stays silent always fires
// them.
func (c *conn) exchange(ctx context.Context, cmd byte, data []byte, ackTimeout, answerTimeout time.Duration, repeatable bool) (Frame, error) {
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
			lastErr, kind = errors.New("NAK"), linkRefused
			continue
		case errors.Is(err, errSilence):
			stop()
			mayHaveRun = true // the device may have taken it and lost its ACK
			lastErr, kind = errors.New("no ACK"), linkSilent
			if repeatable {
				continue
			}
			return Frame{}, &linkError{kind: linkSilent, cmd: cmd, mayHaveRun: true, err: lastErr}
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
		if !repeatable {
			return Frame{}, &linkError{kind: linkNoAnswer, cmd: cmd, mayHaveRun: true, err: err}
		}
	}
	return Frame{}, &linkError{kind: kind, cmd: cmd, mayHaveRun: mayHaveRun, err: lastErr}
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
