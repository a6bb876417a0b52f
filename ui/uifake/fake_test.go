package uifake_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/uifake"
)

func Example() {
	now := time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)
	b := uifake.New(func() time.Time { return now })

	var cp *ui.CannotPayError
	err := b.RequestWithdrawal(15000) // not a multiple of 100 yuan
	fmt.Println(errors.As(err, &cp), cp.Reason)

	_ = b.RequestWithdrawal(50000)
	s := b.Snapshot()
	fmt.Println(s.Phase, s.Amount, s.Deadline.Sub(now))
	<-b.Changed()

	b.SetPhase(ui.TakeCash, "")
	b.MoreTime()
	fmt.Println(b.Snapshot().Phase, b.Snapshot().Deadline.Sub(now))
	b.Cancel()
	fmt.Println(b.Snapshot().Phase, b.Requested())
	// Output:
	// true limit
	// AwaitingPhone 50000 1m0s
	// TakeCash 30s
	// Idle [15000 50000]
}
