package hostsim_test

import (
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/hostlink/internal/linktest"
)

// An authorization sent one second before midnight and received one
// second after counts for the day it was sent (its field 7), in the
// configured zone: the day the ATM books the same withdrawal for.
func TestTotalsBookTheDayTheAuthorizationWasSent(t *testing.T) {
	sent := time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)
	for _, tt := range []struct {
		zone, day, otherDay string
	}{
		{"", "2026-12-31", "2027-01-01"},
		{"Asia/Shanghai", "2027-01-01", "2026-12-31"}, // 07:59:59 on 1 January in UTC+8
	} {
		t.Run("zone="+tt.zone, func(t *testing.T) {
			f := linktest.NewFixture(t)
			f.Host.Close()
			f.Config.Now = func() time.Time { return sent.Add(2 * time.Second) } // the host's clock: past midnight UTC
			f.Config.DayZone = tt.zone
			f.StartHost(t)
			c := linktest.Start(t, f.ClientConfig(t), true)
			r := req(t, f, "C-ALICE", "1234", 5000)
			r.Time = sent
			if resp := authorize(t, c, r); resp.ResponseCode != "00" {
				t.Fatalf("rc %s", resp.ResponseCode)
			}
			got, err := f.Host.Totals(tt.day, linktest.TerminalID)
			if err != nil {
				t.Fatal(err)
			}
			if want := (hostsim.Totals{Count: 1, Approved: 5000, Net: 5000}); got != want {
				t.Fatalf("totals of %s: %+v, want %+v", tt.day, got, want)
			}
			if other, _ := f.Host.Totals(tt.otherDay, linktest.TerminalID); other != (hostsim.Totals{}) {
				t.Fatalf("totals of %s: %+v, want none", tt.otherDay, other)
			}
		})
	}
}
