package appliance_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gioui.org/io/key"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/uitest"
)

// TestUIFlowSupervisor: an operator logged in on the kiosk balances the
// day against the host (one withdrawal each side), replenishes (the
// counts of the removed cassettes, 100 notes loaded in each), puts the
// terminal back in service, and finds the replenishment in the journal;
// every step goes through the real core, store and host link.
func TestUIFlowSupervisor(t *testing.T) {
	exportDir := t.TempDir()
	s := startSystem(t, func(c *appliance.Config) {
		kioskScreen(c)
		c.Journal.ExportDir = exportDir
	})
	if out := s.withdraw(s.qr(50000), zhang, "123456"); !out.PaidInFull() {
		t.Fatalf("withdrawal %+v", out)
	}
	s.settled()
	s.dismiss()
	en := func(k i18n.Key, args ...any) string { return i18n.T(i18n.English, k, args...) }
	money := func(v int64) string { return i18n.Amount(i18n.English, v, "CNY", 2) }

	d := uiDriver(t, s)
	uiStep(t, d, ui.ScreenWelcome)
	operatorLogin(t, s, d)

	// The day's balancing: the host's 0510 agrees with the terminal.
	d.Key(key.NameF3)
	uiStep(t, d, ui.ScreenBalance)
	day := s.app.Core.Day(s.app.Clock.Now())
	waitLabel(t, d, en("bal.report", s.app.Config.TerminalID, day))
	wantLabels(t, d, en("bal.line", en("bal.approved_count"), "1", "1"), en("bal.line", en("bal.approved_amount"), money(50000), money(50000)))
	d.Key(key.NameF7)
	uiStep(t, d, ui.ScreenSupervisor)

	// Replenishment: count what the counters say is left, load 100 each.
	var units []store.UnitCounters
	if err := s.app.Store.View(func(tx *store.Tx) (err error) { units, err = tx.UnitCounters(); return err }); err != nil {
		t.Fatal(err)
	}
	d.Key(key.NameF1)
	uiStep(t, d, ui.ScreenReplenish)
	waitLabel(t, d, en("rep.count"))
	for _, u := range units {
		d.Type(fmt.Sprint(u.Remaining))
		d.Key(key.NameReturn)
		uiStep(t, d, ui.ScreenReplenish)
	}
	d.Key(key.NameF8)
	uiStep(t, d, ui.ScreenReplenish)
	waitLabel(t, d, en("rep.load"))
	for range units {
		d.Type("100")
		d.Key(key.NameReturn)
		uiStep(t, d, ui.ScreenReplenish)
	}
	d.Key(key.NameF8)
	u0 := units[0]
	waitLabel(t, d, en("rep.removedline", u0.UnitID+"  "+money(u0.Denomination), u0.Remaining, u0.Remaining, 0))
	if v := s.app.Core.View(); v.InService {
		t.Fatal("in service during the replenishment")
	}
	var after []store.UnitCounters
	s.app.Store.View(func(tx *store.Tx) (err error) { after, err = tx.UnitCounters(); return err })
	for _, u := range after {
		if u.Remaining != 100 || u.Dispensed != 0 {
			t.Fatalf("counters after the replenishment: %+v", after)
		}
	}
	// The report is exported beside the journal, as the screen says.
	files, _ := filepath.Glob(filepath.Join(exportDir, s.app.Config.TerminalID+"-replenishment-*.json"))
	if len(files) != 1 {
		t.Fatalf("exported reports %q", files)
	}
	wantLabels(t, d, "report exported: "+filepath.Base(files[0]))
	var exported atm.ReplenishmentReport
	if b, err := os.ReadFile(files[0]); err != nil || json.Unmarshal(b, &exported) != nil || exported.Operator != "1001" || len(exported.Removed) != len(units) {
		t.Fatalf("exported report %+v (%v)", exported, err)
	}
	d.Key(key.NameF8) // back in service
	uiStep(t, d, ui.ScreenSupervisor)
	s.waitFor("in service", func(st appliance.Status) bool { return st.InService })

	// The journal screen shows today's entries, the return to service among them.
	d.Key(key.NameF4)
	uiStep(t, d, ui.ScreenJournal)
	waitLabel(t, d, en("jr.day", day))
	labels := d.Labels()
	if !slices.ContainsFunc(labels, func(l string) bool { return strings.HasSuffix(l, "  "+i18n.JournalKind(i18n.English, "IN SERVICE")) }) {
		t.Fatalf("the journal screen does not show the return to service: %q", labels)
	}
	s.wantJournal("REPLENISHED")

	// The device test resets the dispenser (journaled) and says it passed.
	d.Key(key.NameF7)
	uiStep(t, d, ui.ScreenSupervisor)
	d.Key(key.NameF6)
	waitLabel(t, d, en("sup.testline", "Cash dispenser", en("sup.testok")))
	s.wantJournal("DISPENSER RESET")
}

