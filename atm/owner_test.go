package atm_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/store"
)

// slowDispenser is a dispenser that, once slow is set, holds every call
// until the test releases it, whatever its context says: a device that
// takes seconds to answer, or hangs past its timeout.
type slowDispenser struct {
	*dispensersim.Sim
	slow    atomic.Bool
	only    string      // hold only this call ("" every call)
	entered chan string // the calls that are being held
	release chan struct{}
}

func (d *slowDispenser) hold(ctx context.Context, call string) error {
	if !d.slow.Load() || (d.only != "" && d.only != call) {
		return nil
	}
	select {
	case d.entered <- call:
	default:
	}
	<-d.release
	return ctx.Err()
}

func (d *slowDispenser) Status(ctx context.Context) (dispenser.Status, error) {
	if err := d.hold(ctx, "Status"); err != nil {
		return dispenser.Status{}, err
	}
	return d.Sim.Status(ctx)
}

func (d *slowDispenser) CommandNonce(ctx context.Context) (string, error) {
	if err := d.hold(ctx, "CommandNonce"); err != nil {
		return "", err
	}
	return d.Sim.CommandNonce(ctx)
}

func (d *slowDispenser) PresentStatus(ctx context.Context) (dispenser.PresentStatus, error) {
	if err := d.hold(ctx, "PresentStatus"); err != nil {
		return dispenser.PresentStatus{}, err
	}
	return d.Sim.PresentStatus(ctx)
}

