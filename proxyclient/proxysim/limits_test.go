package proxysim_test

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/internal/connlimit"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

// closedByPeer waits (bounded by a watchdog) until the server closes c.
func closedByPeer(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a watchdog, not a wait
	_, err := io.ReadAll(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: the server kept the connection open", what)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestListenerLimits attacks both ports as the penetration test did:
// idle connections, a slowloris that sends part of a frame header, and
// more connections from one address than allowed. Each is closed by the
// server; nothing stays open for ever.
func TestListenerLimits(t *testing.T) {
	lim := connlimit.Limits{MaxPerSource: 3, FirstByte: 200 * time.Millisecond, Frame: 200 * time.Millisecond}
	s, err := proxysim.NewServer(proxysim.Config{
		Terminals:   map[string]proxysim.Terminal{"ATM1": {TMK: "5e7a26ad2fc1a73726755419d5685ead", Location: "x"}},
		PhoneMACKey: "5e7a26ad2fc1a73726755419d5685ead", PhoneDataKey: "5e7a26ad2fc1a73726755419d5685ead",
		ATMLimits: lim, PhoneLimits: lim,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, port := range []struct{ name, addr string }{{"ATM", s.ATMAddr()}, {"phone", s.PhoneAddr()}} {
		t.Run(port.name, func(t *testing.T) {
			before := s.Stats().Refused
			idle := dial(t, port.addr)
			slow := dial(t, port.addr)
			if _, err := slow.Write([]byte{0x00}); err != nil { // half a length header
				t.Fatal(err)
			}
			third := dial(t, port.addr)
			fourth := dial(t, port.addr) // over MaxPerSource
			closedByPeer(t, fourth, "a fourth connection from one address")
			closedByPeer(t, idle, "an idle connection")
			closedByPeer(t, slow, "a slowloris frame")
			closedByPeer(t, third, "a silent third connection")
			if got := s.Stats().Refused - before; got < 1 {
				t.Fatalf("refused %d connections, want the one over the cap", got)
			}
		})
	}
}
