package ui_test

import (
	"errors"
	"slices"
	"testing"

	"gioui.org/io/key"

	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/uifake"
	"github.com/cardless-atm/cardless/ui/uitest"
)

// supervisorOn logs operator 1001 in on the PIN pad and opens the
// supervisor screen.
func supervisorOn(t *testing.T) (*uifake.Backend, *uitest.Driver) {
	t.Helper()
	clk := newClock()
	b := uifake.New(clk.Now)
	h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now})
	step(t, h, ui.ScreenWelcome)
	h.Key(key.NameF12)
	step(t, h, ui.ScreenOperatorLogin)
	h.Type("1001")
	h.Key(key.NameReturn)
	h.Type("271828")
	h.Key(key.NameReturn)
	step(t, h, ui.ScreenSupervisor)
	return b, h
}

func wantLabel(t *testing.T, h *uitest.Driver, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(h.Labels(), w) {
			t.Fatalf("%q not shown: %q", w, h.Labels())
		}
	}
}

func en(k i18n.Key, args ...any) string { return i18n.T(i18n.English, k, args...) }

// TestSupervisorReplenish: F1 takes the terminal out of service and asks
// for the notes left in each cassette (all of them before going on), then
// the notes loaded and a changed denomination; the core gets exactly what
// was typed; the report shows the difference, prints, and F8 puts the
// terminal back in service.
func TestSupervisorReplenish(t *testing.T) {
	b, h := supervisorOn(t)
	h.Key(key.NameF1)
	step(t, h, ui.ScreenReplenish)
	wantLabel(t, h, en("rep.count"))
	h.Type("1848")
	h.Key(key.NameReturn) // CASS1 counted; CASS2 selected
	step(t, h, ui.ScreenReplenish)
	h.Key(key.NameF8)
	step(t, h, ui.ScreenReplenish)
	wantLabel(t, h, en("rep.countall"))
	h.Type("12")
	h.Key(key.NameReturn)
	step(t, h, ui.ScreenReplenish)
	h.Key(key.NameF8)
	step(t, h, ui.ScreenReplenish)
	wantLabel(t, h, en("rep.load"))
	h.Type("2000")
	h.Key(key.NameReturn) // CASS1: 2000 notes; CASS2 selected
	step(t, h, ui.ScreenReplenish)
	h.Key(key.NameF5) // CASS2's denomination: 20.00
	h.Type("20")
	h.Key(key.NameReturn)
	step(t, h, ui.ScreenReplenish)
	h.Key(key.NameF2)
	h.Type("1500")
	h.Key(key.NameReturn)
	step(t, h, ui.ScreenReplenish)
	wantLabel(t, h, "▶ "+en("rep.loadline", "CASS1", "CNY 100.00", "2000"), en("rep.loadline", "CASS2", "CNY 20.00", "1500"))
	h.Key(key.NameF8)
	step(t, h, ui.ScreenReplenish)
	wantCalls(t, b, "OperatorLogin(1001)", "SetInService(1001, false)",
		"Replenish(1001, [{CASS1 1848} {CASS2 12}], [{CASS1 CNY 10000 2000} {CASS2 CNY 2000 1500}])")
	diff := en("rep.removedline", "CASS1  CNY 100.00", 1850, 1848, -2)
	wantLabel(t, h, diff, en("rep.loadedline", "CASS2  CNY 20.00", 1500))
	h.Key(key.NameF6)
	step(t, h, ui.ScreenReplenish)
	wantLabel(t, h, en("sup.printed"))
	if p := b.Printed(); len(p) != 1 || !slices.Contains(p[0], diff) {
		t.Fatalf("printed %q", p)
	}
	h.Key(key.NameF8)
	step(t, h, ui.ScreenSupervisor)
	wantCalls(t, b, "OperatorLogin(1001)", "SetInService(1001, false)",
		"Replenish(1001, [{CASS1 1848} {CASS2 12}], [{CASS1 CNY 10000 2000} {CASS2 CNY 2000 1500}])", "PrintReport", "SetInService(1001, true)")
}