func journalKindList(t *testing.T, db *store.DB) []string {
	t.Helper()
	var kinds []string
	if err := db.View(func(tx *store.Tx) error {
		return tx.JournalRange(0, func(e store.Entry) error { kinds = append(kinds, e.Kind); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return kinds
}

// A dispenser that does not answer must not hold up the goroutine that
// owns the session: the customer's cancel, the refusal of another command
// and a new customer's request are answered while the dispenser is still
// being asked for status and for a command nonce. Each call below is
// bounded by a 10 s context: a core that waited for the device would
// answer none of them.
func TestSlowDispenserDoesNotBlockTheSession(t *testing.T) {
	var slow *slowDispenser
	clk, fake := rigClock(t)
	r := newRigOn(t, dispensersim.Faults{}, clk, fake, func(sim *dispensersim.Sim) atm.Dispenser {
		slow = &slowDispenser{Sim: sim, entered: make(chan string, 16), release: make(chan struct{})}
		return slow
	})
	s := r.session(10000)
	slow.slow.Store(true)
	defer close(slow.release)

	first := r.commandAsync(s, "000001")
	if got := <-slow.entered; got != "CommandNonce" {
		t.Fatalf("held call %s, want CommandNonce", got)
	}
	r.advance(atm.StatusInterval) // the status poll now hangs too (on the real clock it comes by itself)
	repeat := r.commandAsync(s, "000002")

	other := *s
	other.QR = "CARDLESS1:garbage"
	if res := r.command(&other, "000003"); res.ResponseCode != "12" {
		t.Fatalf("another command while the dispenser hangs: %+v, want 12 at once", res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.core.RequestWithdrawal(ctx, 10000); !errors.Is(err, atm.ErrBusy) {
		t.Fatalf("a second customer while the dispenser hangs: %v, want ErrBusy at once", err)
	}
	if err := r.core.Cancel(ctx); err != nil {
		t.Fatalf("cancel while the dispenser hangs: %v", err)
	}
	if v := r.core.View(); v.Session == nil || v.Session.State != atm.StateCancelled {
		t.Fatalf("after cancel the screen shows %+v", v.Session)
	}
	for name, ch := range map[string]<-chan atm.Result{"command": first, "its repeat": repeat} {
		if res := <-ch; res.ResponseCode != "12" {
			t.Fatalf("%s: %+v, want 12 (cancelled)", name, res)
		}
	}
	if a, _, _ := r.host.Counts(); a != 0 {
		t.Fatalf("host asked %d times for a cancelled session", a)
	}
	want := []string{"SESSION CREATED", "COMMAND REFUSED", "CUSTOMER CANCELLED"}
	if got := journalKindList(t, r.db); !reflect.DeepEqual(got, want) {
		t.Fatalf("journal %q, want %q", got, want)
	}
}

// logWatch is a slog handler that reports when a message is logged.
type logWatch struct {
	msg  string
	seen chan struct{}
	once atomic.Bool
}

func (w *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *logWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message == w.msg && w.once.CompareAndSwap(false, true) {
		close(w.seen)
	}
	return nil
}
func (w *logWatch) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *logWatch) WithGroup(string) slog.Handler      { return w }

// crashWhileDispensing stops the rig's core and leaves s in the store as if
// the appliance had died while dispensing it.
func crashWhileDispensing(t *testing.T, r *rig, s *atm.Session) {
	t.Helper()
	r.cancel()
	<-r.runErr
	err := r.db.Update(func(tx *store.Tx) error {
		b, err := tx.GetSession(s.ID)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		m["state"], m["dispenseNonce"], m["hostStan"] = "Dispensing", "NONCE-OF-THE-CRASHED-DISPENSE", "000007"
		b, _ = json.Marshal(m)
		return tx.PutSession(s.ID, b)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// restart runs a new core on the rig's store and devices with cfg changed
// by edit, until the test ends.
func restart(t *testing.T, r *rig, edit func(*atm.Config)) *atm.ATM {
	t.Helper()
	cfg := r.core.Config()
	edit(&cfg)
	core, err := atm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return core
}

// A dispense command repeated for a session that recovery is still
// settling (the dispenser was offline at start-up) waits for recovery and
// then gets the session's outcome; before the fix it was never answered.
func TestRepeatedCommandDuringRecoveryIsAnswered(t *testing.T) {
	fake := clock.NewFake(defaultStart)
	r := newRigOn(t, dispensersim.Faults{}, fake, fake)
	s := r.session(10000)
	crashWhileDispensing(t, r, s)
	r.sim.SetFaults(dispensersim.Faults{Offline: true})
	watch := &logWatch{msg: "repeated command for a session in progress", seen: make(chan struct{})}
	core := restart(t, r, func(c *atm.Config) { c.Logger = slog.New(watch) })

	answer := make(chan atm.Result, 1)
	go func() {
		answer <- core.HandleCommand(context.Background(), atm.Command{STAN: "000002", TerminalID: "ATM00001", Amount: 10000, Currency: "156", QRPayload: s.QR})
	}()
	<-watch.seen // parked while recovery waits for the dispenser
	if v := core.View(); v.InService || v.Reason != "recovery" {
		t.Fatalf("view %+v, want out of service for recovery", v)
	}
	r.sim.SetFaults(dispensersim.Faults{})
	for i := 0; i < 200; i++ { // recovery retries every few ticks of the clock
		select {
		case res := <-answer:
			if res.ResponseCode != "96" || res.Dispensed != 0 {
				t.Fatalf("repeated command answered %+v, want 96 with nothing paid", res)
			}
			return
		default:
		}
		fake.Advance(time.Second)
		time.Sleep(5 * time.Millisecond) // let the core take the tick
	}
	t.Fatal("the repeated command was never answered after recovery settled its session")
}

// Recovery's retries ask the dispenser in the background: while a retry
// waits for a dispenser that does not answer, the core still refuses a
// stray command and answers the screen at once.
func TestRecoveryRetryDoesNotBlockTheSession(t *testing.T) {
	fake := clock.NewFake(defaultStart)
	var slow *slowDispenser
	r := newRigOn(t, dispensersim.Faults{}, fake, fake, func(sim *dispensersim.Sim) atm.Dispenser {
		slow = &slowDispenser{Sim: sim, only: "PresentStatus", entered: make(chan string, 16), release: make(chan struct{})}
		return slow
	})
	s := r.session(10000)
	crashWhileDispensing(t, r, s)
	r.sim.SetFaults(dispensersim.Faults{Offline: true})
	watch := &logWatch{msg: "recovery waits for the dispenser", seen: make(chan struct{})}
	core := restart(t, r, func(c *atm.Config) { c.Logger = slog.New(watch) })
	<-watch.seen
	r.sim.SetFaults(dispensersim.Faults{})
	slow.slow.Store(true)
	released := false
	defer func() {
		if !released {
			close(slow.release)
		}
	}()
	for i := 0; ; i++ { // until the retry is held in PresentStatus
		if i == 200 {
			t.Fatal("recovery never retried")
		}
		fake.Advance(time.Second)
		select {
		case <-slow.entered:
		case <-time.After(5 * time.Millisecond):
			continue
		}
		break
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	other := *s
	other.QR = "CARDLESS1:garbage"
	if res := core.HandleCommand(ctx, atm.Command{STAN: "000003", TerminalID: "ATM00001", Amount: 10000, Currency: "156", QRPayload: other.QR}); res.ResponseCode != "12" {
		t.Fatalf("a stray command while recovery waits for the dispenser: %+v, want 12 at once", res)
	}
	if _, err := core.RequestWithdrawal(ctx, 10000); err == nil {
		t.Fatal("a customer was served while recovery is unfinished")
	} else if cp := (*atm.CannotPayError)(nil); !errors.As(err, &cp) || cp.Reason != "recovery" {
		t.Fatalf("request during recovery: %v, want cannot pay (recovery) at once", err)
	}
	close(slow.release)
	released = true
	for i := 0; i < 400; i++ {
		if v := core.View(); v.InService || v.Reason != "recovery" {
			return
		}
		fake.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("recovery never finished after the dispenser answered")
}
