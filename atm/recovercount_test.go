package atm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/store"
)

// dying is the simulated dispenser with one operation armed: the device
// carries it out (the notes move and the device counts them), then the
// call never answers the core until the core stops, as if the ATM had died
// right after the device acted and before its commit. moved is closed
// when the device has acted.
type dying struct {
	*dispensersim.Sim
	op    string // "Dispense", "Retract" or "Reset"
	moved chan struct{}
	once  sync.Once
}

func dieAfter(op string) (*dying, func(*dispensersim.Sim) atm.Dispenser) {
	d := &dying{op: op, moved: make(chan struct{})}
	return d, func(s *dispensersim.Sim) atm.Dispenser { d.Sim = s; return d }
}

func (d *dying) die(ctx context.Context, op string) error {
	if op != d.op {
		return nil
	}
	d.once.Do(func() { close(d.moved) })
	<-ctx.Done()
	return ctx.Err()
}

func (d *dying) Dispense(ctx context.Context, mix dispenser.Mix, token string) (dispenser.Result, error) {
	res, err := d.Sim.Dispense(ctx, mix, token)
	if derr := d.die(ctx, "Dispense"); derr != nil {
		return dispenser.Result{}, derr
	}
	return res, err
}

func (d *dying) Retract(ctx context.Context) (dispenser.Result, error) {
	res, err := d.Sim.Retract(ctx)
	if derr := d.die(ctx, "Retract"); derr != nil {
		return dispenser.Result{}, derr
	}
	return res, err
}

func (d *dying) Reset(ctx context.Context) error {
	err := d.Sim.Reset(ctx)
	if derr := d.die(ctx, "Reset"); derr != nil {
		return derr
	}
	return err
}

// runCore runs a core on the rig's store and simulator (through dev when
// given) and returns a function that stops it and waits for it.
func runCore(t *testing.T, r *rig, dev atm.Dispenser) (*atm.ATM, func()) {
	t.Helper()
	cfg := r.core.Config()
	cfg.Dispenser = r.sim
	if dev != nil {
		cfg.Dispenser = dev
	}
	core, err := atm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = core.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return core, stop
}

// stopRig stops the rig's first core.
func stopRig(r *rig) {
	r.cancel()
	<-r.runErr
}

func waitMoved(t *testing.T, d *dying) {
	t.Helper()
	select {
	case <-d.moved:
	case <-time.After(10 * time.Second): // a watchdog, not a wait
		t.Fatalf("the device never carried out %s", d.op)
	}
}

// sessionState reads the session's committed state from the store.
func sessionState(t *testing.T, r *rig, id string) atm.State {
	t.Helper()
	var s atm.Session
	err := r.db.View(func(tx *store.Tx) error {
		b, err := tx.GetSession(id)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &s)
	})
	if err != nil {
		t.Fatal(err)
	}
	return s.State
}

