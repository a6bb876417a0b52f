package atm_test

import (
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/store"
)

// A withdrawal whose QR was made before midnight and whose command came
// after counts for the day of its authorization request, the day the host
// books it for (hostsim's TestTotalsBookTheDayTheAuthorizationWasSent).
func TestWithdrawalStraddlingMidnightCountsForTheAuthorizationDay(t *testing.T) {
	start := time.Date(2026, 12, 31, 23, 59, 58, 0, time.UTC)
	fake := clock.NewFake(start)
	r := newRigOn(t, dispensersim.Faults{}, fake, fake)
	s := r.session(20000)
	r.advance(5 * time.Second) // the customer scans after midnight
	if res := r.command(s, "000001"); res.ResponseCode != "00" {
		t.Fatalf("result %+v", res)
	}
	sent := r.host.Authorizations()[0].Time
	if want := start.Add(5 * time.Second); !sent.Equal(want) {
		t.Fatalf("0200 sent at %v, want %v", sent, want)
	}
	totals := map[string]int64{}
	r.db.View(func(tx *store.Tx) error {
		for _, day := range []string{"2026-12-31", "2027-01-01"} {
			v, err := tx.DailyTotal(day)
			if err != nil {
				return err
			}
			totals[day] = v
		}
		return nil
	})
	if totals["2026-12-31"] != 0 || totals["2027-01-01"] != 20000 {
		t.Fatalf("daily totals %v, want 20000 on 2027-01-01 only", totals)
	}
}
