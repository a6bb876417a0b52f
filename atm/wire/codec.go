package wire

import (
	"errors"
	"io"
	"sync"

	"github.com/moov-io/iso8583"
	iso8583errors "github.com/moov-io/iso8583/errors"
)

// Codec is the MessageReader and MessageWriter of
// github.com/moov-io/iso8583-connection for one link: framing plus
// protection.
//
// ReadMessage: a framing error (too large, truncated, malformed, or a read
// error) is returned, so the connection closes: the stream is out of sync.
// A frame whose message fails to unpack or to verify is reported to
// OnReject and skipped ((nil, nil), which the connection's read loop takes
// as "keep reading"): nothing reaches a handler and the link survives.
//
// WriteMessage: a message that cannot be sealed or framed (missing key,
// field too long, frame too large) is returned as an
// *iso8583errors.PackError, so the connection hands the error to the
// sender and stays open; a write error closes the connection.
type Codec struct {
	Framer    Framer
	Protector *Protector
	// OnReject, if set, is called (on the read goroutine) with the MTI and
	// STAN as far as known and the *MessageError of every rejected
	// message. It must not block for long.
	OnReject func(mti, stan string, err error)
}

// ReadMessage implements connection.MessageReader.
func (c *Codec) ReadMessage(r io.Reader) (*iso8583.Message, error) {
	raw, err := c.Framer.ReadFrame(r)
	if err != nil {
		return nil, err
	}
	m, err := c.Protector.Open(raw)
	if err != nil {
		if c.OnReject != nil {
			var me *MessageError
			mti, stan := "", ""
			if errors.As(err, &me) {
				mti, stan = me.MTI, me.STAN
			}
			c.OnReject(mti, stan, err)
		}
		return nil, nil
	}
	return m, nil
}

// WriteMessage implements connection.MessageWriter. The message is sealed
// straight into a pooled frame buffer (header and TPDU first), framed in
// place and written in one call.
func (c *Codec) WriteMessage(w io.Writer, m *iso8583.Message) error {
	bp := framePool.Get().(*[]byte)
	defer framePool.Put(bp)
	hdr := 2 + len(c.Framer.TPDU)
	buf := (*bp)[:0]
	for range hdr {
		buf = append(buf, 0)
	}
	buf, err := c.Protector.appendSeal(buf, m)
	if err != nil {
		return &iso8583errors.PackError{Err: err}
	}
	if cap(buf) <= maxPooledFrame {
		*bp = buf[:0]
	}
	frame, err := c.Framer.frameInPlace(buf)
	if err != nil {
		return &iso8583errors.PackError{Err: err}
	}
	if _, err := w.Write(frame); err != nil {
		return err
	}
	return nil
}

// maxPooledFrame bounds the frame buffers kept in framePool.
const maxPooledFrame = 8 << 10

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
