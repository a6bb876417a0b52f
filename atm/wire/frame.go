package wire

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrame is the largest frame (length value) a Framer accepts when
// MaxSize is zero.
const DefaultMaxFrame = 4096

// TPDULen is the length of the optional TPDU header.
const TPDULen = 5

// Sentinel framing errors, wrapped by *FrameError.
var (
	ErrFrameTooLarge  = errors.New("wire: frame too large")
	ErrFrameTruncated = errors.New("wire: frame truncated")
	ErrFrameMalformed = errors.New("wire: frame malformed")
)

// FrameError is a framing failure. After a read error of this type the
// stream is out of sync and the connection must be closed.
type FrameError struct {
	Err    error // ErrFrameTooLarge, ErrFrameTruncated or ErrFrameMalformed
	Length int   // the length header, -1 when not read
	Reason string
	Cause  error // an underlying read error, if any
}

func (e *FrameError) Error() string {
	s := e.Err.Error()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Length >= 0 {
		s += fmt.Sprintf(" (length %d)", e.Length)
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the sentinel and the cause.
func (e *FrameError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// Framer reads and writes frames: a 2-byte big-endian length that excludes
// itself, then (when TPDU is set) a 5-byte TPDU, then the message.
type Framer struct {
	// TPDU, when not nil, is 5 bytes with first byte 0x60: it is written
	// before every message, and every frame read must carry a TPDU whose
	// first byte is 0x60 (its addresses are not checked; the peer usually
	// swaps destination and source).
	TPDU []byte
	// MaxSize is the largest length value accepted or written (TPDU
	// included); 0 means DefaultMaxFrame, and it is never above 65535.
	MaxSize int
}

func (f Framer) max() int {
	switch {
	case f.MaxSize <= 0:
		return DefaultMaxFrame
	case f.MaxSize > 0xFFFF:
		return 0xFFFF
	}
	return f.MaxSize
}

// ErrBadTPDU is returned by CheckTPDU and ParseTPDU for a configured TPDU
// that is not 5 bytes (10 hex digits) whose first byte is 0x60.
var ErrBadTPDU = errors.New("wire: TPDU must be 5 bytes (10 hex digits) starting 0x60")

// CheckTPDU checks a configured TPDU (Framer.TPDU and the TPDU of every
// link configuration): nil means no TPDU and is valid; anything else must
// be TPDULen bytes whose first byte is 0x60. It returns nil or ErrBadTPDU.
func CheckTPDU(tpdu []byte) error {
	if tpdu == nil {
		return nil
	}
	if len(tpdu) != TPDULen || tpdu[0] != 0x60 {
		return ErrBadTPDU
	}
	return nil
}

// ParseTPDU decodes a TPDU written in a configuration file as 10 hex
// digits (for example "6000010000") and checks it as CheckTPDU does. The
// empty string means no TPDU: nil, nil. Any other bad value gives an error
// wrapping ErrBadTPDU.
func ParseTPDU(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not hex", ErrBadTPDU)
	}
	if err := CheckTPDU(b); err != nil {
		return nil, err
	}
	return b, nil
}

func (f Framer) checkTPDU() error {
	if CheckTPDU(f.TPDU) != nil {
		return &FrameError{Err: ErrFrameMalformed, Length: -1, Reason: "configured TPDU must be 5 bytes starting 0x60"}
	}
	return nil
}

// ReadFrame reads one frame and returns the message without its header and
// TPDU. A clean end of stream before the first byte gives io.EOF; any
// framing fault gives a *FrameError; other read errors are returned
// wrapped.
func (f Framer) ReadFrame(r io.Reader) ([]byte, error) {
	if err := f.checkTPDU(); err != nil {
		return nil, err
	}
	var hdr [2]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, readErr(err, -1)
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 {
		return nil, &FrameError{Err: ErrFrameMalformed, Length: 0, Reason: "zero length"}
	}
	if n > f.max() {
		return nil, &FrameError{Err: ErrFrameTooLarge, Length: n, Reason: fmt.Sprintf("max %d", f.max())}
	}
	if f.TPDU != nil && n <= TPDULen {
		return nil, &FrameError{Err: ErrFrameMalformed, Length: n, Reason: "no message after the TPDU"}
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, readErr(err, n)
	}
	if f.TPDU != nil {
		if buf[0] != 0x60 {
			return nil, &FrameError{Err: ErrFrameMalformed, Length: n, Reason: "TPDU does not start with 0x60"}
		}
		buf = buf[TPDULen:]
	}
	return buf, nil
}

func readErr(err error, n int) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FrameError{Err: ErrFrameTruncated, Length: n}
	}
	return fmt.Errorf("wire: read frame: %w", err)
}

// AppendFrame appends the frame of msg to dst.
func (f Framer) AppendFrame(dst, msg []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0) // length header, written by frameInPlace
	dst = append(dst, f.TPDU...)
	dst = append(dst, msg...)
	if _, err := f.frameInPlace(dst[start:]); err != nil {
		return nil, err
	}
	return dst, nil
}

// frameInPlace frames the message that buf holds after room for the
// header and TPDU (2+len(f.TPDU) bytes, whatever their content): it writes
// the header and TPDU there and returns buf. AppendFrame uses it, so the
// checks and errors are the same.
func (f Framer) frameInPlace(buf []byte) ([]byte, error) {
	if err := f.checkTPDU(); err != nil {
		return nil, err
	}
	hdr := 2 + len(f.TPDU)
	if len(buf) <= hdr {
		return nil, &FrameError{Err: ErrFrameMalformed, Length: 0, Reason: "empty message"}
	}
	n := len(buf) - 2
	if n > f.max() {
		return nil, &FrameError{Err: ErrFrameTooLarge, Length: n, Reason: fmt.Sprintf("max %d", f.max())}
	}
	binary.BigEndian.PutUint16(buf, uint16(n))
	copy(buf[2:], f.TPDU)
	return buf, nil
}

// WriteFrame writes the frame of msg with a single Write call.
func (f Framer) WriteFrame(w io.Writer, msg []byte) error {
	b, err := f.AppendFrame(make([]byte, 0, 2+TPDULen+len(msg)), msg)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("wire: write frame: %w", err)
	}
	return nil
}
