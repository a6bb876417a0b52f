package uifake_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/qr"
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

// TestQRPayloadParses checks that both ways into AwaitingPhone give a
// payload in the real format, carrying the session's amount and deadline.
func TestQRPayloadParses(t *testing.T) {
	now := time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)
	for name, enter := range map[string]func(*uifake.Backend) error{
		"RequestWithdrawal": func(b *uifake.Backend) error { return b.RequestWithdrawal(120000) },
		"SetPhase": func(b *uifake.Backend) error {
			b.Update(func(s *ui.Snapshot) { s.Amount = 120000 })
			b.SetPhase(ui.AwaitingPhone, "")
			return nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			b := uifake.New(func() time.Time { return now })
			if err := enter(b); err != nil {
				t.Fatal(err)
			}
			s := b.Snapshot()
			p, err := qr.Parse(s.QRPayload)
			if err != nil {
				t.Fatalf("qr.Parse(%q): %v", s.QRPayload, err)
			}
			if p.TerminalID != s.TerminalID || p.Amount != 120000 || p.Currency != "156" || !p.Expiry.Equal(s.Deadline) {
				t.Errorf("payload %+v does not match snapshot (terminal %s, amount 120000, deadline %v)", p, s.TerminalID, s.Deadline)
			}
		})
	}
}
