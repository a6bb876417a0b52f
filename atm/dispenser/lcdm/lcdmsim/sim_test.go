//go:build unix

package lcdmsim_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm/lcdmsim"
)

// host is a raw serial link to the simulator, without the driver.
type host struct {
	t    *testing.T
	port serial.Port
}

func startSim(t *testing.T, f lcdmsim.Faults) (*lcdmsim.Sim, *host) {
	t.Helper()
	s, err := lcdmsim.Start(lcdmsim.Config{
		Units:     []dispenser.CashUnit{{ID: "A", Count: 10}, {ID: "B", Count: 5}},
		StateFile: filepath.Join(t.TempDir(), "dev.json"), Faults: f,
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := serial.Open(s.Path(), &serial.Mode{BaudRate: 9600})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetReadTimeout(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(); s.Close() })
	return s, &host{t: t, port: p}
}

// read reads exactly n bytes (bounded by serial read timeouts).
func (h *host) read(n int) []byte {
	h.t.Helper()
	var out []byte
	buf := make([]byte, 64)
	for tries := 0; len(out) < n && tries < 100; tries++ {
		k, err := h.port.Read(buf[:n-len(out)])
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, buf[:k]...)
	}
	return out
}

func (h *host) send(b []byte) {
	h.t.Helper()
	if _, err := h.port.Write(b); err != nil {
		h.t.Fatal(err)
	}
}

func TestStrictFraming(t *testing.T) {
	s, h := startSim(t, lcdmsim.Faults{})
	// A damaged frame is NAKed.
	h.send([]byte{0x04, 0x50, 0x02, 0x46, 0x03, 0x12})
	if got := h.read(1); !bytes.Equal(got, []byte{lcdm.NAK}) {
		t.Fatalf("bad BCC answered % X, want NAK", got)
	}
	// An unknown command: ACK, then error 0x37.
	h.send(lcdm.Command(0x99).Encode())
	want := []byte{0x06, 0x01, 0x50, 0x02, 0x99, 0x37, 0x03, 0xFE}
	if got := h.read(len(want)); !bytes.Equal(got, want) {
		t.Fatalf("unknown command answered % X, want % X", got, want)
	}
	h.send([]byte{lcdm.ACK})
	// Status: ACK and the 10-byte answer; NAK makes it resend.
	h.send(lcdm.Command(lcdm.CmdStatus).Encode())
	want = append([]byte{0x06}, lcdm.StatusAnswer{Error: 0x30}.Frame().Encode()...)
	if got := h.read(len(want)); !bytes.Equal(got, want) {
		t.Fatalf("status answered % X, want % X", got, want)
	}
	h.send([]byte{lcdm.NAK})
	if got := h.read(len(want) - 1); !bytes.Equal(got, want[1:]) {
		t.Fatalf("resend % X", got)
	}
	h.send([]byte{lcdm.ACK})
	// Dispense 2 from the lower cassette.
	h.send(mustCmd(t, 0, 2))
	wantAns := lcdm.DispenseAnswer{Cmd: lcdm.CmdLowerDispense, Error: 0x30,
		Upper: lcdm.CassetteCount{Status: 0x30}, Lower: lcdm.CassetteCount{Check: 2, Exit: 2, Status: 0x30}}.Frame().Encode()
	if got := h.read(1 + len(wantAns)); !bytes.Equal(got, append([]byte{0x06}, wantAns...)) {
		t.Fatalf("dispense answered % X", got)
	}
	h.send([]byte{lcdm.ACK})
	if got := s.Remaining(); got["A"] != 10 || got["B"] != 3 {
		t.Fatalf("remaining %v", got)
	}
	// Malformed count digits: note request error, nothing moves.
	h.send(lcdm.Command(lcdm.CmdUpperDispense, '6', 'A').Encode())
	got := h.read(1 + lcdm.AnswerLength(lcdm.CmdUpperDispense))
	if len(got) != 15 || got[0] != 0x06 || got[9] != byte(lcdm.NoteRequestError) {
		t.Fatalf("malformed dispense answered % X", got)
	}
	if got := s.Remaining(); got["A"] != 10 {
		t.Fatalf("remaining %v", got)
	}
}

func mustCmd(t *testing.T, up, lo int) []byte {
	t.Helper()
	f, err := lcdm.DispenseCommand(up, lo)
	if err != nil {
		t.Fatal(err)
	}
	return f.Encode()
}

func TestPersistsAcrossRestart(t *testing.T) {
	s, h := startSim(t, lcdmsim.Faults{Jam: true, JamAfter: 1})
	h.send(mustCmd(t, 3, 0))
	got := h.read(1 + 14)
	f, err := lcdm.ParseFrame(got[1:])
	if err != nil {
		t.Fatal(err)
	}
	a, err := lcdm.ParseDispenseAnswer(f)
	if err != nil || a.Error != byte(lcdm.JamCHK12) || a.Upper.Check != 2 || a.Upper.Exit != 1 {
		t.Fatalf("jam answer %+v, %v", a, err)
	}
	h.send([]byte{lcdm.ACK})
	old := s.Path()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.Path() == old {
		t.Log("the new pty reused the old path")
	}
	if r := s.Remaining(); r["A"] != 8 {
		t.Fatalf("remaining after restart %v", r)
	}
	if tr := s.Transport(); tr["A"] != 1 {
		t.Fatalf("transport after restart %v", tr)
	}
}

func TestFaultString(t *testing.T) {
	if got := (lcdmsim.Faults{}).String(); got != "none" {
		t.Fatal(got)
	}
	if got := (lcdmsim.Faults{Jam: true, JamAfter: 2, BadBCC: 1}).String(); got != "jam-after=2,bad-bcc=1" {
		t.Fatal(got)
	}
}
