package appliance_test

import (
	"slices"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

// TestE2EDispenserFaultReachesTheProxy: a dispenser that goes offline is
// an alarm at the proxy within seconds (0800/283), journaled, and its
// clearing too.
func TestE2EDispenserFaultReachesTheProxy(t *testing.T) {
	s := startSystem(t, nil)
	waitProxy := func(what string, ok func(proxysim.TerminalStatus) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second) // a watchdog: alarms are evaluated every 2 s
		for {
			st := s.proxy.Status("ATM00001")
			if ok(st) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the proxy never saw %s: %+v", what, st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitProxy("the first report", func(st proxysim.TerminalStatus) bool { return !st.Reported.IsZero() && len(st.Alarms) == 0 })
	start := time.Now()
	s.app.DispenserSim.SetFaults(dispensersim.Faults{Offline: true})
	waitProxy("the dispenser fault", func(st proxysim.TerminalStatus) bool {
		return slices.Equal(st.Alarms, []string{"dispenser_fault"})
	})
	t.Logf("dispenser fault at the proxy after %s", time.Since(start).Round(time.Millisecond))
	s.app.DispenserSim.SetFaults(dispensersim.Faults{})
	waitProxy("the fault cleared", func(st proxysim.TerminalStatus) bool { return st.Reported.After(start) && len(st.Alarms) == 0 })

	var got []string
	s.app.Store.View(func(tx *store.Tx) error {
		return tx.JournalRange(0, func(e store.Entry) error {
			if e.Kind == "ALARM RAISED" || e.Kind == "ALARM CLEARED" {
				got = append(got, e.Kind+" "+e.Text)
			}
			return nil
		})
	})
	if want := []string{"ALARM RAISED dispenser_fault", "ALARM CLEARED dispenser_fault"}; !slices.Equal(got, want) {
		t.Fatalf("journal %q, want %q", got, want)
	}
}
