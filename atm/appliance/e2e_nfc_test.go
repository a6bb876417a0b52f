//go:build linux && cgo

package appliance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/nfc"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/internal/pcscdtest"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
	"github.com/cardless-atm/cardless/ui"
)

// TestE2ETapPaysOut pays a withdrawal out through a tap: a real pcscd with
// a vpcd virtual reader, the appliance's PC/SC reader, and the phone
// simulator's app as the card. Before that, a tap with no session and a
// tap of a phone without the bank's app are refused and journaled.
func TestE2ETapPaysOut(t *testing.T) {
	if testing.Short() {
		t.Skip("pcscd")
	}
	d := pcscdtest.Start(t)
	s := startSystem(t, func(cfg *appliance.Config) {
		cfg.NFC = &appliance.NFC{Reader: "Virtual PCD", AID: "F0434C57310001"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// No session on the screen: the phone gets nothing.
	if _, err := phonesim.Tap(ctx, d.VPCDAddr, nfc.DefaultAID, 3*time.Second); !errors.Is(err, phonesim.ErrNoTap) {
		t.Fatalf("tap without a session: %v", err)
	}
	s.waitJournal("NFC NO SESSION", "")

	qr := s.qr(30000)
	sess := s.app.Core.View().Session
	// A phone without the bank's app (another AID) is refused.
	if _, err := phonesim.Tap(ctx, d.VPCDAddr, []byte{0xA0, 0, 0, 0, 3, 0x10, 0x10}, 3*time.Second); !errors.Is(err, phonesim.ErrNoTap) {
		t.Fatalf("tap of another app: %v", err)
	}
	s.waitJournal("NFC NO APP", sess.ID)
	if got := s.app.Backend.Snapshot(); got.Tap != ui.TapNoApp || !got.Contactless || got.Phase != ui.AwaitingPhone {
		t.Fatalf("screen after a wrong app: tap %v contactless %v phase %v", got.Tap, got.Contactless, got.Phase)
	}

	payload, err := phonesim.Tap(ctx, d.VPCDAddr, nfc.DefaultAID, 20*time.Second)
	if err != nil {
		t.Fatalf("tap: %v\npcscd:\n%s", err, d.Log())
	}
	if payload != qr {
		t.Fatalf("the phone got %q, the screen shows %q", payload, qr)
	}
	s.waitJournal("NFC TAP", sess.ID)
	if got := s.app.Backend.Snapshot(); got.Tap != ui.TapDetected {
		t.Fatalf("screen after the tap: %v", got.Tap)
	}
	before := s.balance(zhang)
	out := s.withdraw(payload, zhang, "123456")
	if out.ResponseCode != "00" || !out.PaidInFull() || out.Dispensed != 30000 {
		t.Fatalf("outcome %+v", out)
	}
	s.settled()
	if got := s.balance(zhang); got != before-30000 {
		t.Fatalf("balance %d, want %d", got, before-30000)
	}
	if v := s.app.Core.View(); v.Session.ID != sess.ID || v.Session.State != atm.StateCompleted || v.Session.Paid != 30000 {
		t.Fatalf("session %+v", v.Session)
	}
}

// TestE2EPhonesimNFCPaysOut pays a withdrawal out with the phone
// simulator's program as the card: bin/phonesim --nfc, built and run as
// its own process, attaches to the vpcd virtual reader of a real pcscd,
// gets the session from the appliance's PC/SC reader and withdraws
// through the proxy; it prints one JSON line, the outcome, and exits 0.
func TestE2EPhonesimNFCPaysOut(t *testing.T) {
	if testing.Short() {
		t.Skip("pcscd")
	}
	bin := filepath.Join(t.TempDir(), "phonesim")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/phonesim").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	d := pcscdtest.Start(t)
	s := startSystem(t, func(cfg *appliance.Config) {
		cfg.NFC = &appliance.NFC{Reader: "Virtual PCD", AID: "F0434C57310001"}
	})
	s.qr(30000)
	sess := s.app.Core.View().Session
	before := s.balance(zhang)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--nfc", "--vpcd", d.VPCDAddr, "--tap-for", "30s", "--proxy", s.proxy.PhoneAddr(),
		"--config", "../../configs/phonesim.json", "--customer", zhang, "--pin", "123456")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); err != nil || code != 0 {
		t.Fatalf("phonesim --nfc: %v, exit %d\nstdout:\n%s\nstderr:\n%s\npcscd:\n%s", err, code, stdout.String(), stderr.String(), d.Log())
	}
	if stderr.Len() != 0 {
		t.Fatalf("phonesim wrote to stderr:\n%s", stderr.String())
	}
	lines := strings.Split(stdout.String(), "\n")
	if len(lines) != 2 || lines[1] != "" {
		t.Fatalf("want one JSON line, got %q", stdout.String())
	}
	var out phonesim.Outcome
	dec := json.NewDecoder(strings.NewReader(lines[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("%q: %v", lines[0], err)
	}
	s.settled()
	v := s.app.Core.View()
	if v.Session == nil || v.Session.ID != sess.ID || v.Session.State != atm.StateCompleted || v.Session.Paid != 30000 {
		t.Fatalf("session %+v", v.Session)
	}
	done := v.Session
	stan := out.STAN // the phone's own trace number: six digits
	if len(stan) != 6 || strings.Trim(stan, "0123456789") != "" {
		t.Fatalf("STAN %q", stan)
	}
	want := phonesim.Outcome{ResponseCode: "00", Meaning: wire.ResponseText("00"), Approved: true, Amount: 30000, Dispensed: 30000,
		Currency: "156", AuthCode: done.AuthCode, RRN: done.RRN, Terminal: "ATM00001", STAN: stan,
		Receipt: []string{"CASH WITHDRAWAL", "Terminal: ATM00001", "Location: Demo Branch, 1 Example Road, Shanghai",
			"Date: " + done.Updated.UTC().Format(time.DateOnly), "Time: " + done.Updated.UTC().Format(time.TimeOnly),
			"Amount: 300.00 CNY", "Customer: " + done.Customer, "Auth code: " + done.AuthCode, "RRN: " + done.RRN,
			"STAN: " + done.HostSTAN, "Thank you"}}
	if !reflect.DeepEqual(out, want) || done.AuthCode == "" || len(done.RRN) != 12 {
		t.Fatalf("phonesim printed\n%+v\nwant\n%+v", out, want)
	}
	if got := s.balance(zhang); got != before-30000 {
		t.Fatalf("balance %d, want %d", got, before-30000)
	}
	s.waitJournal("NFC TAP", sess.ID)
	if strings.Contains(stdout.String(), "123456") || strings.Contains(stdout.String(), zhang) {
		t.Fatal("the PIN or the customer ID in the phone's output")
	}
}

// waitJournal waits until the journal holds an entry of kind for session.
func (s *system) waitJournal(kind, session string) {
	s.t.Helper()
	for range 200 {
		found := false
		s.app.Store.View(func(tx *store.Tx) error {
			return tx.JournalRange(0, func(e store.Entry) error {
				found = found || e.Kind == kind && e.SessionID == session
				return nil
			})
		})
		if found {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("journal has no %q entry for session %q", kind, session)
}
