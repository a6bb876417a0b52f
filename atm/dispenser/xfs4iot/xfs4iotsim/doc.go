// Package xfs4iotsim is an XFS4IoT cash dispenser simulator: a service
// publisher and one CashDispenser service (answering the Common, Storage,
// CashDispenser and CashManagement commands a withdrawal needs) on
// WebSocket, with the cash logic of dispensersim behind it.
//
// It follows the CEN XFS4IoT specification release 2023-2 (message version
// "2.0": version, timeout, status and completionCode in the header, null
// payloads, Dispense/Denominate with denomination.{app|service}). The exact
// wire contract, with an example of every exchange, every completion code
// and every event, is docs/xfs4iot.md at the repository root; a client can
// be written from it alone.
//
// # Use in tests
//
//	srv, err := xfs4iotsim.Start(xfs4iotsim.Config{Addr: "127.0.0.1:0", Units: units, TokenKey: key, Exponent: 2, StateFile: file, Clock: fake})
//	defer srv.Close()
//	url := srv.PublisherURL() // ws://127.0.0.1:PORT/xfs4iot/v1.0
//
// Faults (dispensersim.Faults) are set in Config or at run time with
// SetFaults; DropLink closes a connection after the device acted and before
// the completion (lost link mid-dispense). Restart power-cycles: a new
// Server on the same address and state file; counts, notes and the last
// dispense survive, the command nonce does not, nonces never repeat.
// Counters, Stacked and PresentStatus give the ground truth; Config.AfterSave
// is passed to the simulated device for crash tests. The simulated customer
// takes presented notes TakeDelay later on Config.Clock (a clock.Fake in
// tests).
//
// # Strictness
//
// Every incoming frame is checked: JSON shape, header members and types,
// message type, requestId range and uniqueness among the connection's
// commands in flight, command name and version, and the payload with exact
// member names (no unknown, differently cased or repeated member). Refusals
// are acknowledges with status invalidMessage, invalidRequestID or
// tooManyRequests, or a completion unsupportedCommand, as the contract says.
//
// # Simplifications
//
//   - One output position (outDefault), one currency, cassettes only: the
//     retract and reject bins are not storage units; retracted notes are
//     reported by GetPresentStatus.
//   - Mixes: the application's counts, or the service's "mix1" (fewest
//     notes); no mix tables, no partial, no cashBox, no teller dispensers.
//   - No Common.Cancel, no SetVersions, no ServiceDetailEvent, no TLS, no
//     command nonce timeout; header timeout is honoured only while a
//     command waits in the queue.
//   - Storage counts: initial, out.presented/rejected/stacked; the current
//     count is initial minus those.
//   - The token key is a software key given in Config (no KeyManagement).
package xfs4iotsim
