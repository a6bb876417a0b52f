package dispensertest

import (
	"context"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
)

// Dispenser is the driver under test: the methods of the ATM core's
// atm.Dispenser port (this package does not import the core).
type Dispenser interface {
	Status(ctx context.Context) (dispenser.Status, error)
	CommandNonce(ctx context.Context) (string, error)
	Dispense(ctx context.Context, mix dispenser.Mix, token string) (dispenser.Result, error)
	Present(ctx context.Context) error
	WaitTaken(ctx context.Context, timeout time.Duration) (taken bool, err error)
	Retract(ctx context.Context) (dispenser.Result, error)
}

// PresentStatuser and Resetter are the optional capabilities (the core's
// atm.PresentStatuser and atm.Resetter), found by type assertion.
type (
	PresentStatuser interface {
		PresentStatus(ctx context.Context) (dispenser.PresentStatus, error)
	}
	Resetter interface {
		Reset(ctx context.Context) error
	}
)

// Faults are the device faults a simulator injects; they stay in force
// until the next SetFaults. The meanings are dispensersim.Faults'.
type Faults struct {
	Offline        bool // the device does not answer
	Jam            bool // the transport jams after JamAfter notes
	JamAfter       int
	ShortDispense  int  // that many notes fewer than requested, reported exactly
	CountUnknown   bool // the device does not know how many notes left
	NotesNotTaken  bool // the customer never takes presented notes
	ShutterFailure bool // Present fails, the notes stay stacked
	// LinkLost: the device carries out the next Dispense but its answer
	// never reaches the driver (the link drops, the device falls
	// silent); the link works again afterwards.
	LinkLost bool
}

// Caps says how the device presents notes.
type Caps struct {
	// Present: Dispense stacks the notes inside the device and only
	// Present hands them out (a shutter). Without it Dispense delivers
	// straight to the exit tray and Present does nothing.
	Present bool
	// Take: the device senses the notes being taken, so WaitTaken can
	// report false. Without it WaitTaken reports true once notes are out.
	Take bool
	// Retract: the device can take presented notes back.
	Retract bool
}

// Setup is what the suite asks a harness to start: a fresh device (no
// state from an earlier test) with these cash units.
type Setup struct {
	Units        []dispenser.CashUnit
	MaxNotes     int
	LowThreshold int    // a unit with 1..LowThreshold notes reports UnitLow
	TokenKey     []byte // the host's end-to-end token key, shared with the device
	Exponent     int    // currency exponent of the units' currency
	// TakeDelay: the simulated customer takes presented notes this long
	// after they are presented (on Clock), unless NotesNotTaken.
	TakeDelay time.Duration
	// Clock drives every wait of the driver and the simulator.
	Clock *clock.Fake
	// Dir is a fresh directory for state files.
	Dir string
}

// Device is a started driver with its simulator's controls.
type Device struct {
	Dispenser Dispenser
	Caps      Caps
	// SetFaults injects faults; an error wrapping errors.ErrUnsupported
	// means the simulator cannot produce one of them (the test is skipped).
	SetFaults func(Faults) error
	// Remaining is the ground truth: the notes in each unit, read from the
	// simulated device, not through the driver.
	Remaining func() map[string]int
	// Restart restarts the simulated device with its persistent memory (a
	// power cycle), which also drops the driver's link, and returns the
	// driver to use from now on (the same one when it reconnects itself).
	Restart func(t *testing.T) Dispenser
}

// Harness starts a device for one test. It registers its own cleanup with
// t.Cleanup.
type Harness func(t *testing.T, s Setup) *Device
