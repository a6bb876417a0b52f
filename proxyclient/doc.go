// Package proxyclient is the ATM's persistent, protected link to the proxy
// server: the proxy sends dispense commands over it, and the ATM answers
// once the withdrawal is over.
//
// # Transport
//
// The link is ISO 8583:1987 over TCP, built on
// github.com/moov-io/iso8583-connection (v0.9.0) with the atm/wire Codec as
// its MessageReader and MessageWriter: the wire package owns framing (2-byte
// length, optional TPDU), the MAC (ISO 9797-1 alg. 3, field 128, key KCV in
// field 96) and the 3DES encryption of fields 62, 120 and 123. The library gives
// request/response matching by STAN, an idle timer (used for echoes) and
// inbound dispatch; it fits, with two notes: Send takes no context (Client
// bounds it with the context's deadline and SendTimeout), and inbound
// messages are dispatched on goroutines, so key switches are done on the
// read goroutine (see below) rather than in handlers.
//
// # Lifecycle
//
// Run connects, signs on (0800, field 70 = 001), installs the working keys
// from the 0810, returns its challenge (field 53) in an 0800/301 so that the
// proxy knows this end holds the terminal's key (a replayed sign-on takes
// nothing over), then waits; after EchoInterval of Config.Clock without a
// message written it sends an echo (301; atm/keepalive), and a failed echo
// drops the link. After every drop Run
// reconnects with exponential backoff (BackoffMin doubling to BackoffMax,
// with jitter: a random delay between half and all of the current step) and
// signs on again, until its context ends. A new connection always gets new
// keys. Status reports the state; RequestKeys asks for new keys (161).
//
// # Keys
//
// hsm.TMK is the terminal master key. Run derives NetMgmtKey (the TMK
// variant wire.NetMgmtVariant) that MACs every 08xx message, so sign-on is
// protected before working keys exist. Working keys arrive in field 48
// encrypted under the TMK with their KCVs; each generation is imported into
// fresh slots "tak.<n>" and "tek.<n>" by hsm.Module.ImportKey, which
// refuses a wrong KCV (the keys in use stay in use, and a 162 is answered
// 63). Switching happens on the read goroutine before the next message is
// read, so message order on the TCP stream decides which keys apply:
//
//   - 001/161: the proxy switches as it writes the 0810; the ATM switches
//     as it reads it and deletes the previous keys at once.
//   - 162 (the proxy pushes keys): the ATM switches before answering 0810 00
//     and keeps accepting the previous keys until they are "confirmed": the
//     first message from the proxy MAC'd under the new key (field 96 equals
//     the new TAK's KCV), or the next 162. Then the old slots are deleted.
//
// docs/protocol.md ("Key exchange on the proxy link") has the full rules.
//
// # Dispense commands
//
// An inbound 0200 whose MAC verifies is checked for replay: a STAN already
// seen within DuplicateWindow (or still being handled), or a transmission
// date-time (field 7) further than DuplicateWindow from now, is answered
// 0210 with 39 = 94 and never reaches the Handler. A command for another
// terminal gets 12. Otherwise the Handler runs (on its own goroutine; it
// may take a minute) and its Result goes back in the 0210: 39, 38, 37, 4,
// and 95 when Dispensed differs from the amount. Messages whose MAC fails
// are dropped by the Codec, counted in Status.Rejected and logged with the
// reason; they never reach the Handler.
//
// Logging goes through wire.Loggable (masked); keys, key blocks and PIN
// blocks are never logged.
//
// Subpackages proxysim (a proxy server simulator) and phonesim (the phone
// app) are the other ends of the link, importable by tests.
package proxyclient
