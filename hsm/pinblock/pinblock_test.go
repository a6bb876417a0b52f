package pinblock

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func TestFormat1Layout(t *testing.T) {
	// A fixed "random" source makes the fill known: all 0xAB bytes.
	fill := bytes.NewReader(bytes.Repeat([]byte{0xAB}, 8))
	got, err := Format1("1234", fill)
	if err != nil {
		t.Fatal(err)
	}
	// 1 4 1234 then fill nibbles from positions 6.. of the fill bytes.
	want := []byte{0x14, 0x12, 0x34, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB}
	if !bytes.Equal(got, want) {
		t.Fatalf("block = %X, want %X", got, want)
	}
	fill = bytes.NewReader(bytes.Repeat([]byte{0xAB}, 8))
	got, err = Format1("12345", fill)
	if err != nil {
		t.Fatal(err)
	}
	want = []byte{0x15, 0x12, 0x34, 0x5B, 0xAB, 0xAB, 0xAB, 0xAB}
	if !bytes.Equal(got, want) {
		t.Fatalf("block = %X, want %X", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, pin := range []string{"0000", "1234", "98765", "000000000000", "123456789012"} {
		b, err := Format1(pin, rand.Reader)
		if err != nil {
			t.Fatalf("Format1(len %d): %v", len(pin), err)
		}
		if len(b) != Size || b[0]>>4 != 1 || int(b[0]&0xF) != len(pin) {
			t.Fatalf("bad header %X", b[0])
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if got != pin {
			t.Fatal("round trip changed the PIN")
		}
	}
}

func TestFormat1Refuses(t *testing.T) {
	for name, pin := range map[string]string{
		"short": "123", "long": "1234567890123", "letter": "12a4", "empty": "", "space": "12 34",
	} {
		if _, err := Format1(pin, rand.Reader); !errors.Is(err, ErrPIN) {
			t.Errorf("%s: err = %v, want ErrPIN", name, err)
		}
	}
	if _, err := Format1("1234", bytes.NewReader([]byte{1, 2})); !errors.Is(err, ErrRandom) {
		t.Errorf("short random: err = %v, want ErrRandom", err)
	}
	if _, err := Format1("1234", nil); !errors.Is(err, ErrRandom) {
		t.Errorf("nil random: err = %v, want ErrRandom", err)
	}
}

func TestParseRefuses(t *testing.T) {
	cases := map[string][]byte{
		"short":         {0x14, 0x12, 0x34},
		"long":          {0x14, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
		"format 0":      {0x04, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
		"format 3":      {0x34, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
		"length 3":      {0x13, 0x12, 0x3F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
		"length 13":     {0x1D, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x3F},
		"non-digit":     {0x14, 0x1A, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
		"last nibble":   {0x14, 0x12, 0x3F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
		"12 digits bad": {0x1C, 0x12, 0x34, 0x56, 0x78, 0x90, 0x1A, 0xFF},
		"nil":           nil,
	}
	for name, b := range cases {
		if _, err := Parse(b); !errors.Is(err, ErrBlock) {
			t.Errorf("%s: err = %v, want ErrBlock", name, err)
		}
	}
}

func TestErrorsDoNotLeakPIN(t *testing.T) {
	_, err := Parse([]byte{0x15, 0x98, 0x76, 0x5A, 0xFF, 0xFF, 0xFF, 0xFF})
	if err != nil {
		t.Fatalf("fill nibble A must be accepted: %v", err)
	}
	_, err = Parse([]byte{0x15, 0x98, 0x7A, 0x5F, 0xFF, 0xFF, 0xFF, 0xFF})
	if err == nil || bytes.Contains([]byte(err.Error()), []byte("987")) {
		t.Fatalf("error must not carry PIN digits: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{0x14, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0x1C, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x3E})
	f.Add([]byte{0x04, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		pin, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrBlock) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(pin) < MinPINLen || len(pin) > MaxPINLen {
			t.Fatalf("accepted PIN of length %d", len(pin))
		}
		// Re-encoding with the block's own bytes as the fill must give the
		// whole block back: control, length, every PIN digit (including
		// the last one of an odd-length PIN, which shares its byte with
		// the first fill nibble) and the fill.
		again, err := Format1(pin, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatal("block not reproduced by Format1")
		}
	})
}
