package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

var testTPDU = []byte{0x60, 0x00, 0x10, 0x00, 0x00}

func TestFrameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Framer
		hdr  string
	}{
		{"plain", Framer{}, "\x00\x04"},
		{"tpdu", Framer{TPDU: testTPDU}, "\x00\x09\x60\x00\x10\x00\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tc.f.WriteFrame(&buf, []byte("0800")); err != nil {
				t.Fatal(err)
			}
			if err := tc.f.WriteFrame(&buf, []byte("0810")); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(buf.String(), tc.hdr+"0800") {
				t.Fatalf("frame bytes % x", buf.Bytes())
			}
			for _, want := range []string{"0800", "0810"} {
				got, err := tc.f.ReadFrame(&buf)
				if err != nil || string(got) != want {
					t.Fatalf("got %q, %v", got, err)
				}
			}
			if _, err := tc.f.ReadFrame(&buf); err != io.EOF {
				t.Fatalf("clean end: %v", err)
			}
		})
	}
}

func TestFrameErrors(t *testing.T) {
	small := Framer{MaxSize: 10}
	cases := []struct {
		name string
		f    Framer
		in   string
		want error
	}{
		{"zero length", Framer{}, "\x00\x00", ErrFrameMalformed},
		{"too large", small, "\x00\x0b" + strings.Repeat("0", 11), ErrFrameTooLarge},
		{"too large default", Framer{}, "\x10\x01", ErrFrameTooLarge},
		{"half header", Framer{}, "\x00", ErrFrameTruncated},
		{"short body", Framer{}, "\x00\x05080", ErrFrameTruncated},
		{"header only", Framer{}, "\x00\x05", ErrFrameTruncated},
		{"bad tpdu id", Framer{TPDU: testTPDU}, "\x00\x09\x61\x00\x10\x00\x000800", ErrFrameMalformed},
		{"tpdu without message", Framer{TPDU: testTPDU}, "\x00\x05\x60\x00\x10\x00\x00", ErrFrameMalformed},
		{"bad configured tpdu", Framer{TPDU: []byte{0x60}}, "\x00\x040800", ErrFrameMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.f.ReadFrame(strings.NewReader(tc.in))
			var fe *FrameError
			if !errors.Is(err, tc.want) || !errors.As(err, &fe) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Exactly MaxSize is accepted.
	if got, err := small.ReadFrame(strings.NewReader("\x00\x0a0123456789")); err != nil || len(got) != 10 {
		t.Fatalf("max size frame: %v", err)
	}
}

func TestWriteFrameErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := (Framer{MaxSize: 8}).WriteFrame(&buf, make([]byte, 9)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatal(err)
	}
	if err := (Framer{TPDU: testTPDU, MaxSize: 8}).WriteFrame(&buf, make([]byte, 4)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatal(err)
	}
	if err := (Framer{}).WriteFrame(&buf, nil); !errors.Is(err, ErrFrameMalformed) {
		t.Fatal(err)
	}
	if err := (Framer{TPDU: []byte{0x70, 0, 0, 0, 0}}).WriteFrame(&buf, []byte("x")); !errors.Is(err, ErrFrameMalformed) {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatal("bytes written on error")
	}
}
