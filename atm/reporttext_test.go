package atm_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/host"
)

func sampleReplenishment() *atm.ReplenishmentReport {
	return &atm.ReplenishmentReport{TerminalID: "ATM00001", Operator: "op-7", Time: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), Currency: "CNY", Exponent: 2,
		Removed: []atm.RemovedCassette{
			{CassetteCounters: atm.CassetteCounters{UnitID: "CST1", Denomination: 10000, Currency: "CNY", Loaded: 50, Dispensed: 3, Remaining: 47}, Counted: 45, Difference: -2},
			{CassetteCounters: atm.CassetteCounters{UnitID: "CST2", Denomination: 5000, Currency: "CNY", Loaded: 50, Dispensed: 1, Remaining: 49}, Counted: 49}},
		Loaded: []atm.CassetteLoad{{UnitID: "CST1", Denomination: 10000, Currency: "CNY", Notes: 500}, {UnitID: "CST2", Denomination: 5000, Currency: "CNY", Notes: 300}},
		Device: atm.DeviceOwnCounts, CountersChecked: true, Mismatches: []string{"CST2: ATM 300, device 49"}}
}

func sampleBalance() *atm.BalanceReport {
	return &atm.BalanceReport{TerminalID: "ATM00001", Day: "2026-11-21", Zone: "Asia/Shanghai", Operator: "op-7",
		Time: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC), Currency: "CNY", Exponent: 2,
		ATM: host.Totals{Approved: host.Count{Count: 2, Amount: 65000}, Reversals: host.Count{Count: 1, Amount: 10000},
			Advices: host.Count{Count: 1, Amount: 35000}, NetDebit: 55000},
		CashOut: 55000,
		Host:    &host.Totals{Approved: host.Count{Count: 2, Amount: 65000}, Advices: host.Count{Count: 1, Amount: 35000}, NetDebit: 65000},
		Differences: []atm.Difference{{Item: "reversal_count", ATM: 1}, {Item: "reversal_amount", ATM: 10000},
			{Item: "net_debit", ATM: 55000, Host: 65000}, {Item: "cash_out", ATM: 55000, Host: 65000}},
		PendingReversals: host.Count{Count: 1, Amount: 10000},
		Units:            []atm.CassetteCounters{{UnitID: "CST1", Denomination: 10000, Currency: "CNY", Loaded: 50, Dispensed: 3, Remaining: 47}}}
}

// TestReportLines: the printable reports, line by line, in English and
// Chinese; another language is refused.
func TestReportLines(t *testing.T) {
	want := map[string][]string{
		"replenishment en": {
			"REPLENISHMENT REPORT",
			"Terminal: ATM00001",
			"Time: 2026-11-21 09:00:00 UTC",
			"Operator: op-7",
			"Cassettes taken out:",
			"  CST1 100.00 CNY",
			"    counters 47, counted 45: DIFFERENCE -2 notes (-200.00 CNY)",
			"  CST2 50.00 CNY",
			"    counters 49, counted 49: agrees",
			"Cassettes put in:",
			"  CST1 100.00 CNY x 500 notes = 50000.00 CNY",
			"  CST2 50.00 CNY x 300 notes = 15000.00 CNY",
			"Total put in: 65000.00 CNY",
			"Dispenser: keeps its own counts",
			"Counters and dispenser: differ: CST2: ATM 300, device 49",
		},
		"replenishment zh": {
			"加钞报告",
			"终端号：ATM00001",
			"时间：2026-11-21 09:00:00 UTC",
			"操作员：op-7",
			"取出的钞箱：",
			"  CST1 100.00 CNY",
			"    账面 47 张，实点 45 张：差异 -2 张（-200.00 CNY）",
			"  CST2 50.00 CNY",
			"    账面 49 张，实点 49 张：相符",
			"装入的钞箱：",
			"  CST1 100.00 CNY x 500 张 = 50000.00 CNY",
			"  CST2 50.00 CNY x 300 张 = 15000.00 CNY",
			"装入合计：65000.00 CNY",
			"出钞模块：自行计数",
			"计数器与出钞模块：不符：CST2: ATM 300, device 49",
		},
		"balance en": {
			"DAILY BALANCE",
			"Terminal: ATM00001",
			"Business day: 2026-11-21 (Asia/Shanghai)",
			"Time: 2026-11-22 09:00:00 UTC",
			"Operator: op-7",
			"                             ATM            HOST",
			"Approved count                 2               2",
			"Approved amount       650.00 CNY      650.00 CNY",
			"Reversals count                1               0",
			"Reversals amount      100.00 CNY        0.00 CNY",
			"Advices count                  1               1",
			"Advices amount        350.00 CNY      350.00 CNY",
			"Net debit             550.00 CNY      650.00 CNY",
			"Cash out              550.00 CNY      650.00 CNY",
			"DIFFERENCES: 4",
			"  Reversals count                1               0",
			"  Reversals amount      100.00 CNY        0.00 CNY",
			"  Net debit             550.00 CNY      650.00 CNY",
			"  Cash out              550.00 CNY      650.00 CNY",
			"Reversals not yet acknowledged: 1 (100.00 CNY)",
			"Cassette counters (since the last replenishment):",
			"  CST1 100.00 CNY: loaded 50, dispensed 3, rejected 0, retracted 0, left 47",
		},
	}
	for name, lines := range map[string]func(string) ([]string, error){
		"replenishment": sampleReplenishment().Lines, "balance": sampleBalance().Lines} {
		en, err := lines("en")
		if err != nil {
			t.Fatal(err)
		}
		if w := want[name+" en"]; !slices.Equal(en, w) {
			t.Errorf("%s in English:\n%s\nwant\n%s", name, strings.Join(en, "\n"), strings.Join(w, "\n"))
		}
		zh, err := lines("zh")
		if err != nil {
			t.Fatal(err)
		}
		if w, ok := want[name+" zh"]; ok && !slices.Equal(zh, w) || len(zh) != len(en) {
			t.Errorf("%s in Chinese:\n%s", name, strings.Join(zh, "\n"))
		}
		if _, err := lines("fr"); err == nil {
			t.Fatal("a report in French")
		}
	}
	noHost := sampleBalance()
	noHost.Host, noHost.HostError, noHost.Differences = nil, "host: host unavailable, request not sent", nil
	en, _ := noHost.Lines("en")
	if en[6] != "Approved count                 2               -" || en[14] != "No host totals: host: host unavailable, request not sent" {
		t.Errorf("without host totals:\n%s", strings.Join(en, "\n"))
	}
}
