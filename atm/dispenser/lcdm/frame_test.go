package lcdm_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cardless-atm/cardless/atm/dispenser/lcdm"
)

// Golden frames, computed independently of this package (by hand and with
// a one-line XOR in another language).
var (
	goldPurge    = []byte{0x04, 0x50, 0x02, 0x44, 0x03, 0x11}
	goldStatus   = []byte{0x04, 0x50, 0x02, 0x46, 0x03, 0x13}
	goldROM      = []byte{0x04, 0x50, 0x02, 0x47, 0x03, 0x12}
	goldUpper05  = []byte{0x04, 0x50, 0x02, 0x45, 0x30, 0x35, 0x03, 0x15}
	goldLower60  = []byte{0x04, 0x50, 0x02, 0x55, 0x36, 0x30, 0x03, 0x06}
	goldBoth6005 = []byte{0x04, 0x50, 0x02, 0x56, 0x36, 0x30, 0x30, 0x35, 0x03, 0x00}
	goldBoth1000 = []byte{0x04, 0x50, 0x02, 0x56, 0x31, 0x30, 0x30, 0x30, 0x03, 0x02}
	goldUpper10  = []byte{0x04, 0x50, 0x02, 0x45, 0x31, 0x30, 0x03, 0x11}
)

func TestCommandFramesGolden(t *testing.T) {
	cases := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"purge", lcdm.Command(lcdm.CmdPurge).Encode(), goldPurge},
		{"status", lcdm.Command(lcdm.CmdStatus).Encode(), goldStatus},
		{"rom", lcdm.Command(lcdm.CmdROMVersion).Encode(), goldROM},
		{"upper 5", mustDispense(t, 5, 0), goldUpper05},
		{"lower 60", mustDispense(t, 0, 60), goldLower60},
		{"both 60+5", mustDispense(t, 60, 5), goldBoth6005},
		{"both 10+0 is upper only", mustDispense(t, 10, 0), goldUpper10},
	}
	for _, c := range cases {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: % X, want % X", c.name, c.got, c.want)
		}
	}
	for _, bad := range [][2]int{{0, 0}, {61, 0}, {0, 61}, {-1, 3}} {
		if _, err := lcdm.DispenseCommand(bad[0], bad[1]); err == nil {
			t.Errorf("DispenseCommand(%d, %d) accepted", bad[0], bad[1])
		}
	}
}

func mustDispense(t *testing.T, up, lo int) []byte {
	t.Helper()
	f, err := lcdm.DispenseCommand(up, lo)
	if err != nil {
		t.Fatal(err)
	}
	return f.Encode()
}

func TestAnswerFramesGolden(t *testing.T) {
	up := lcdm.DispenseAnswer{Cmd: lcdm.CmdUpperDispense, Error: byte(lcdm.PickupError),
		Upper: lcdm.CassetteCount{Check: 3, Exit: 2, Reject: 1, Status: lcdm.CassetteNormal}}
	wantUp := []byte{0x01, 0x50, 0x02, 0x45, 0x30, 0x33, 0x30, 0x32, 0x32, 0x30, 0x30, 0x31, 0x03, 0x17}
	if got := up.Frame().Encode(); !bytes.Equal(got, wantUp) {
		t.Fatalf("upper answer % X, want % X", got, wantUp)
	}
	both := lcdm.DispenseAnswer{Cmd: lcdm.CmdDispenseBoth, Error: byte(lcdm.Good),
		Upper: lcdm.CassetteCount{Check: 61, Exit: 60, Reject: 1, Status: lcdm.CassetteNormal},
		Lower: lcdm.CassetteCount{Check: 5, Exit: 5, Status: lcdm.CassetteNearEnd}}
	wantBoth := []byte{0x01, 0x50, 0x02, 0x56, 0x36, 0x31, 0x36, 0x30, 0x30, 0x35, 0x30, 0x35, 0x30, 0x30, 0x31, 0x30, 0x31, 0x30, 0x30, 0x03, 0x37}
	if got := both.Frame().Encode(); !bytes.Equal(got, wantBoth) {
		t.Fatalf("combined answer % X, want % X", got, wantBoth)
	}
	if got := (lcdm.StatusAnswer{Error: 0x30}).Frame().Encode(); !bytes.Equal(got, []byte{0x01, 0x50, 0x02, 0x46, 0x30, 0x30, 0x80, 0x00, 0x03, 0x96}) {
		t.Fatalf("status answer % X", got)
	}
	if got := lcdm.Answer(lcdm.CmdPurge, 0x30).Encode(); !bytes.Equal(got, []byte{0x01, 0x50, 0x02, 0x44, 0x30, 0x03, 0x24}) {
		t.Fatalf("purge answer % X", got)
	}
	if len(wantUp) != lcdm.AnswerLength(lcdm.CmdUpperDispense) || len(wantBoth) != lcdm.AnswerLength(lcdm.CmdDispenseBoth) {
		t.Fatal("AnswerLength disagrees with the layouts")
	}

	// And back.
	for _, w := range []struct {
		raw  []byte
		want lcdm.DispenseAnswer
	}{{wantUp, up}, {wantBoth, both}} {
		f, err := lcdm.ParseFrame(w.raw)
		if err != nil {
			t.Fatal(err)
		}
		a, err := lcdm.ParseDispenseAnswer(f)
		if err != nil || a != w.want {
			t.Fatalf("parsed %+v, %v; want %+v", a, err, w.want)
		}
	}
}

