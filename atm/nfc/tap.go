package nfc

import (
	"context"
	"errors"
	"fmt"
)

// Card is a card in the reader's field: here the phone, emulating one.
type Card interface {
	// Transmit sends a command APDU and returns the response APDU. An
	// error wrapping ErrRemoved means the card left the field.
	Transmit(apdu []byte) ([]byte, error)
	// Close ends the connection to the card (the card may stay in the field).
	Close() error
}

// Reader is the contactless reader.
type Reader interface {
	// WaitCard blocks until a card enters the field, or ctx is done. A
	// card that stays in the field after its Card was closed is not
	// returned again: the next call waits for it to leave and a card to
	// come.
	WaitCard(ctx context.Context) (Card, error)
	Close() error
}

// Outcomes of a tap that callers act on (what the screen says, what the
// journal records).
var (
	// ErrNoApp: the phone did not accept the SELECT: no bank app with
	// the AID (a wrong AID, another app, a bank card), or no answer.
	ErrNoApp = errors.New("nfc: the phone has no app with the AID")
	// ErrRefused: the app was selected but refused the session payload.
	ErrRefused = errors.New("nfc: the app refused the session")
	// ErrRemoved: the card left the field before the exchange finished.
	ErrRemoved = errors.New("nfc: the card was removed")
	// ErrUnavailable: this build or machine has no PC/SC.
	ErrUnavailable = errors.New("nfc: PC/SC is not available")
)

// StatusError is a status word other than 9000, wrapping ErrNoApp or
// ErrRefused.
type StatusError struct {
	Step string // "SELECT" or "SESSION"
	SW   uint16
	Err  error
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s answered %04X: %v", e.Step, e.SW, e.Err) }
func (e *StatusError) Unwrap() error { return e.Err }

// Tap selects the app with aid on card and sends it payload: nil once the
// app answered 9000 to both. It does not close card.
func Tap(card Card, aid []byte, payload string) error {
	sel, err := SelectAPDU(aid)
	if err != nil {
		return err
	}
	sess, err := SessionAPDU(payload)
	if err != nil {
		return err
	}
	for _, step := range []struct {
		name string
		apdu []byte
		fail error
	}{{"SELECT", sel, ErrNoApp}, {"SESSION", sess, ErrRefused}} {
		raw, err := card.Transmit(step.apdu)
		if err != nil {
			if errors.Is(err, ErrRemoved) {
				return fmt.Errorf("%s: %w", step.name, err)
			}
			// No answer at all (a reader error, a mute card): for the
			// SELECT that is a phone without the app.
			return fmt.Errorf("%s: %w: %w", step.name, step.fail, err)
		}
		r, err := ParseResponse(raw)
		if err != nil {
			return fmt.Errorf("%s: %w: %w", step.name, step.fail, err)
		}
		if r.SW != SWOK {
			return &StatusError{Step: step.name, SW: r.SW, Err: step.fail}
		}
	}
	return nil
}
