package nfc_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"reflect"
	"testing"

	"github.com/cardless-atm/cardless/atm/nfc"
)

// TestServeVPCD plays vpcd's side of the socket: power on, ATR, the two
// APDUs, and the card leaves after the session.
func TestServeVPCD(t *testing.T) {
	reader, card := net.Pipe()
	app := &nfc.PhoneApp{AID: aid}
	errc := make(chan error, 1)
	go func() {
		errc <- nfc.ServeVPCD(context.Background(), card, nfc.ContactlessATR, app, func() bool { return app.Payload() != "" })
	}()
	send := func(b []byte) {
		if err := nfc.WriteFrame(reader, b); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() []byte {
		b, err := nfc.ReadFrame(reader)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	send([]byte{nfc.VPCDPowerOn})
	send([]byte{nfc.VPCDGetATR})
	if got := recv(); !reflect.DeepEqual(got, nfc.ContactlessATR) {
		t.Fatalf("ATR % X", got)
	}
	send(selectAPDU())
	if got := recv(); !reflect.DeepEqual(got, []byte{0x90, 0x00}) {
		t.Fatalf("SELECT answered % X", got)
	}
	send(sessionAPDU())
	if got := recv(); !reflect.DeepEqual(got, []byte{0x90, 0x00}) {
		t.Fatalf("SESSION answered % X", got)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the card stayed: %v", err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want error
	}{
		{nil, io.EOF},
		{[]byte{0}, io.ErrUnexpectedEOF},
		{[]byte{0, 0}, nfc.ErrFrame},
		{[]byte{0, 3, 1, 2}, io.ErrUnexpectedEOF},
	} {
		if _, err := nfc.ReadFrame(bytes.NewReader(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("ReadFrame(% X): %v, want %v", tc.in, err, tc.want)
		}
	}
	got, err := nfc.ReadFrame(bytes.NewReader([]byte{0, 2, 0x90, 0, 9}))
	if err != nil || !reflect.DeepEqual(got, []byte{0x90, 0}) {
		t.Fatalf("% X, %v", got, err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 1, 4})
	f.Add([]byte{0, 2, 0x90, 0})
	f.Add([]byte{0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := nfc.ReadFrame(bytes.NewReader(b))
		if err != nil {
			return
		}
		var w bytes.Buffer
		if err := nfc.WriteFrame(&w, fr); err != nil || !bytes.Equal(w.Bytes(), b[:2+len(fr)]) {
			t.Fatalf("frame % X does not round-trip: % X (%v)", fr, w.Bytes(), err)
		}
	})
}

func FuzzParseCommand(f *testing.F) {
	f.Add(selectAPDU())
	f.Add(sessionAPDU())
	f.Add([]byte{0, 0xB0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := nfc.ParseCommand(b)
		if err != nil {
			return
		}
		out, err := c.Bytes()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("% X parsed to %+v, encodes to % X (%v)", b, c, out, err)
		}
		app := &nfc.PhoneApp{AID: aid}
		if r, err := nfc.ParseResponse(app.Respond(b)); err != nil || len(r.Data) != 0 {
			t.Fatalf("the app answered %+v, %v", r, err)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte{0x90, 0x00})
	f.Add([]byte{0x6A})
	f.Add([]byte{1, 2, 3, 0x6A, 0x82})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := nfc.ParseResponse(b)
		if err != nil {
			if len(b) >= 2 {
				t.Fatalf("% X refused: %v", b, err)
			}
			return
		}
		if got := nfc.Reply(r.Data, r.SW); !bytes.Equal(got, b) {
			t.Fatalf("% X round-trips to % X", b, got)
		}
	})
}
