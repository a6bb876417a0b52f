package atm

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/store/storetest"
)

// The daily limit fails closed: when today's total cannot be read (here the
// store is closed), the amount is refused as over the limit, not checked
// against a total of 0.
func TestDailyLimitFailsClosed(t *testing.T) {
	db := storetest.Open(t)
	a := &ATM{cfg: Config{Limits: Limits{Min: 100, Max: 100000, Daily: 200000}, Clock: clock.Real{}, DayZone: time.UTC},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), db: db}
	st := dispenser.Status{MaxNotes: 40, Units: []dispenser.CashUnit{{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 50}}}
	if _, cerr := a.checkAmount(50000, st); cerr != nil {
		t.Fatalf("readable total: %v", cerr)
	}
	db.Close()
	if _, cerr := a.checkAmount(50000, st); cerr == nil || cerr.Reason != "daily_limit" {
		t.Fatalf("unreadable total: %+v, want daily_limit", cerr)
	}
}