func TestBCC(t *testing.T) {
	cases := []struct {
		in   []byte
		want byte
	}{
		{nil, 0},
		{[]byte{0x04}, 0x04},
		{[]byte{0x04, 0x50}, 0x54},
		{[]byte{0x04, 0x50, 0x02, 0x44, 0x03}, 0x11},
		{[]byte{0xFF, 0xFF}, 0x00},
	}
	for _, c := range cases {
		if got := lcdm.BCC(c.in); got != c.want {
			t.Errorf("BCC(% X) = %#02x, want %#02x", c.in, got, c.want)
		}
	}
}

func TestParseFrameErrors(t *testing.T) {
	bad := append([]byte(nil), goldStatus...)
	bad[len(bad)-1] ^= 1
	cases := []struct {
		in   []byte
		want error
	}{
		{goldStatus[:5], lcdm.ErrShortFrame},
		{[]byte{0x05, 0x50, 0x02, 0x46, 0x03, 0x12}, lcdm.ErrFrameStart},
		{[]byte{0x04, 0x50, 0x03, 0x46, 0x03, 0x12}, lcdm.ErrFrameStart},
		{[]byte{0x04, 0x50, 0x02, 0x46, 0x04, 0x14}, lcdm.ErrFrameEnd},
		{bad, lcdm.ErrBCC},
	}
	for _, c := range cases {
		if _, err := lcdm.ParseFrame(c.in); !errors.Is(err, c.want) {
			t.Errorf("ParseFrame(% X): %v, want %v", c.in, err, c.want)
		}
	}
	f, err := lcdm.ParseFrame(goldBoth6005)
	if err != nil || f.Start != lcdm.EOT || f.ID != lcdm.ID || f.Cmd != lcdm.CmdDispenseBoth || string(f.Data) != "6005" {
		t.Fatalf("ParseFrame(both) = %+v, %v", f, err)
	}
	up, lo, err := lcdm.ParseDispenseCommand(f)
	if err != nil || up != 60 || lo != 5 {
		t.Fatalf("ParseDispenseCommand = %d, %d, %v", up, lo, err)
	}
	// Data may hold ETX: the length delimits the frame.
	withETX := lcdm.Answer(lcdm.CmdStatus, 0x30, 0x30, 0x80, lcdm.ETX).Encode()
	f, err = lcdm.ParseFrame(withETX)
	if err != nil || !bytes.Equal(f.Data, []byte{0x30, 0x30, 0x80, 0x03}) {
		t.Fatalf("frame with ETX in data: %+v, %v", f, err)
	}
}

