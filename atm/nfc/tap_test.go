package nfc_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cardless-atm/cardless/atm/nfc"
)

var aid = []byte{0xF0, 0x43, 0x4C, 0x57, 0x31, 0x00, 0x01}

const payload = "CLW1:ATM00001:50000:156:0123456789ABCDEF0123456789ABCDEF:1767225600:0011223344556677"

func selectAPDU() []byte {
	return append(append([]byte{0x00, 0xA4, 0x04, 0x00, 0x07}, aid...), 0x00)
}

func sessionAPDU() []byte {
	return append([]byte{0x80, 0x10, 0x00, 0x00, byte(len(payload))}, payload...)
}

func TestAPDUBytes(t *testing.T) {
	sel, err := nfc.SelectAPDU(aid)
	if err != nil || !reflect.DeepEqual(sel, selectAPDU()) {
		t.Fatalf("SELECT % X (%v), want % X", sel, err, selectAPDU())
	}
	s, err := nfc.SessionAPDU(payload)
	if err != nil || !reflect.DeepEqual(s, sessionAPDU()) {
		t.Fatalf("SESSION % X (%v)", s, err)
	}
	if _, err := nfc.SelectAPDU([]byte{1, 2, 3, 4}); err == nil {
		t.Fatal("a 4-byte AID was taken")
	}
	if _, err := nfc.SessionAPDU(string(make([]byte, 256))); err == nil {
		t.Fatal("a 256-byte payload was taken")
	}
}

func TestParseCommandCases(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want nfc.Command
	}{
		{[]byte{0x80, 0x10, 1, 2}, nfc.Command{CLA: 0x80, INS: 0x10, P1: 1, P2: 2, Le: -1}},
		{[]byte{0, 0xB0, 0, 0, 0}, nfc.Command{INS: 0xB0, Le: 256}},
		{[]byte{0, 0xA4, 4, 0, 2, 0xAA, 0xBB}, nfc.Command{INS: 0xA4, P1: 4, Data: []byte{0xAA, 0xBB}, Le: -1}},
		{[]byte{0, 0xA4, 4, 0, 1, 0xAA, 0x10}, nfc.Command{INS: 0xA4, P1: 4, Data: []byte{0xAA}, Le: 16}},
	} {
		got, err := nfc.ParseCommand(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCommand(% X) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range [][]byte{nil, {0, 0xA4, 4}, {0, 0xA4, 4, 0, 3, 1}, {0, 0xA4, 4, 0, 0, 0, 1}} {
		if _, err := nfc.ParseCommand(bad); !errors.Is(err, nfc.ErrAPDU) {
			t.Errorf("ParseCommand(% X): %v, want ErrAPDU", bad, err)
		}
	}
}

func TestTapOutcomes(t *testing.T) {
	removed := errors.New("the reader says: removed")
	for _, tc := range []struct {
		name   string
		script []nfc.Exchange
		want   error // nil: paid
		sw     uint16
	}{
		{"accepted", []nfc.Exchange{{selectAPDU(), []byte{0x90, 0x00}, nil}, {sessionAPDU(), []byte{0x90, 0x00}, nil}}, nil, 0},
		{"wrong AID", []nfc.Exchange{{selectAPDU(), []byte{0x6A, 0x82}, nil}}, nfc.ErrNoApp, 0x6A82},
		{"SELECT unanswered", []nfc.Exchange{{selectAPDU(), nil, errors.New("mute")}}, nfc.ErrNoApp, 0},
		{"SELECT answer without status", []nfc.Exchange{{selectAPDU(), []byte{0x90}, nil}}, nfc.ErrNoApp, 0},
		{"payload refused", []nfc.Exchange{{selectAPDU(), []byte{0x90, 0x00}, nil}, {sessionAPDU(), []byte{0x6A, 0x80}, nil}}, nfc.ErrRefused, 0x6A80},
		{"removed mid-exchange", []nfc.Exchange{{selectAPDU(), []byte{0x90, 0x00}, nil}, {sessionAPDU(), nil, errors.Join(nfc.ErrRemoved, removed)}}, nfc.ErrRemoved, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := nfc.NewFakeCard(tc.script...)
			err := nfc.Tap(c, aid, payload)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Tap: %v, want %v", err, tc.want)
			}
			var se *nfc.StatusError
			if errors.As(err, &se) != (tc.sw != 0) || tc.sw != 0 && se.SW != tc.sw {
				t.Fatalf("status error %+v, want SW %04X", se, tc.sw)
			}
			if err := c.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPhoneApp(t *testing.T) {
	var checked []string
	app := &nfc.PhoneApp{AID: aid, Accept: func(p string) error {
		checked = append(checked, p)
		if p != payload {
			return errors.New("not a session")
		}
		return nil
	}}
	steps := []struct {
		cmd  []byte
		want []byte
	}{
		{sessionAPDU(), []byte{0x69, 0x85}},                                          // before SELECT
		{[]byte{0x00, 0xA4, 0x04, 0x00, 0x05, 1, 2, 3, 4, 5, 0}, []byte{0x6A, 0x82}}, // another AID
		{selectAPDU(), []byte{0x90, 0x00}},
		{[]byte{0x80, 0x10, 0, 0, 3, 'A', 'B', 'C'}, []byte{0x6A, 0x80}}, // not a session payload
		{sessionAPDU(), []byte{0x90, 0x00}},
		{sessionAPDU(), []byte{0x69, 0x85}}, // a second session on the same tap
		{[]byte{0x80, 0x20, 0, 0}, []byte{0x6D, 0x00}},
		{[]byte{0xA0, 0x10, 0, 0}, []byte{0x6E, 0x00}},
		{[]byte{0x80, 0x10}, []byte{0x67, 0x00}},
	}
	for i, s := range steps {
		if got := app.Respond(s.cmd); !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d: % X answered % X, want % X", i, s.cmd, got, s.want)
		}
	}
	if app.Payload() != payload || !reflect.DeepEqual(checked, []string{"ABC", payload}) {
		t.Fatalf("payload %q, checked %q", app.Payload(), checked)
	}
}
