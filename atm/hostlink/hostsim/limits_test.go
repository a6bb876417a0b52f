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
