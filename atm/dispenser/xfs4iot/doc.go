// Package xfs4iot drives a cash dispenser through a CEN XFS4IoT service
// (JSON over WebSocket, message format of release 2023-2: version, timeout,
// status and completion code in the header). It implements the ATM core's
// Dispenser port and its PresentStatuser and Resetter capabilities. The
// wire contract, with an exact example of every message, is
// docs/xfs4iot.md; the device simulator that speaks it is the xfs4iotsim
// subpackage (and cmd/xfs4iotsim).
//
// # Connection
//
// The driver connects on first use: ServicePublisher.GetServices on the
// publisher (ws(s)://HOST:PORT/xfs4iot/v1.0; without a port, the standard
// ports are tried in order: 80 or 443, then 5846-5856), then Common.Capabilities on
// each service until one says it is a cash dispenser. Request IDs are
// unique per connection; every command waits for its acknowledge, its
// events and one completion, and a service that breaks that sequence
// (a completion before the acknowledge, an answer to a request not in
// flight, a malformed message) is dropped. After the link is lost, each
// command first reconnects, no sooner than the backoff allows
// (atm/backoff, on the injected clock), failing with
// dispenser.ErrDeviceNotReady meanwhile.
//
// # Outcomes
//
// Completion codes and payload error codes map to the core's errors: the
// token refusals to dispenser.ErrNoCommandNonce, ErrInvalidToken,
// ErrInvalidTokenNonce, ErrInvalidTokenHMAC and ErrInvalidTokenFormat;
// notDispensable and friends to ErrNotDispensable; tooManyItems to
// ErrTooManyItems; itemsLeft to ErrSequence; deviceNotReady, a command the
// acknowledge refused (invalidMessage, invalidRequestID, tooManyRequests)
// and a lost link outside a dispense to ErrDeviceNotReady. A dispense is
// "nothing moved" only for the completions the standard defines as
// refusals before the notes move (the list in refusedBeforeMoving). A
// short dispense (commandErrorCode/cashUnitError) and a jam
// (hardwareError) with the denomination in the completion itself wrap
// ErrShortDispense and ErrJam with exactly the notes moved; everything
// else (those without a denomination, whatever an event said, timeOut,
// internalError, canceled, userError, fraudAttempt, unknown codes, an
// acknowledge with an unknown status, a lost link, a context that ended
// while the command was in flight) wraps ErrCountUnknown: never "nothing
// paid". After every Dispense the driver clears the command nonce
// (Common.ClearCommandNonce), as the standard lets a token be reused for
// its nonce until then.
//
// Presented notes count as taken only when Common.Status says the exit is
// empty; Retract's "no items" means taken only if the device had said it
// presented them, and with a response key the device's signed account
// after a retract must show every presented note retracted (otherwise the
// customer may have taken some: an error, and the session goes to an
// operator).
//
// # Response security
//
// PresentStatus asks CashDispenser.GetPresentStatus with a fresh random
// nonce and believes the answer only if the response token's HMAC-SHA256
// verifies with Config.ResponseKey, answers that nonce, and its signed
// amounts agree with the (unsigned) denomination. The dispense is named by
// DISPENSEID, the HMAC of the token that authorised it, which
// dispenser.PresentStatus.Of matches against the session's token: the core
// ties a dispense interrupted by a crash to its session without trusting
// anything the device did not sign. Without a response key the driver
// refuses to report (ErrUnverified), and recovery leaves the session to an
// operator.
//
// # Limits
//
// One output position (outDefault), one currency per dispense, app
// denominations (the core chooses the mix). The driver has been tested only
// against xfs4iotsim: no vendor's XFS4IoT service was available.
package xfs4iot
