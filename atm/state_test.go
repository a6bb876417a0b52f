package atm

import (
	"errors"
	"testing"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

func TestNext(t *testing.T) {
	tests := []struct {
		from State
		ev   Event
		want State
	}{
		{StateNone, EvSessionCreated, StateAwaitingPhone},
		{StateAwaitingPhone, EvCancel, StateCancelled},
		{StateAwaitingPhone, EvExpire, StateExpired},
		{StateAwaitingPhone, EvCommandAccepted, StateAuthorizing},
		{StateAuthorizing, EvApproved, StateDispensing},
		{StateAuthorizing, EvDeclined, StateDeclined},
		{StateAuthorizing, EvHostUnavailable, StateFailed},
		{StateAuthorizing, EvHostUnknown, StateFailed},
		{StateDispensing, EvDispensed, StatePresenting},
		{StateDispensing, EvPartialDispense, StatePresenting},
		{StateDispensing, EvDispenseFailed, StateFailed},
		{StateDispensing, EvCountUnknown, StateInDoubt},
		{StatePresenting, EvPresented, StateAwaitingTake},
		{StatePresenting, EvPresentFailed, StateRetracting},
		{StateAwaitingTake, EvTaken, StateCompleted},
		{StateAwaitingTake, EvTakeTimeout, StateRetracting},
		{StateRetracting, EvRetracted, StateRetracted},
		{StateRetracting, EvRetractFailed, StateInDoubt},
		{StateRetracting, EvTaken, StateCompleted},
		{StateInDoubt, EvOperatorPaid, StateCompleted},
		{StateInDoubt, EvOperatorNotPaid, StateFailed},
	}
	for _, tt := range tests {
		got, err := Next(tt.from, tt.ev)
		if err != nil || got != tt.want {
			t.Errorf("Next(%s, %s) = %s, %v; want %s", tt.from, tt.ev, got, err, tt.want)
		}
	}
}

// Every pair not in the table above must be refused, and in particular no
// event may take a session back to dispensing once it has left it.
func TestNextRefusesEverythingElse(t *testing.T) {
	allowed := map[[2]uint8]bool{}
	for s := StateNone; s <= StateInDoubt; s++ {
		for e := EvNone; e <= EvOperatorNotPaid; e++ {
			next, err := Next(s, e)
			if err == nil {
				allowed[[2]uint8{uint8(s), uint8(e)}] = true
				if s.Terminal() && s != StateInDoubt {
					t.Errorf("terminal state %s accepted %s", s, e)
				}
				if s == StateInDoubt && e != EvOperatorPaid && e != EvOperatorNotPaid {
					t.Errorf("in-doubt session moved by %s: only an operator may settle it", e)
				}
				if next == StateDispensing && s != StateAuthorizing {
					t.Errorf("%s --%s--> Dispensing: only an approval may lead to a dispense", s, e)
				}
				continue
			}
			var bt *BadTransitionError
			if !errors.As(err, &bt) || next != s {
				t.Errorf("Next(%s, %s) error = %v, state %s; want *BadTransitionError and unchanged state", s, e, err, next)
			}
		}
	}
	if len(allowed) != 21 {
		t.Errorf("%d transitions allowed, want 21 (update the table test)", len(allowed))
	}
}

func TestStateTextRoundTrip(t *testing.T) {
	for s := StateNone; s <= StateInDoubt; s++ {
		b, _ := s.MarshalText()
		var got State
		if err := got.UnmarshalText(b); err != nil || got != s {
			t.Errorf("round trip %s: %s, %v", s, got, err)
		}
	}
	var s State
	if err := s.UnmarshalText([]byte("Bogus")); err == nil {
		t.Error("unknown state name accepted")
	}
}

func TestResolve(t *testing.T) {
	const nonce = "00112233445566778899AABBCCDDEEFF"
	base := Session{Amount: 30000, DispenseNonce: nonce}
	at := func(st State) Session { s := base; s.State = st; return s }
	ps := func(state dispenser.PresentState, known bool, presented, retracted int64) *dispenser.PresentStatus {
		return &dispenser.PresentStatus{Seq: 7, Nonce: nonce, State: state, CountKnown: known,
			PresentedAmount: presented, RetractedAmount: retracted}
	}
	other := ps(dispenser.PresentTaken, true, 30000, 0)
	other.Nonce = "FFEEDDCCBBAA99887766554433221100"
	tests := []struct {
		name string
		s    Session
		ps   *dispenser.PresentStatus
		want Resolution
	}{
		{"waiting phone", at(StateAwaitingPhone), nil, Resolution{State: StateExpired}},
		{"authorizing", at(StateAuthorizing), nil, Resolution{State: StateFailed, Queue: KindReversal, Operator: true}},
		{"no present status", at(StateDispensing), nil, Resolution{State: StateInDoubt, Operator: true}},
		{"never dispensed", at(StateDispensing), other, Resolution{State: StateFailed, Queue: KindReversal, Operator: true}},
		// The ATM recorded the notes counted: a device without a record of
		// them (memory lost, device swapped) is not believed.
		{"device forgot the presented notes", at(StateAwaitingTake), other, Resolution{State: StateInDoubt, Operator: true}},
		{"device forgot the counted notes", at(StatePresenting), &dispenser.PresentStatus{}, Resolution{State: StateInDoubt, Operator: true}},
		{"device forgot the notes it was retracting", at(StateRetracting), other, Resolution{State: StateInDoubt, Operator: true}},
		{"count unknown", at(StateDispensing), ps(dispenser.PresentFailed, false, 0, 0), Resolution{State: StateInDoubt, Operator: true}},
		{"taken in full", at(StateAwaitingTake), ps(dispenser.PresentTaken, true, 30000, 0), Resolution{State: StateCompleted, Paid: 30000, Queue: KindAdvice, Operator: true}},
		{"taken partly", at(StateAwaitingTake), ps(dispenser.PresentTaken, true, 20000, 0), Resolution{State: StateCompleted, Paid: 20000, Queue: KindReversal, Operator: true}},
		{"still at exit", at(StateAwaitingTake), ps(dispenser.PresentPresented, true, 30000, 0), Resolution{State: StateRetracted, Retract: true, Queue: KindReversal, Operator: true}},
		{"in stacker", at(StatePresenting), ps(dispenser.PresentStacked, true, 0, 0), Resolution{State: StateFailed, Purge: true, Queue: KindReversal, Operator: true}},
		{"retracted", at(StateRetracting), ps(dispenser.PresentRetracted, true, 30000, 30000), Resolution{State: StateRetracted, Queue: KindReversal, Operator: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Resolve(tt.s, tt.ps)
			got.Text = ""
			if got != tt.want {
				t.Errorf("Resolve = %+v, want %+v", got, tt.want)
			}
		})
	}
}
