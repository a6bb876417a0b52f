package dispenser

import (
	"errors"
	"fmt"
	"strings"
)

// codeError is a sentinel carrying its XFS4IoT completion or error code
// (read with Code).
type codeError struct{ code, text string }

func (e *codeError) Error() string { return "dispenser: " + e.text }

// Token refusals: the XFS4IoT completion codes of a command whose
// end-to-end token the device did not accept. No cash moved.
var (
	ErrNoCommandNonce     error = &codeError{"noCommandNonce", "no command nonce: none issued, or already used or cleared"}
	ErrInvalidToken       error = &codeError{"invalidToken", "invalid token: missing, or amount/currency not covered"}
	ErrInvalidTokenNonce  error = &codeError{"invalidTokenNonce", "token nonce does not match the command nonce"}
	ErrInvalidTokenHMAC   error = &codeError{"invalidTokenHMAC", "token HMAC does not verify"}
	ErrInvalidTokenFormat error = &codeError{"invalidTokenFormat", "token format is invalid"}
)

// Refusals before any note moves.
var (
	ErrNotDispensable error = &codeError{"notDispensable", "amount or mix cannot be dispensed from the cash units"}
	ErrTooManyItems   error = &codeError{"tooManyItems", "too many notes for one dispense"}
	ErrDeviceNotReady error = &codeError{"deviceNotReady", "device not ready"}
	// ErrSequence: the command is out of order (Present with nothing
	// dispensed, Dispense with notes still in the stacker or at the exit).
	ErrSequence error = &codeError{"sequenceError", "command out of sequence"}
	// ErrNoItems: Retract found no notes to retract (they were taken).
	ErrNoItems error = &codeError{"noItems", "no items to retract"}
)

// Failures during a dispense or present; they come wrapped in a
// *DispenseError that says what moved.
var (
	// ErrJam: notes jammed in the transport; the picked notes stay inside
	// the device and are purged to the reject bin on Reset.
	ErrJam error = &codeError{"cashUnitError", "notes jammed"}
	// ErrShortDispense: fewer notes than requested were dispensed;
	// DispenseError.Dispensed has the exact count.
	ErrShortDispense error = &codeError{"incompleteDispense", "short dispense"}
	// ErrCountUnknown: the device does not know how many notes left the
	// cassettes. Treat it like driver.ErrBadConn for money: assume some
	// may have been dispensed, never retry, reverse only after an operator
	// or the device's own count settles it.
	ErrCountUnknown error = &codeError{"hardwareError", "dispensed count unknown"}
	// ErrShutter: the shutter failed; nothing reached the customer.
	ErrShutter error = &codeError{"shutterNotOpen", "shutter failure"}
)

// ErrUnverifiable: the device answered, but its account of the last
// dispense cannot be believed (unsigned, a signature that does not verify,
// contents that contradict each other). Unlike an unreachable device it
// will not get better by waiting: recovery leaves the session to an
// operator.
var ErrUnverifiable = errors.New("dispenser: the device's account of the last dispense cannot be verified")

// Code returns the XFS4IoT completion/error code for err ("success" for nil,
// "hardwareError" for errors this package does not know).
func Code(err error) string {
	if err == nil {
		return "success"
	}
	var de *DispenseError
	if errors.As(err, &de) && de.Code != "" {
		return de.Code
	}
	var ce *codeError
	if errors.As(err, &ce) {
		return ce.code
	}
	return "hardwareError"
}

// IsTokenError reports whether err is one of the token refusals
// (ErrNoCommandNonce, ErrInvalidToken, ErrInvalidTokenNonce,
// ErrInvalidTokenHMAC, ErrInvalidTokenFormat).
func IsTokenError(err error) bool {
	for _, s := range []error{ErrNoCommandNonce, ErrInvalidToken, ErrInvalidTokenNonce, ErrInvalidTokenHMAC, ErrInvalidTokenFormat} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// DispenseError reports a dispense (or present) that failed after the device
// started moving notes. Err is one of ErrJam, ErrShortDispense,
// ErrCountUnknown or ErrShutter, reachable with errors.Is.
//
// For Dispense, Dispensed is the notes that left the cassettes; for Present,
// it is the notes that reached the customer. When CountKnown is false,
// Dispensed is meaningless: assume some notes may have been dispensed.
type DispenseError struct {
	Code       string // XFS4IoT error code, e.g. "cashUnitError"
	Dispensed  Mix
	CountKnown bool
	Err        error
}

func (e *DispenseError) Error() string {
	what := "count unknown"
	if e.CountKnown {
		what = "moved " + e.Dispensed.String()
	}
	return fmt.Sprintf("dispenser: %s (%s), %s", strings.TrimPrefix(e.Err.Error(), "dispenser: "), e.Code, what)
}

// Unwrap returns the sentinel.
func (e *DispenseError) Unwrap() error { return e.Err }
