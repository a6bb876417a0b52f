//go:build linux

package devsim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardless-atm/cardless/internal/pcscdrun"
)

// TestRunOnceNFC is `make sim-once NFC=1`: the ATM reads a vpcd virtual
// reader through pcscd (one started for the run when the system runs
// none), the demo phone taps it (phonesim --nfc) and is paid; a pcscd
// started for the run is stopped afterwards.
func TestRunOnceNFC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every program and pcscd")
	}
	if _, err := pcscdrun.Find(); err != nil {
		t.Skip(err)
	}
	system := pcscdrun.SystemRunning()
	if !system && !pcscdrun.CanStart() {
		t.Skip("no pcscd runs and this user cannot start one")
	}
	port, err := pcscdrun.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	out, o := runOnce(t, "sim", func(o *Options) { o.NFC, o.VPCDPort = true, port })
	vpcd := fmt.Sprintf("127.0.0.1:%d", port)
	if system {
		vpcd = fmt.Sprintf("127.0.0.1:%d", pcscdrun.DefaultPort)
	}
	want := "[5/7] Customer holds the phone to the ATM's contactless reader (phonesim --nfc attaches to the vpcd virtual reader at " + vpcd + " as the phone's card)"
	if !strings.Contains(out, "\n"+want+"\n") {
		t.Fatalf("no tap in the narration (want %q):\n%s", want, out)
	}
	log, err := os.ReadFile(filepath.Join(o.Var, "logs", "atm.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), `"msg":"tap","part":"nfc","outcome":"NFC TAP"`); n != 1 {
		t.Fatalf("%d taps in the ATM's log, want 1:\n%s", n, log)
	}
	if !system {
		if err := portsFree(vpcd); err != nil {
			t.Fatalf("pcscd still runs after Run: %v", err)
		}
	}
}
