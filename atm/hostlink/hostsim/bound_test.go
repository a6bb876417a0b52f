package hostsim_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/hostlink"
	"github.com/cardless-atm/cardless/atm/hostlink/internal/linktest"
	"github.com/cardless-atm/cardless/atm/wire"
)

// A connection is bound to the terminal of its first message. Afterwards a
// message that does not verify is dropped whatever its field 41 says (the
// link survives), and a verified message naming another terminal closes
// the connection.
func TestBoundConnectionChecksVerifiedTerminal(t *testing.T) {
	f := linktest.NewFixture(t)
	nc, err := net.Dial("tcp", f.Host.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	good := &wire.Codec{Protector: wire.NewProtector(linktest.ATMModule(t, f.Keys), hostlink.Keys)}
	wrongKeys := f.Keys
	wrongKeys.MAC = linktest.TDESKey(t)
	bad := &wire.Codec{Protector: wire.NewProtector(linktest.ATMModule(t, wrongKeys), hostlink.Keys)}

	send := func(c *wire.Codec, stan, tid string) {
		t.Helper()
		m, err := wire.Build(&wire.NetMgmt{MTI: wire.MTINetMgmtRequest, TransmissionDateTime: wire.FormatTransmissionDT(time.Now()),
			STAN: stan, TerminalID: tid, NetMgmtCode: wire.NetEcho})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteMessage(nc, m); err != nil {
			t.Fatal(err)
		}
	}
	read := func() (string, error) {
		t.Helper()
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, err := good.ReadMessage(nc)
		if err != nil {
			return "", err
		}
		if m == nil {
			t.Fatal("answer from the host does not verify")
		}
		var nm wire.NetMgmt
		if err := wire.Parse(m, &nm); err != nil || nm.ResponseCode != wire.RCApproved {
			t.Fatalf("answer %+v, %v; want an approved 0810", nm, err)
		}
		return nm.STAN, nil
	}

	send(good, "000001", linktest.TerminalID)
	if stan, err := read(); err != nil || stan != "000001" {
		t.Fatalf("first echo: answer %q, %v", stan, err)
	}
	// Unverifiable, naming another terminal: dropped, the link survives.
	send(bad, "000002", "ATM00002")
	send(good, "000003", linktest.TerminalID)
	if stan, err := read(); err != nil || stan != "000003" {
		t.Fatalf("echo after a dropped message: answer %q, %v; want 000003", stan, err)
	}
	// Verified but naming another terminal: the connection is closed.
	send(good, "000004", "ATM00002")
	var ne net.Error
	if stan, err := read(); err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("terminal change on a bound connection: answer %q, %v; want the connection closed", stan, err)
	}
	linktest.WaitFor(t, "refusal logged", func() bool {
		return strings.Contains(f.HostLog.String(), "terminal ID changed on a bound connection")
	})
}
