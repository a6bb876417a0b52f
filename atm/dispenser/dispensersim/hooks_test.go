package dispensersim

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

func TestHooks(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "state.json")
	s := newSim(t, file, Faults{})
	if s.HasCommandNonce() || s.ClearCommandNonce() || s.LastDispenseID() != "" {
		t.Fatal("fresh sim has a nonce or a dispense ID")
	}
	tok := token(t, s, 10000)
	if !s.HasCommandNonce() {
		t.Fatal("no nonce after CommandNonce")
	}
	if !s.ClearCommandNonce() || s.HasCommandNonce() || s.ClearCommandNonce() {
		t.Fatal("ClearCommandNonce did not clear exactly once")
	}
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 1}, tok); !errors.Is(err, dispenser.ErrNoCommandNonce) {
		t.Fatalf("dispense after clear: %v", err)
	}
	tok = token(t, s, 10000)
	if _, err := s.Dispense(ctx, dispenser.Mix{"CST1": 1}, tok); err != nil {
		t.Fatal(err)
	}
	if s.HasCommandNonce() {
		t.Fatal("nonce survived a dispense")
	}
	want := tok[len(tok)-64:]
	if got := s.LastDispenseID(); got != want {
		t.Fatalf("LastDispenseID = %q, want %q", got, want)
	}
	again := newSim(t, file, Faults{})
	if got := again.LastDispenseID(); got != want {
		t.Fatalf("LastDispenseID after restart = %q, want %q", got, want)
	}
}
