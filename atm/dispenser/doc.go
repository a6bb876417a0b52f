// Package dispenser holds what every cash dispenser driver and the ATM core
// share: the device's status and cash units, the note mix, the outcome of a
// dispense, the errors a dispense can end with, the denomination algorithm
// and the XFS4IoT end-to-end dispense token.
//
// # Amounts
//
// Amounts are int64 minor units of an ISO 4217 currency (10000 = 100.00
// CNY). A CashUnit holds notes of one Denomination. A Mix says how many notes
// to take from each unit, by unit ID.
//
// # Denomination
//
// Denominate finds the mix with the fewest notes that pays an amount exactly
// while respecting unit counts, the device's note limit and unusable
// (empty, inoperative) units. It is an exact memoised branch-and-bound
// search, not a greedy one: 60 from {50, 20} is 3x20. Nearest lists payable
// amounts around one that cannot be paid, for the "choose another amount"
// screen.
//
// # End-to-end dispense token
//
// A "black box" plugged into the dispenser must not be able to make it pay.
// So the device itself refuses a dispense that does not carry a token signed
// by the host (XFS4IoT end-to-end security):
//
//  1. the ATM asks the device for its command nonce (Common.GetCommandNonce,
//     32 upper-case hex digits, never reused, cleared after one dispense and
//     on power-up);
//  2. the host, on approval, signs a token with the key it shares with the
//     device: BuildToken gives
//     NONCE=...,TOKENFORMAT=1,TOKENLENGTH=0164,DISPENSE1=50.00EUR,HMACSHA256=...
//     where TOKENLENGTH is the length of the whole token and the HMAC-SHA256
//     covers the text up to and including "HMACSHA256=";
//  3. the device checks it with VerifyToken (format, length, nonce, HMAC,
//     then that the dispense does not exceed DISPENSE1 in its currency, read
//     with the currency exponent the device is configured with, never
//     guessed from the code) and only then moves notes.
//
// # Errors
//
// Token refusals are ErrNoCommandNonce, ErrInvalidToken,
// ErrInvalidTokenNonce, ErrInvalidTokenHMAC and ErrInvalidTokenFormat (no
// cash moved; IsTokenError tells them apart from device faults). Refusals
// before notes move are ErrNotDispensable, ErrTooManyItems,
// ErrDeviceNotReady, ErrSequence and ErrNoItems. A failure after notes
// started moving is a *DispenseError saying exactly which notes moved, with
// Unwrap to ErrJam, ErrShortDispense, ErrCountUnknown or ErrShutter.
// ErrCountUnknown means "assume some may have been dispensed": never retry,
// settle through PresentStatus or an operator. Code maps any of them to its
// XFS4IoT completion or error code.
//
// A simulated device implementing all of this lives in the dispensersim
// subpackage.
package dispenser