func TestErrorCodeClasses(t *testing.T) {
	want := map[lcdm.ErrorCode]lcdm.Class{
		0x30: lcdm.ClassOK, 0x31: lcdm.ClassOK,
		0x32: lcdm.ClassFault, 0x33: lcdm.ClassFault, 0x34: lcdm.ClassFault,
		0x35: lcdm.ClassExitJam,
		0x36: lcdm.ClassFault, 0x37: lcdm.ClassFault,
		0x38: lcdm.ClassBillEnd,
		0x3A: lcdm.ClassFault, 0x3B: lcdm.ClassFault, 0x3C: lcdm.ClassFault,
		0x3D: lcdm.ClassExitJam,
		0x3F: lcdm.ClassFault,
		0x40: lcdm.ClassBillEnd,
		0x41: lcdm.ClassFault, 0x42: lcdm.ClassFault, 0x43: lcdm.ClassFault, 0x44: lcdm.ClassFault,
		0x45: lcdm.ClassFault, 0x46: lcdm.ClassFault, 0x47: lcdm.ClassFault,
		0x48: lcdm.ClassExitJam,
		0x49: lcdm.ClassFault, 0x4A: lcdm.ClassFault, 0x4C: lcdm.ClassFault, 0x4E: lcdm.ClassFault,
	}
	codes := lcdm.ErrorCodes()
	if len(codes) != len(want) {
		t.Fatalf("%d codes in the table, want %d (the reference's list)", len(codes), len(want))
	}
	for _, c := range codes {
		w, ok := want[c]
		if !ok {
			t.Errorf("unexpected code %s", c)
			continue
		}
		if c.Class() != w {
			t.Errorf("%s: class %d, want %d", c, c.Class(), w)
		}
	}
	if lcdm.ErrorCode(0x99).Known() || lcdm.ErrorCode(0x99).Class() != lcdm.ClassFault {
		t.Error("an unknown code must be a fault")
	}
}

func FuzzParseFrame(f *testing.F) {
	for _, s := range [][]byte{goldPurge, goldStatus, goldBoth6005, {0x01, 0x50, 0x02, 0x44, 0x30, 0x03, 0x24}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := lcdm.ParseFrame(b)
		if err != nil {
			return
		}
		// A frame that parses encodes back to the same bytes.
		if got := fr.Encode(); !bytes.Equal(got, b) {
			t.Fatalf("round trip % X -> % X", b, got)
		}
		// The command parsers never panic and agree with the encoders.
		if a, err := lcdm.ParseDispenseAnswer(fr); err == nil && len(fr.Data) > 1 {
			if got := a.Frame().Encode(); !bytes.Equal(got, b) {
				t.Fatalf("dispense answer round trip % X -> % X", b, got)
			}
		}
		if up, lo, err := lcdm.ParseDispenseCommand(fr); err == nil && fr.Start == lcdm.EOT && fr.ID == lcdm.ID {
			c, err := lcdm.DispenseCommand(up, lo)
			if err == nil && fr.Cmd == c.Cmd && !bytes.Equal(c.Encode(), b) {
				t.Fatalf("dispense command round trip % X -> % X", b, c.Encode())
			}
		}
		_, _ = lcdm.ParseStatusAnswer(fr)
		_, _, _ = lcdm.ParseROMAnswer(fr)
	})
}

func TestErrorOnlyDispenseAnswer(t *testing.T) {
	// SOH 50 STX 45 41 ETX BCC: motor stop, no counts.
	raw := []byte{0x01, 0x50, 0x02, 0x45, 0x41, 0x03, 0x01 ^ 0x50 ^ 0x02 ^ 0x45 ^ 0x41 ^ 0x03}
	f, err := lcdm.ParseFrame(raw)
	if err != nil {
		t.Fatal(err)
	}
	a, err := lcdm.ParseDispenseAnswer(f)
	want := lcdm.DispenseAnswer{Cmd: lcdm.CmdUpperDispense, Error: byte(lcdm.MotorStop), ErrorOnly: true}
	if err != nil || a != want {
		t.Fatalf("parsed %+v, %v; want %+v", a, err, want)
	}
	if got := a.Frame().Encode(); !bytes.Equal(got, raw) {
		t.Fatalf("encoded % X, want % X", got, raw)
	}
	// A full answer is never ErrorOnly.
	full := lcdm.DispenseAnswer{Cmd: lcdm.CmdUpperDispense, Error: byte(lcdm.Good)}
	if b, _ := lcdm.ParseDispenseAnswer(full.Frame()); b.ErrorOnly {
		t.Fatal("full answer taken as error-only")
	}
	// An error-only frame for another command is not a dispense answer.
	if _, err := lcdm.ParseDispenseAnswer(lcdm.Answer(lcdm.CmdStatus, 0x41)); err == nil {
		t.Fatal("error-only status answer accepted as a dispense answer")
	}
}