// TestSupervisorSettle: a session in doubt is settled with the operator's
// count only after a confirmation; the list then says there is none.
func TestSupervisorSettle(t *testing.T) {
	b, h := supervisorOn(t)
	h.Key(key.NameF2)
	step(t, h, ui.ScreenInDoubt)
	h.Key(key.NameF8)
	step(t, h, ui.ScreenInDoubt)
	wantLabel(t, h, en("doubt.typepaid"))
	h.Type("300")
	h.Key(key.NameF8)
	step(t, h, ui.ScreenInDoubt)
	wantLabel(t, h, en("doubt.confirm", "9F3C5A7E", "CNY 300.00"), en("doubt.confirmbtn"))
	wantCalls(t, b, "OperatorLogin(1001)", "InDoubt")
	h.Key(key.NameF8)
	step(t, h, ui.ScreenInDoubt)
	wantLabel(t, h, en("doubt.none"), en("doubt.settled"))
	wantCalls(t, b, "OperatorLogin(1001)", "InDoubt", "Settle(1001, 9F3C5A7E0123456789ABCDEF01234567, 30000)", "InDoubt")
	h.Key(key.NameEscape)
	step(t, h, ui.ScreenSupervisor)
}

// TestSupervisorBalanceAndJournal: the balancing lists the differences
// and moves by day; the journal filters one session's entries.
func TestSupervisorBalanceAndJournal(t *testing.T) {
	b, h := supervisorOn(t)
	h.Key(key.NameF3)
	step(t, h, ui.ScreenBalance)
	wantLabel(t, h, en("bal.line", en("bal.net_debit"), "CNY 17,800.00", "CNY 18,000.00")+"  "+en("bal.diff", "CNY -200.00"))
	h.Key(key.NameF1)
	step(t, h, ui.ScreenBalance)
	wantLabel(t, h, en("bal.report", "ATM00042", "2025-03-13"))
	h.Key(key.NameF7)
	step(t, h, ui.ScreenSupervisor)
	h.Key(key.NameF4)
	step(t, h, ui.ScreenJournal)
	h.Key(key.NameF5) // only the selected entry's session
	step(t, h, ui.ScreenJournal)
	wantLabel(t, h, en("jr.daysession", "2025-03-14", "01234567"), en("jr.all"))
	wantCalls(t, b, "OperatorLogin(1001)", "Balance(1001, )", "Balance(1001, 2025-03-13)", "Journal(, , 10)", "Journal(, 01234567, 10)")
}

// TestSupervisorOutOfService: F5 takes the terminal out of service and
// back; during a customer's session the core refuses, and the screen
// says why.
func TestSupervisorOutOfService(t *testing.T) {
	b, h := supervisorOn(t)
	h.Key(key.NameF5)
	step(t, h, ui.ScreenSupervisor)
	step(t, h, ui.ScreenSupervisor) // the status read again
	wantLabel(t, h, en("super.outofservice", i18n.OutOfServiceReason(i18n.English, "maintenance")), en("sup.inservice"))
	h.Key(key.NameF5)
	step(t, h, ui.ScreenSupervisor)
	step(t, h, ui.ScreenSupervisor)
	wantLabel(t, h, en("super.inservice"), en("sup.outofservice"))
	if err := b.RequestWithdrawal(50000); err != nil {
		t.Fatal(err)
	}
	h.Key(key.NameF5)
	step(t, h, ui.ScreenSupervisor)
	wantLabel(t, h, en("sup.error", uifake.ErrBusy.Error()))
	wantCalls(t, b, "OperatorLogin(1001)", "SetInService(1001, false)", "SetInService(1001, true)", "RequestWithdrawal(50000)", "SetInService(1001, false)")
}

// TestSupervisorTestDevices: F6 tests every device and says how each did.
func TestSupervisorTestDevices(t *testing.T) {
	b, h := supervisorOn(t)
	b.PrintErr = errors.New("paper out")
	h.Key(key.NameF6)
	step(t, h, ui.ScreenSupervisor)
	wantLabel(t, h, en("sup.testline", "Cash dispenser", en("sup.testok")), en("sup.testline", "Receipt printer", en("sup.testfailed", "paper out")))
	wantCalls(t, b, "OperatorLogin(1001)", "TestDevices(1001)")
}
