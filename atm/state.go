package atm

import "fmt"

// State is where a cardless-withdrawal session is. Every state is committed
// to bbolt before the action it protects is taken (write-ahead): a session
// found after a crash in a state marked InFlight below is "in doubt" and is
// resolved by Recover, never paid again.
type State uint8

const (
	StateNone          State = iota
	StateAwaitingPhone       // session created, QR shown, waiting for the dispense command
	StateAuthorizing         // command accepted; 0200 about to be / being sent to the host
	StateDispensing          // host approved; dispense about to be / being executed
	StatePresenting          // notes counted; present about to be / being executed
	StateAwaitingTake        // notes in the shutter; take-cash timer running
	StateRetracting          // notes not taken; retract about to be / being executed
	StateCompleted           // cash taken; completion advice queued
	StateRetracted           // notes retracted; reversal queued
	StateDeclined            // host declined; nothing to undo
	StateFailed              // no cash (or part of it) paid; reversal queued when the host may have debited
	StateCancelled           // customer cancelled before any command
	StateExpired             // QR expired before any command
	StateInDoubt             // recovery could not tell what was paid: operator must resolve
)

var stateNames = [...]string{
	StateNone:          "None",
	StateAwaitingPhone: "AwaitingPhone",
	StateAuthorizing:   "Authorizing",
	StateDispensing:    "Dispensing",
	StatePresenting:    "Presenting",
	StateAwaitingTake:  "AwaitingTake",
	StateRetracting:    "Retracting",
	StateCompleted:     "Completed",
	StateRetracted:     "Retracted",
	StateDeclined:      "Declined",
	StateFailed:        "Failed",
	StateCancelled:     "Cancelled",
	StateExpired:       "Expired",
	StateInDoubt:       "InDoubt",
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// MarshalText and UnmarshalText store states by name, so the bbolt file
// stays readable and a reordering of the constants cannot corrupt it.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("atm: unknown session state %q", b)
}

// Terminal reports whether the session is finished for the customer: no
// customer, host or device event moves it any more. InDoubt is terminal in
// that sense; only an operator's count (EvOperatorPaid, EvOperatorNotPaid)
// settles it.
func (s State) Terminal() bool {
	switch s {
	case StateCompleted, StateRetracted, StateDeclined, StateFailed, StateCancelled, StateExpired, StateInDoubt:
		return true
	}
	return false
}

// InFlight reports whether cash or a host debit may be in motion: a session
// found in such a state at start-up is in doubt and goes to recovery.
func (s State) InFlight() bool {
	switch s {
	case StateAuthorizing, StateDispensing, StatePresenting, StateAwaitingTake, StateRetracting:
		return true
	}
	return false
}

// Event is what moves a session from one state to the next.
type Event uint8

const (
	EvNone            Event = iota
	EvSessionCreated        // amount passed the fault check; session and QR made
	EvCancel                // customer cancelled
	EvExpire                // session expiry passed
	EvCommandAccepted       // a dispense command matched the session
	EvApproved              // host approved, token received
	EvDeclined              // host declined
	EvHostUnavailable       // nothing reached the host
	EvHostUnknown           // the 0200 may have reached the host: reverse
	EvDispensed             // all notes counted out
	EvPartialDispense       // some notes counted out, count known
	EvDispenseFailed        // no notes counted out
	EvCountUnknown          // the dispenser cannot tell how many notes moved
	EvPresented             // notes in the shutter
	EvPresentFailed         // shutter fault: notes did not reach the customer
	EvTaken                 // customer took the notes
	EvTakeTimeout           // take-cash timer expired
	EvRetracted             // notes pulled back
	EvRetractFailed         // retract failed: operator must count
	EvOperatorPaid          // operator counted: the customer got some or all of the cash
	EvOperatorNotPaid       // operator counted: the customer got nothing
)

var eventNames = [...]string{
	EvNone:            "None",
	EvSessionCreated:  "SessionCreated",
	EvCancel:          "Cancel",
	EvExpire:          "Expire",
	EvCommandAccepted: "CommandAccepted",
	EvApproved:        "Approved",
	EvDeclined:        "Declined",
	EvHostUnavailable: "HostUnavailable",
	EvHostUnknown:     "HostUnknown",
	EvDispensed:       "Dispensed",
	EvPartialDispense: "PartialDispense",
	EvDispenseFailed:  "DispenseFailed",
	EvCountUnknown:    "CountUnknown",
	EvPresented:       "Presented",
	EvPresentFailed:   "PresentFailed",
	EvTaken:           "Taken",
	EvTakeTimeout:     "TakeTimeout",
	EvRetracted:       "Retracted",
	EvRetractFailed:   "RetractFailed",
	EvOperatorPaid:    "OperatorPaid",
	EvOperatorNotPaid: "OperatorNotPaid",
}

func (e Event) String() string {
	if int(e) < len(eventNames) {
		return eventNames[e]
	}
	return fmt.Sprintf("Event(%d)", uint8(e))
}

// BadTransitionError is returned by Next for an event the state does not accept.
type BadTransitionError struct {
	From  State
	Event Event
}

func (e *BadTransitionError) Error() string {
	return fmt.Sprintf("atm: event %s not allowed in state %s", e.Event, e.From)
}

// Next is the transaction's transition function. It is pure: the caller
// commits the returned state (with the journal entry and any queued advice
// or reversal) in one bbolt transaction and only then performs the action
// the new state stands for.
func Next(s State, e Event) (State, error) {
	switch s {
	case StateNone:
		if e == EvSessionCreated {
			return StateAwaitingPhone, nil
		}
	case StateAwaitingPhone:
		switch e {
		case EvCancel:
			return StateCancelled, nil
		case EvExpire:
			return StateExpired, nil
		case EvCommandAccepted:
			return StateAuthorizing, nil
		}
	case StateAuthorizing:
		switch e {
		case EvApproved:
			return StateDispensing, nil
		case EvDeclined:
			return StateDeclined, nil
		case EvHostUnavailable, EvHostUnknown:
			return StateFailed, nil
		}
	case StateDispensing:
		switch e {
		case EvDispensed, EvPartialDispense:
			return StatePresenting, nil
		case EvDispenseFailed:
			return StateFailed, nil
		case EvCountUnknown:
			return StateInDoubt, nil
		}
	case StatePresenting:
		switch e {
		case EvPresented:
			return StateAwaitingTake, nil
		case EvPresentFailed:
			return StateRetracting, nil
		}
	case StateAwaitingTake:
		switch e {
		case EvTaken:
			return StateCompleted, nil
		case EvTakeTimeout:
			return StateRetracting, nil
		}
	case StateInDoubt:
		switch e {
		case EvOperatorPaid:
			return StateCompleted, nil
		case EvOperatorNotPaid:
			return StateFailed, nil
		}
	case StateRetracting:
		switch e {
		case EvRetracted:
			return StateRetracted, nil
		case EvTaken: // the customer took the notes as the retract began
			return StateCompleted, nil
		case EvRetractFailed:
			return StateInDoubt, nil
		}
	}
	return s, &BadTransitionError{From: s, Event: e}
}
