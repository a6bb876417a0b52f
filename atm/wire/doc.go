// Package wire owns the wire format of every ISO 8583 link in the system
// (ATM <-> proxy, ATM <-> bank host, and the simulators of both): the
// message spec, the typed messages, framing, MAC, field encryption and the
// masked description of messages for logs. Nobody packs a message
// elsewhere. docs/protocol.md is the normative description; this package is
// its implementation.
//
// # Layers
//
//   - Spec and the message structs (NetMgmt, Withdrawal, Advice, Reversal):
//     ISO 8583:1987 ASCII built on github.com/moov-io/iso8583. Build turns a
//     struct into a message, Parse the other way. Helpers format and parse
//     fields 4, 7, 11, 12, 13, 48 (KeyBlock), 90 (OriginalData) and 95
//     (ReplacementAmounts).
//   - Protector: Seal encrypts fields 62, 120 and 123 (3DES-CBC, zero IV, ISO
//     9797-1 padding method 2, the cipher text in binary) with the link's
//     data key, writes the KCV of the MAC key into field 96 and appends the
//     MAC (ISO 9797-1 algorithm 3 = ANSI X9.19 retail MAC, padding method
//     2, over all bytes from the MTI up to the MAC field) in field 128 (64
//     when there is no secondary bitmap). Open does the reverse and fails
//     closed: any
//     doubt is a *MessageError wrapping ErrMAC or ErrMalformed, carrying
//     only MTI and STAN, and nothing is decrypted before the MAC verifies.
//     08xx messages are MAC'd with KeySet.NetMgmtMAC (on the proxy link a
//     variant of the TMK, NetMgmtVariant, so sign-on works before any
//     working key exists), all others with KeySet.MAC. SetKeys/DropPrevious
//     implement key rollover: the previous set stays acceptable, chosen by
//     field 96, until dropped.
//   - Framer: a 2-byte big-endian length (excluding itself), optionally a
//     5-byte TPDU (first byte 0x60), then the message. Framing faults are
//     *FrameError wrapping ErrFrameTooLarge, ErrFrameTruncated or
//     ErrFrameMalformed. CheckTPDU and ParseTPDU (hex, as configuration
//     files write it) are the one check of a configured TPDU.
//   - PeekTerminal reads field 41 of a message not yet opened, only to
//     choose the keys of the terminal it claims to be; it never panics.
//   - Codec: the MessageReader and MessageWriter for
//     github.com/moov-io/iso8583-connection. A framing error is returned and
//     closes the connection (the stream is out of sync). A message that
//     fails to unpack or verify goes to the OnReject hook (MTI, STAN and
//     the reason) and is skipped: ReadMessage returns (nil, nil), which the
//     connection's read loop takes as "keep reading", so nothing reaches a
//     handler and the link survives. A message that cannot be sealed is
//     returned as a *PackError, which the connection gives back to the
//     sender without closing.
//   - Describe and LogValue: the one place that masks messages for logs.
//     Fields 48 (keys), 52 (credential), 62, 120 and 123 (encrypted
//     fields) and 122 (dispense token) are never shown, field 2 is masked to its first
//     and last four digits.
//
// Keys are named slots in an hsm module (the Crypto interface, satisfied
// by hsm.Module); this package never sees key bytes.
package wire
