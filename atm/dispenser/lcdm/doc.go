// Package lcdm drives a Puloon LCDM-2000 (and LCDM-1000) cash dispenser
// over RS-232, with go.bug.st/serial, behind the ATM core's Dispenser port
// (Status, CommandNonce, Dispense, Present, WaitTaken, Retract) and the
// optional PresentStatus, Reset and ExchangeUnits (the new cassettes of a
// replenishment, recorded in the driver's counts).
//
// # Security: weaker than XFS4IoT
//
// The LCDM has no end-to-end security: any program that can write to its
// serial port makes it pay. This driver therefore issues the command
// nonces itself and checks the host's dispense token with
// dispenser.VerifyToken before any byte of a dispense reaches the wire,
// and any Dispense call consumes the nonce. That keeps a compromised or
// buggy ATM application honest, but it does NOT stop a "black box" plugged
// into the cable or a process running as the same user: the token is
// checked in the PC, not inside the device, as an XFS4IoT dispenser with
// end-to-end security does. Use an XFS4IoT dispenser (token checked inside
// the device) in production; use this driver for kiosks where the cable
// and the PC are physically protected, and for development.
//
// # Protocol
//
// Host frame EOT(0x04) ID(0x50) STX(0x02) CMD [data] ETX(0x03) BCC, BCC the
// XOR of all preceding bytes. The device answers ACK (0x06) or NAK (0x15),
// then SOH(0x01) 0x50 STX CMD data ETX BCC, which the host ACKs (NAK asks
// for a resend). Status, purge and ROM version are sent again after a NAK
// or silence, at most Tries (3) times. A dispense frame is written once and
// never sent again (a device that executed two would pay twice): a NAK that
// is the very first byte after it, followed by quiet, is a refusal (nothing
// ran: ErrDeviceNotReady); any other NAK (after other bytes, or followed by
// an ACK, an answer or noise: a stray 0x15 looks like a NAK), silence or a
// lost answer is ErrCountUnknown. A damaged answer is NAKed (the device
// resends the answer, not the command) at most 3 times. Commands: 0x44 purge, 0x45 upper dispense, 0x46
// status, 0x47 ROM version, 0x55 lower dispense, 0x56 upper and lower; see
// Frame, DispenseAnswer, StatusAnswer and docs/lcdm.md for the byte layouts
// and which parts come from public sources and which are assumptions.
// The LCDM-4000 (ID 0x30, other commands) is refused by Open.
//
// # No shutter
//
// Notes that pass the exit sensor are in the customer's tray. So Dispense
// delivers: Result.Mix is the notes delivered, Result.Rejected those picked
// and diverted to the reject tray (doubles). Present does nothing (nil
// after a delivery, ErrSequence otherwise); WaitTaken returns true at once
// (the device cannot sense taking); Retract returns dispenser.ErrNoItems.
// The conformance suite sees Caps{Present: false, Take: false, Retract:
// false}.
//
// # Faults
//
// The dispense answer carries, per cassette, the check-sensor count (left
// the cassette), the exit count (delivered), the reject count, plus one
// error code. Every code of the LCDM-2000 table maps to the core's
// outcomes (ErrorCode.Class):
//
//   - notes passed the exit: *dispenser.DispenseError wrapping
//     ErrShortDispense, Dispensed = exactly the notes delivered (over all
//     commands of a split dispense) — never ErrJam, which the core reverses
//     in full;
//   - none passed the exit but some left the cassettes: ErrJam, Dispensed
//     = the notes picked (reject tray, or stuck inside until Reset purges
//     them);
//   - a jam at the exit (0x35, 0x48) or a counting error next to it (0x3D),
//     counts that do not add up, an error-only answer (no counts) with any
//     code but 0x37 undefined command, an ambiguous NAK, or no intact
//     answer once a dispense command was sent: ErrCountUnknown, CountKnown
//     false;
//   - bill end (0x38, 0x40): a short dispense with exact counts; the
//     cassette is reported empty until Reset.
//
// After a fault the device needs a purge: Status reports hardwareError and
// CommandNonce and Dispense return ErrDeviceNotReady until Reset (purge
// 0x44). A device that does not answer is StateOffline, and commands
// return ErrDeviceNotReady. Dispenses over 60 notes per cassette are split
// into several commands.
//
// # Persistent memory
//
// The device does not count its cassettes, and remembers nothing useful
// across a power cycle, so the driver keeps a JSON state file
// (Config.StateFile, written atomically before a method returns): cassette
// counts, the nonce counter block (nonces never repeat, also across
// restarts), the last dispense's present status (so PresentStatus survives
// a restart) and the purge-needed flag. Before the first dispense command
// is sent the dispense is recorded as "count unknown, purge needed", so a
// crash mid-dispense is never read as "nothing paid". Open purges the
// transport, as the device must be at start; that also clears a fault left
// by the previous run.
//
// # Time and concurrency
//
// Every timeout runs on Config.Clock; the only real-time wait is the serial
// read timeout of one port read (Config.ReadTimeout). A timeout counts only
// once the clock timer fired and one more read found the line silent. The
// methods are safe for concurrent use: device commands are serialized (the
// wait respects the context), Status answers StateBusy without waiting
// while another command runs, and no lock is held across device I/O except
// the command slot itself.
//
// The device side of the protocol, on a pseudo-terminal, is in lcdmsim;
// cmd/lcdmsim runs it as a program.
package lcdm
