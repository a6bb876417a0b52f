package hostsim_test

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/hostlink/internal/linktest"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/internal/connlimit"
)

// TestListenerLimits: idle connections, a slowloris frame and more
// connections from one address than allowed are all closed by the host.
func TestListenerLimits(t *testing.T) {
	keys := linktest.NewKeys(t)
	cfg := linktest.Config(keys, t.TempDir(), nil)
	cfg.Limits = connlimit.FileLimits{MaxPerSource: 3, FirstByte: "200ms", Frame: "200ms"}
	h, err := hostsim.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var conns []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", h.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	if _, err := conns[1].Write([]byte{0x00}); err != nil { // half a length header
		t.Fatal(err)
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a watchdog, not a wait
		if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection %d: the host kept it open", i)
		}
	}
}

// TestUnconfirmedSignOnClosed: a sign-on nobody confirms (a replay) holds
// the host's connection only until the sign-on deadline.
func TestUnconfirmedSignOnClosed(t *testing.T) {
	keys := linktest.NewKeys(t)
	cfg := linktest.Config(keys, t.TempDir(), nil)
	cfg.Limits = connlimit.FileLimits{SignOn: "200ms"}
	h, err := hostsim.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	f := &linktest.Fixture{Keys: keys, Host: h}
	r := dialReplayer(t, f)
	r.send(netMgmt(wire.NetSignOn, ""))
	if _, err := r.read(); err != nil {
		t.Fatal(err)
	}
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // a watchdog, not a wait
	if _, err := io.ReadAll(r.conn); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the host kept an unconfirmed sign-on open")
	}
}
