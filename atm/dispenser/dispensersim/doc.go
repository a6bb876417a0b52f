// Package dispensersim is a simulated cash dispenser with the behaviour of
// an XFS4IoT CashDispenser service that matters to the ATM core: cash units
// with counts and low/empty status, a command nonce, end-to-end dispense
// tokens, dispense/present/take/retract, a present status that answers
// "what was really paid" after a crash, the cassette exchange of a
// replenishment (ExchangeUnits), and injected faults (jam, short
// dispense, count unknown, notes not taken, shutter failure, offline).
//
// Tests create one in-process with New; `make sim` runs it inside the ATM.
//
// # Persistent memory
//
// Like a real device, the simulator keeps its memory outside the ATM
// application: unit counts, the supply counters (loaded, dispensed,
// rejected, retracted), notes inside the device or at the exit, the last
// dispense's present status and the nonce counter are saved to
// Config.StateFile (JSON, written to a temporary file, fsynced and renamed)
// after every change and before the command returns. If the ATM process is
// killed, a new Sim on the same file answers PresentStatus truthfully.
//
// # Tokens
//
// The simulator refuses every Dispense without a valid end-to-end token
// (see package dispenser): CommandNonce issues a fresh random nonce (mixed
// with a counter reserved in blocks in the state file, so it never repeats),
// and any Dispense attempt consumes it, refused or not, as do Retract and
// Reset: one token, one attempt. The nonce itself is never persisted, so New starts without
// one and tokens issued before a restart fail with ErrNoCommandNonce or
// ErrInvalidTokenNonce.
package dispensersim
