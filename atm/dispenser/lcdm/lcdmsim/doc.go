// Package lcdmsim simulates a Puloon LCDM-2000 cash dispenser on a
// pseudo-terminal (github.com/creack/pty): Start opens a pty, Path is the
// slave tty that the lcdm driver opens as a real serial port with
// go.bug.st/serial, and the simulator speaks the device side of the
// protocol on the master.
//
// It is strict: a frame with a bad BCC is NAKed, a command it does not
// know is answered with error 0x37, a dispense with malformed counts with
// 0x3B, frames for another ID are ignored. It holds the cassettes with
// their counts, the notes stuck in the transport, the exit and reject trays
// and a latched error (cleared by a purge), all saved to Config.StateFile
// before it answers, so Restart (a power cycle: the pty closes and a new
// one opens) keeps them.
//
// Faults (see Faults) cover pickup errors, a jam with a note stuck inside,
// a jam at the exit (count unknown), a cassette running out (short
// dispense with exact counts), doubles diverted to the reject tray, any
// error code of the table (also as an error-only answer without counts),
// damaged answers (bad BCC, the host NAKs and the device resends), NAKed
// host frames (any, or dispense frames only), stray bytes such as a 0x15
// before the ACK of a dispense frame, a device that answers nothing
// (offline) and a dispense whose answer is lost. The conformance suite's
// faults map onto them (Jam, ShortDispense, CountUnknown, Offline); a
// device without shutter or take sensor cannot produce NotesNotTaken or
// ShutterFailure.
//
// Tests read the ground truth from Remaining (notes in each cassette),
// Tray, Transport and Reject, and the exact bytes the device received
// from Received. Config.OnSilent lets a test with a fake clock advance it
// whenever the device stays silent, so the driver's timeouts fire without
// anyone sleeping.
package lcdmsim