// operatorLogin logs operator 1001 in on the kiosk's PIN pad and waits
// for the supervisor screen.
func operatorLogin(t *testing.T, s *system, d *uitest.Driver) {
	t.Helper()
	if err := s.app.Operators.Add("1001", "271828"); err != nil {
		t.Fatal(err)
	}
	d.Key(key.NameF12)
	uiStep(t, d, ui.ScreenOperatorLogin)
	d.Type("1001")
	d.Key(key.NameReturn)
	d.Type("271828")
	d.Key(key.NameReturn)
	uiStep(t, d, ui.ScreenSupervisor)
	waitLabel(t, d, i18n.T(i18n.English, "sup.balance")) // the menu, once the status is read
}

// TestUIFlowSettle: after a dispense whose count is unknown, the customer
// sees what happens to their account, and an operator on the kiosk
// settles the session with the count (confirmed twice): the host is
// debited exactly that, and nothing is in doubt any more.
func TestUIFlowSettle(t *testing.T) {
	s := startSystem(t, func(c *appliance.Config) {
		kioskScreen(c)
		c.Dispenser.Sim.Faults = appliance.SimFaults{CountUnknown: true}
	})
	before := s.balance(zhang)
	d := uiDriver(t, s)
	uiStep(t, d, ui.ScreenWelcome)
	s.withdraw(s.qr(50000), zhang, "123456")
	uiStep(t, d, ui.ScreenFailed)
	sess := s.app.Core.View().Session
	en := func(k i18n.Key, args ...any) string { return i18n.T(i18n.English, k, args...) }
	wantLabels(t, d, en("account.checking"), en("ref.rrn", sess.RRN))
	operatorLogin(t, s, d)
	d.Key(key.NameF2)
	uiStep(t, d, ui.ScreenInDoubt)
	waitLabel(t, d, en("doubt.help"))
	d.Type("300")
	d.Key(key.NameF8)
	waitLabel(t, d, en("doubt.confirm", sess.ID[:8], "CNY 300.00"))
	d.Key(key.NameF8)
	waitLabel(t, d, en("doubt.none"))
	if list, err := s.app.Core.InDoubt(); err != nil || len(list) != 0 {
		t.Fatalf("still in doubt: %v %v", list, err)
	}
	s.settled()
	if got := s.balance(zhang); got != before-30000 {
		t.Fatalf("balance %d, want %d: the operator's count debited", got, before-30000)
	}
	s.wantJournal("OPERATOR SETTLED")
}

// waitLabel frames the UI until it shows want (its calls to the core run
// off the window's goroutine).
func waitLabel(t *testing.T, d *uitest.Driver, want string) {
	t.Helper()
	if err := d.WaitFor(uiWait, func(d *uitest.Driver) bool { return slices.Contains(d.Labels(), want) }); err != nil {
		t.Fatalf("%q never shown: %v; shown: %q", want, err, d.Labels())
	}
}
