// Package hostlink is the ATM's link to the bank host (the transaction
// processing back end): one persistent TCP connection carrying ISO 8583
// messages in the format of package wire, with every message MAC'd and the
// customer identifier (field 120) and the phone's device ID (field 123)
// encrypted.
//
// # Connection
//
// Run dials the host, signs on (0800 with field 70 = 001, which the host
// answers 0810/00 only for an admitted terminal whose MAC verifies),
// returns the answer's challenge (field 53) in an 0800/301, without which
// the host serves nothing on the connection, and
// keeps the link alive with echoes (0800/301) once it has written nothing
// for EchoInterval of Config.Clock (atm/keepalive); a failed echo drops the
// link. After any loss it reconnects with exponential backoff and random
// jitter (atm/backoff), waiting on the same clock. The keys
// are static and live in the ATM's security module: hsm.HostMAC MACs every
// message (network management included) and hsm.HostData encrypts fields
// 120 and 123 (see Keys). Connected reports whether the link is signed on.
//
// # Messages
//
//   - Authorize: 0200 -> 0210. The PIN block (field 52) comes from the phone
//     encrypted under the app PIN key and is passed through untouched; only
//     the host decrypts it. The phone's device ID (field 123), passed
//     through too, lets the host check that the phone is bound to the
//     customer (docs/binding.md; 57 when not). The dispenser's command
//     nonce goes in field 121 and an approval carries the XFS4IoT dispense
//     token in field 122.
//   - Advise: 0220 -> 0230, the completion advice after cash was taken.
//   - Reverse: 0420 -> 0430, full or partial (field 95 = amount actually
//     paid out); field 39 of the 0420 carries the reason (wire.Reason*).
//   - Reconcile: 0500 -> 0510, the host's totals of the terminal for one
//     business day (approved withdrawals, reversals, completion advices,
//     net debit), for the operator's daily balancing. It changes nothing
//     at the host; a failed request may be asked again.
//
// # Errors
//
// The errors returned are the outcome errors of package host (host.ErrUnavailable,
// host.ErrOutcomeUnknown, host.ErrRejected), to be acted on in the way database/sql/driver
// documents ErrBadConn; compare them with errors.Is:
//
// ErrUnavailable means nothing was sent: the link is down or not signed
// on, the context had already ended, or the request was invalid and was
// refused before it reached the socket. The host has not seen the request;
// for a 0200 the ATM may decline (91) and needs no reversal.
//
// ErrOutcomeUnknown means the request may have reached the host: no answer
// within the send timeout or the context's deadline, the connection lost
// after the request was written, or an answer that does not match the
// request (other terminal, other amount, approval without a token). For a
// 0200 the caller must REVERSE the authorization (0420) and must never
// retry the 0200: the host may have debited the account. For a 0220 or
// 0420 the caller keeps the item in its store-and-forward queue and resends
// the SAME advice (same STAN and original data) later; the host applies
// each advice exactly once, keyed by terminal and original STAN, and
// acknowledges repeats with 00.
//
// ErrRejected (a *RejectedError) means the host answered a 0220 or 0420
// with a response code other than 00; resending the same advice will not
// help and the case needs an operator. For a 0500 it means the host
// refused the request (an unknown currency, say).
//
// A 0210 that declines is not an error: AuthResponse.ResponseCode says why.
//
// Nothing secret is logged: log lines carry MTI, STAN and response codes.
//
// The host simulator is package hostsim, beside this one.
package hostlink
