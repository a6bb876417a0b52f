// Package dispensertest is the conformance suite every cash dispenser
// driver passes: the simulator (dispensersim), the XFS4IoT driver against
// its device simulator and the Puloon LCDM serial driver against its
// pseudo-terminal simulator run the same tests.
//
// A driver's test calls Run with a Harness: a function that starts a fresh
// simulated device loaded as Setup says and returns the driver connected to
// it, with the simulator's controls (faults, ground-truth counts, restart).
// The suite then checks what the ATM core relies on:
//
//   - status and cash units as loaded, low and empty units;
//   - command nonces: 32 upper-case hex digits, never repeated, also
//     across a restart of the device;
//   - the end-to-end token: a dispense without a token, with a forged one,
//     one for too small an amount, one for a stale nonce or a replayed one
//     is refused with the token error and moves nothing;
//   - dispense, present, take and retract sequences, and the refusals of
//     commands out of sequence, too many notes and notes the units lack;
//   - every fault the simulator can inject (jam, short dispense, count
//     unknown, notes not taken, shutter failure, offline) ends with an error
//     that says exactly which notes moved, checked against the simulator's
//     own counts;
//   - after a restart of the device (or a lost link) the driver works
//     again, the old nonce is dead and the present status survived.
//
// A device without a capability (a serial dispenser has no shutter and
// cannot retract) says so in Caps and the suite checks what it does
// instead; a fault the simulator cannot produce makes SetFaults return an
// error wrapping errors.ErrUnsupported, and that test is skipped with the
// reason in the log.
//
// Time: the suite owns a fake clock (Setup.Clock) that the harness gives
// to the driver and the simulator; waits (the customer taking the notes,
// take-cash timeouts, reconnect backoff) advance it instead of sleeping.
package dispensertest
