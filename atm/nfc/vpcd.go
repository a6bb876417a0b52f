package nfc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// DefaultVPCDPort is the port vsmartcard's vpcd listens on for a virtual
// card (Debian's /etc/reader.conf.d/vpcd: 0x8C7B).
const DefaultVPCDPort = 35963

// The one-byte control messages of the vpcd protocol.
const (
	VPCDPowerOff = 0
	VPCDPowerOn  = 1
	VPCDReset    = 2
	VPCDGetATR   = 4
)

// ContactlessATR is the ATR a PC/SC reader builds for an ISO 14443-4
// card without historical bytes, as a phone in host card emulation
// presents (PC/SC part 3, 3.1.3.2.3.1).
var ContactlessATR = []byte{0x3B, 0x80, 0x80, 0x01, 0x01}

// maxFrame bounds a vpcd frame: a short APDU with 255 data bytes and Le,
// or an extended one; anything longer is not a command APDU.
const maxFrame = 65544

// ErrFrame: a vpcd stream that is not length-prefixed frames.
var ErrFrame = errors.New("nfc: malformed vpcd frame")

// ReadFrame reads one vpcd frame: a 2-byte big-endian length, then as many
// bytes. A frame of one byte is a control message (VPCDPowerOff...).
func ReadFrame(r io.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(h[:]))
	if n == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrFrame)
	}
	if n > maxFrame {
		return nil, fmt.Errorf("%w: %d bytes", ErrFrame, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: %w", ErrFrame, err)
	}
	return b, nil
}

// WriteFrame writes one vpcd frame.
func WriteFrame(w io.Writer, b []byte) error {
	if len(b) > 0xFFFF {
		return fmt.Errorf("%w: %d bytes", ErrFrame, len(b))
	}
	out := make([]byte, 2, 2+len(b))
	binary.BigEndian.PutUint16(out, uint16(len(b)))
	_, err := w.Write(append(out, b...))
	return err
}

// App answers command APDUs as an app on a card does; Respond returns the
// response APDU (data and status word).
type App interface {
	Respond(cmd []byte) []byte
}

// AppFunc adapts a function to App.
type AppFunc func(cmd []byte) []byte

func (f AppFunc) Respond(cmd []byte) []byte { return f(cmd) }

// ServeVPCD plays a card on the vpcd connection conn: the card is in the
// reader's field for as long as conn is open. It answers control messages
// (the ATR for VPCDGetATR) and passes every APDU to app, until ctx is done,
// conn closes or done returns true after an APDU (the phone is taken away).
// It closes conn on return.
func ServeVPCD(ctx context.Context, conn net.Conn, atr []byte, app App, done func() bool) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		f, err := ReadFrame(conn)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return nil // the reader hung up
			}
			return err
		}
		if len(f) == 1 {
			switch f[0] {
			case VPCDPowerOff, VPCDPowerOn, VPCDReset:
			case VPCDGetATR:
				if err := WriteFrame(conn, atr); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%w: control message %d", ErrFrame, f[0])
			}
			continue
		}
		if err := WriteFrame(conn, app.Respond(f)); err != nil {
			return err
		}
		if done != nil && done() {
			return nil
		}
	}
}

// DialVPCD connects a virtual card to the vpcd reader at addr
// ("127.0.0.1:35963").
func DialVPCD(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("nfc: the virtual reader (vpcd) at %s: %w", addr, err)
	}
	return c, nil
}
