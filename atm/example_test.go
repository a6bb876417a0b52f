package atm_test

import (
	"fmt"

	"github.com/cardless-atm/cardless/atm"
)

// The happy path of a cardless withdrawal through the transition function.
func ExampleNext() {
	s := atm.StateNone
	for _, ev := range []atm.Event{atm.EvSessionCreated, atm.EvCommandAccepted, atm.EvApproved,
		atm.EvDispensed, atm.EvPresented, atm.EvTaken} {
		next, err := atm.Next(s, ev)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s --%s--> %s\n", s, ev, next)
		s = next
	}
	_, err := atm.Next(s, atm.EvApproved)
	fmt.Println(err)
	// Output:
	// None --SessionCreated--> AwaitingPhone
	// AwaitingPhone --CommandAccepted--> Authorizing
	// Authorizing --Approved--> Dispensing
	// Dispensing --Dispensed--> Presenting
	// Presenting --Presented--> AwaitingTake
	// AwaitingTake --Taken--> Completed
	// atm: event Approved not allowed in state Completed
}
