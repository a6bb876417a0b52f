package proxyclient

import (
	"errors"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/wire"
)

// A recorded key change push must not be accepted again: the
// network-management MAC key never changes, so the MAC alone cannot tell.
func TestFreshKeyChange(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	fake := clock.NewFake(now)
	c := &Client{cfg: Config{DuplicateWindow: 10 * time.Minute, Clock: fake}}
	dt := wire.FormatTransmissionDT(now)
	if err := c.freshKeyChange("000123", dt); err != nil {
		t.Fatalf("fresh push refused: %v", err)
	}
	if err := c.freshKeyChange("000123", dt); !errors.Is(err, errReplayedKeyChange) {
		t.Fatalf("same STAN again: %v", err)
	}
	if err := c.freshKeyChange("000124", wire.FormatTransmissionDT(now.Add(-time.Hour))); !errors.Is(err, errReplayedKeyChange) {
		t.Fatalf("an hour-old push: %v", err)
	}
	if err := c.freshKeyChange("000125", ""); !errors.Is(err, errReplayedKeyChange) {
		t.Fatalf("push without a transmission time: %v", err)
	}
	// Outside the window the STAN may come round again.
	fake.Advance(11 * time.Minute)
	now = fake.Now()
	if err := c.freshKeyChange("000123", wire.FormatTransmissionDT(now)); err != nil {
		t.Fatalf("STAN reused after the window: %v", err)
	}
}