// waitSettled waits (bounded) until recovery has ended the session, and
// returns its state.
func waitSettled(t *testing.T, r *rig, id string) atm.State {
	t.Helper()
	for range 1000 {
		if st := sessionState(t, r, id); st.Terminal() {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("recovery never settled the session (state %s)", sessionState(t, r, id))
	return 0
}

// unitCounts is one cash unit's counters as "ID dispensed/retracted/rejected/remaining".
func atmCounts(t *testing.T, r *rig) []string {
	t.Helper()
	var out []string
	err := r.db.View(func(tx *store.Tx) error {
		us, err := tx.UnitCounters()
		for _, u := range us {
			out = append(out, fmt.Sprintf("%s %d/%d/%d/%d", u.UnitID, u.Dispensed, u.Retracted, u.Rejected, u.Remaining))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func deviceCounts(r *rig) []string {
	var out []string
	for _, u := range r.sim.Counters() {
		out = append(out, fmt.Sprintf("%s %d/%d/%d/%d", u.ID, u.Dispensed, u.Retracted, u.Rejected, u.Count))
	}
	slices.Sort(out)
	return out
}

// wantCountsAgree fails unless the ATM's cassette counters equal the
// device's, and some notes moved back in (the window under test).
func wantCountsAgree(t *testing.T, r *rig) {
	t.Helper()
	got, want := atmCounts(t, r), deviceCounts(r)
	if !slices.Equal(got, want) {
		t.Fatalf("ATM counters (dispensed/retracted/rejected/remaining) %q, device %q", got, want)
	}
	back := 0
	for _, u := range r.sim.Counters() {
		back += u.Retracted + u.Rejected
	}
	if back == 0 {
		t.Fatal("no note was retracted or rejected: the test missed its window")
	}
}

// TestCountersAfterCrashBetweenDeviceAndCommit stops the ATM in each
// window between a device action that takes notes back in (a retract, a
// purge, a jam's reset) and the commit that records it, restarts it, and
// checks that its cassette counters agree with the device's. Before the
// fix, recovery took such notes for paid out.
func TestCountersAfterCrashBetweenDeviceAndCommit(t *testing.T) {
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, r *rig, fake *clock.Fake) (sessionID string)
	}{
		{"flow retract after the take-cash time-out", func(t *testing.T, r *rig, fake *clock.Fake) string {
			r.sim.SetFaults(dispensersim.Faults{NotesNotTaken: true})
			d, wrap := dieAfter("Retract")
			core, stop := runCore(t, r, wrap(r.sim))
			s := sessionOn(t, core, 15000)
			sendAsync(core, cmdFor(s, "000001"))
			waitCoreState(t, core, atm.StateAwaitingTake)
			fake.Advance(r.take)
			waitMoved(t, d)
			stop()
			return s.ID
		}},
		{"recovery retract of notes at the exit", func(t *testing.T, r *rig, fake *clock.Fake) string {
			r.sim.SetFaults(dispensersim.Faults{NotesNotTaken: true})
			core, stop := runCore(t, r, nil)
			s := sessionOn(t, core, 15000)
			sendAsync(core, cmdFor(s, "000001"))
			waitCoreState(t, core, atm.StateAwaitingTake)
			stop() // the ATM dies with the notes at the exit
			d, wrap := dieAfter("Retract")
			_, stop = runCore(t, r, wrap(r.sim))
			waitMoved(t, d) // recovery's retract, then it dies again
			stop()
			return s.ID
		}},
		{"recovery purge of notes in the stacker", func(t *testing.T, r *rig, fake *clock.Fake) string {
			d, wrap := dieAfter("Dispense")
			core, stop := runCore(t, r, wrap(r.sim))
			s := sessionOn(t, core, 15000)
			sendAsync(core, cmdFor(s, "000001"))
			waitMoved(t, d) // the notes are stacked, the ATM dies
			stop()
			d, wrap = dieAfter("Reset")
			_, stop = runCore(t, r, wrap(r.sim))
			waitMoved(t, d) // recovery's purge, then it dies again
			stop()
			return s.ID
		}},
		{"jam before its commit", func(t *testing.T, r *rig, fake *clock.Fake) string {
			r.sim.SetFaults(dispensersim.Faults{Jam: true, JamAfter: 2})
			d, wrap := dieAfter("Dispense")
			core, stop := runCore(t, r, wrap(r.sim))
			s := sessionOn(t, core, 15000)
			sendAsync(core, cmdFor(s, "000001"))
			waitMoved(t, d) // the device jammed with the notes inside
			stop()
			r.sim.SetFaults(dispensersim.Faults{})
			return s.ID
		}},
		{"leftover notes retracted at start", func(t *testing.T, r *rig, fake *clock.Fake) string {
			r.sim.SetFaults(dispensersim.Faults{NotesNotTaken: true})
			core, stop := runCore(t, r, nil)
			s := sessionOn(t, core, 15000)
			sendAsync(core, cmdFor(s, "000001"))
			waitCoreState(t, core, atm.StateAwaitingTake)
			stop()
			// An operator settled the session while the notes were still
			// at the exit: no session owns them any more.
			setState(t, r, s.ID, "InDoubt")
			d, wrap := dieAfter("Retract")
			_, stop = runCore(t, r, wrap(r.sim))
			waitMoved(t, d) // the leftover retract, then the ATM dies
			stop()
			return s.ID
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake := clock.NewFake(defaultStart)
			r := newRigOn(t, dispensersim.Faults{}, fake, fake)
			stopRig(r)
			id := tt.run(t, r, fake)
			runCore(t, r, nil) // the restart that must count what the device did
			waitSettled(t, r, id)
			for range 1000 { // recovery commits the leftovers after the sessions
				if slices.Equal(atmCounts(t, r), deviceCounts(r)) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			wantCountsAgree(t, r)
		})
	}
}

func sessionOn(t *testing.T, core *atm.ATM, amount int64) *atm.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := core.RequestWithdrawal(ctx, amount)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sendAsync hands the command to core in the background; the test follows
// the session, not the answer.
func sendAsync(core *atm.ATM, c atm.Command) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		core.HandleCommand(ctx, c)
	}()
}

func cmdFor(s *atm.Session, stan string) atm.Command {
	return atm.Command{STAN: stan, TerminalID: "ATM00001", Amount: s.Amount, Currency: "156",
		QRPayload: s.QR, CustomerID: "6222020000001234", PINBlock: []byte{1, 2, 3, 4, 5, 6, 7, 8}}
}

func waitCoreState(t *testing.T, core *atm.ATM, want atm.State) {
	t.Helper()
	for range 2000 {
		if v := core.View(); v.Session != nil && v.Session.State == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("session never reached %s (now %+v)", want, core.View().Session)
}

// setState edits the session's committed state in the store.
func setState(t *testing.T, r *rig, id, state string) {
	t.Helper()
	err := r.db.Update(func(tx *store.Tx) error {
		b, err := tx.GetSession(id)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		m["state"] = state
		b, _ = json.Marshal(m)
		return tx.PutSession(id, b)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRecoveryDoesNotBelieveADeviceThatForgot: the ATM dies with the notes
// at the exit, and the dispenser comes back without its memory (reset, or
// swapped for another). Its "no dispense for this session" contradicts the
// ATM's own commit of the counted notes: the session waits in doubt for
// the operator's count, and nothing is reversed on the device's word.
func TestRecoveryDoesNotBelieveADeviceThatForgot(t *testing.T) {
	fake := clock.NewFake(defaultStart)
	r := newRigOn(t, dispensersim.Faults{}, fake, fake)
	stopRig(r)
	r.sim.SetFaults(dispensersim.Faults{NotesNotTaken: true})
	core, stop := runCore(t, r, nil)
	s := sessionOn(t, core, 15000)
	sendAsync(core, cmdFor(s, "000001"))
	waitCoreState(t, core, atm.StateAwaitingTake)
	stop()

	forgetful, err := dispensersim.New(dispensersim.Config{
		Units: []dispenser.CashUnit{
			{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 50},
			{ID: "CST2", Denomination: 5000, Currency: "CNY", Count: 50},
		},
		Exponent: 2, MaxNotes: 40, TokenKey: tokenKey, StateFile: t.TempDir() + "/new-device.json",
	})
	if err != nil {
		t.Fatal(err)
	}
	runCore(t, r, forgetful)
	if st := waitSettled(t, r, s.ID); st != atm.StateInDoubt {
		t.Fatalf("session %s, want InDoubt", st)
	}
	if auths, adv, rev := r.host.Counts(); auths != 1 || adv != 0 || rev != 0 {
		t.Fatalf("host saw %d authorizations, %d advices, %d reversals; want the authorization only", auths, adv, rev)
	}
}

// unverifiable is the simulated dispenser whose account of the last
// dispense cannot be verified (an XFS4IoT device without a response key,
// or with a bad signature).
type unverifiable struct{ *dispensersim.Sim }

func (u unverifiable) PresentStatus(context.Context) (dispenser.PresentStatus, error) {
	return dispenser.PresentStatus{}, fmt.Errorf("test device: %w", dispenser.ErrUnverifiable)
}

// TestRecoveryWithAnUnverifiableDevice: a session interrupted mid-dispense
// whose device cannot give a verifiable account goes to an operator at
// once (in doubt, the debit standing) instead of keeping the terminal out
// of service waiting.
func TestRecoveryWithAnUnverifiableDevice(t *testing.T) {
	fake := clock.NewFake(defaultStart)
	r := newRigOn(t, dispensersim.Faults{}, fake, fake)
	stopRig(r)
	d, wrap := dieAfter("Dispense")
	core, stop := runCore(t, r, wrap(r.sim))
	s := sessionOn(t, core, 15000)
	sendAsync(core, cmdFor(s, "000001"))
	waitMoved(t, d)
	stop()
	runCore(t, r, unverifiable{r.sim})
	if st := waitSettled(t, r, s.ID); st != atm.StateInDoubt {
		t.Fatalf("session %s, want InDoubt", st)
	}
	if auths, adv, rev := r.host.Counts(); auths != 1 || adv != 0 || rev != 0 {
		t.Fatalf("host saw %d authorizations, %d advices, %d reversals; want the authorization only", auths, adv, rev)
	}
}
