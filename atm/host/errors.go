package host

import (
	"errors"
	"fmt"
)

// Outcome errors. Callers act on them with errors.Is; see the package
// documentation for what each one requires.
var (
	// ErrUnavailable: nothing was sent (the link is down, not signed on, or
	// the request could not be built). The host has not seen the request,
	// so the caller may decline (91) without a reversal.
	ErrUnavailable = errors.New("host: host unavailable, request not sent")

	// ErrOutcomeUnknown: the request may have reached the host (time-out,
	// connection lost after sending, an answer that fails its MAC or does
	// not match the request). For a 0200 the caller must REVERSE it and
	// never retry it. For a 0220 or 0420 the caller keeps it queued and
	// resends the same advice later; the host applies each exactly once.
	ErrOutcomeUnknown = errors.New("host: outcome unknown, request may have reached the host")

	// ErrRejected: the host answered a 0220, 0420 or 0500 with a response
	// code other than 00. The error is a *RejectedError.
	ErrRejected = errors.New("host: host rejected the advice")
)

// RejectedError is the host's refusal of an advice (0230), a reversal
// (0430) or a reconciliation request (0510): Is(ErrRejected) is true.
type RejectedError struct {
	MTI          string // the answer's MTI: "0230", "0430" or "0510"
	STAN         string
	ResponseCode string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("host: host answered %s stan %s with response code %s", e.MTI, e.STAN, e.ResponseCode)
}

// Unwrap returns ErrRejected.
func (e *RejectedError) Unwrap() error { return ErrRejected }
