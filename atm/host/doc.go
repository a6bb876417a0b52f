// Package host is the contract between the ATM's core and the bank host:
// the requests (a withdrawal's authorization, its completion advice, its
// reversal, the reconciliation request for a terminal's daily totals), the
// host's answer, and the outcome errors a caller acts on.
// It holds no network code, so the core names the host's messages without
// importing a link.
//
// The core (package atm) defines the interface it needs (atm.Host) over
// these types. Two implementations ship: atm/hostlink, the ISO 8583 link
// over TCP to a real host (or to the simulator atm/hostlink/hostsim), and
// atm/host/hostfake, an in-process fake for tests that checks every call
// against what the test expects.
//
// # Outcome errors
//
// Compare with errors.Is; act on them as database/sql/driver documents
// ErrBadConn:
//   - ErrUnavailable: nothing was sent; for an authorization, decline
//     locally (91) with no reversal.
//   - ErrOutcomeUnknown: the request may have reached the host; for an
//     authorization, REVERSE and never retry; for an advice or reversal,
//     keep it queued and resend it unchanged.
//   - ErrRejected (a *RejectedError): the host refused an advice or
//     reversal; resending will not help; an operator must look.
package host
