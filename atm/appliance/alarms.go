package appliance

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/proxyclient"
)

// Alarm evaluation.
const (
	// AlarmEvery is how often the alarms are evaluated.
	AlarmEvery = 2 * time.Second
	// LinkAlarmAfter: a link down this long raises proxy_down or
	// host_down (a reconnect or an echo gap is not an alarm).
	LinkAlarmAfter = time.Minute
)

// alarmer raises and clears the appliance's alarms from its state:
//
//	dispenser_fault       the dispenser is not online, or cannot be read
//	cash_low:UNIT         a cassette is low
//	cash_empty:UNIT       a cassette is empty (or inoperative)
//	proxy_down, host_down the link has been down for LinkAlarmAfter
//	session_in_doubt      a session waits for an operator's count
//	host_rejected         the host refused a queued advice or reversal
//	storage               the store failed, or its disk is nearly full
//	journal               the electronic journal fails its verification
//	printer_offline, printer_paper_out, printer_paper_low
//	                      the receipt printer (when there is one)
//
// Each change is journaled (ALARM RAISED, ALARM CLEARED) and logged, the
// standing alarms are counted in the metrics, and the whole set is pushed
// to the proxy (0800/283) whenever it changes, so the bank's operations
// centre sees every terminal's state. It runs on its own goroutine.
type alarmer struct {
	a   *Appliance
	clk clock.Clock
	log *slog.Logger

	mu        sync.Mutex
	active    map[string]bool
	downSince map[string]time.Time
	reported  []string // the set the proxy last accepted (or will get at sign-on)
	sent      bool
	started   time.Time // the first evaluation
}

// deviceGrace: before the dispenser's status was first read, an unread
// status is not yet a fault.
const deviceGrace = 30 * time.Second

func newAlarmer(a *Appliance) *alarmer {
	return &alarmer{a: a, clk: a.Clock, log: a.Log.With("part", "alarms"), active: map[string]bool{}, downSince: map[string]time.Time{}}
}

// Active returns the standing alarms, sorted.
func (x *alarmer) Active() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Sorted(maps.Keys(x.active))
}

func (x *alarmer) run(ctx context.Context) {
	tick := x.clk.NewTicker(AlarmEvery)
	defer tick.Stop()
	for {
		x.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
		}
	}
}

// evaluate returns the alarms standing now.
func (x *alarmer) evaluate() map[string]bool {
	a := x.a
	now := x.clk.Now()
	x.mu.Lock()
	if x.started.IsZero() {
		x.started = now
	}
	starting := now.Sub(x.started) < deviceGrace
	x.mu.Unlock()
	on := map[string]bool{}
	st, ok := a.Core.DispenserStatus()
	switch {
	case !ok && starting:
	case !ok || st.Device != dispenser.StateOnline:
		on["dispenser_fault"] = true
	default:
		for _, u := range st.Units {
			switch u.Status {
			case dispenser.UnitLow:
				on["cash_low:"+u.ID] = true
			case dispenser.UnitEmpty, dispenser.UnitInoperative:
				on["cash_empty:"+u.ID] = true
			}
		}
	}
	l := a.Links()
	for name, up := range map[string]bool{"proxy_down": l.ProxyUp(), "host_down": l.HostUp()} {
		x.mu.Lock()
		if up {
			delete(x.downSince, name)
		} else if _, ok := x.downSince[name]; !ok {
			x.downSince[name] = now
		}
		since, down := x.downSince[name]
		x.mu.Unlock()
		if down && now.Sub(since) >= LinkAlarmAfter {
			on[name] = true
		}
	}
	if s, err := a.Core.InDoubt(); err != nil || len(s) > 0 {
		on["session_in_doubt"] = true
	}
	if n, err := a.Core.RejectedSAF(); err != nil || n > 0 {
		on["host_rejected"] = true
	}
	if r := a.Core.View().Reason; r == "storage" || r == "disk_low" {
		on["storage"] = true
	}
	if a.journal != nil && a.journal.Alarm() != "" {
		on["journal"] = true
	}
	if a.printer != nil {
		switch st, ok := a.printer.status(); {
		case !ok && starting:
		case !ok || !st.Online:
			on["printer_offline"] = true
		case st.PaperOut:
			on["printer_paper_out"] = true
		case st.PaperLow:
			on["printer_paper_low"] = true
		}
	}
	return on
}

// step evaluates, records the changes and tells the proxy.
func (x *alarmer) step(ctx context.Context) {
	on := x.evaluate()
	x.mu.Lock()
	var raised, cleared []string
	for name := range on {
		if !x.active[name] {
			raised = append(raised, name)
		}
	}
	for name := range x.active {
		if !on[name] {
			cleared = append(cleared, name)
		}
	}
	x.mu.Unlock()
	slices.Sort(raised)
	slices.Sort(cleared)
	if len(raised)+len(cleared) > 0 {
		err := x.a.Store.UpdateLabeled("alarms", func(tx *store.Tx) error {
			for _, name := range raised {
				if _, err := tx.AppendJournal(store.Entry{Kind: "ALARM RAISED", Text: name, Data: map[string]string{"alarm": name}}); err != nil {
					return err
				}
			}
			for _, name := range cleared {
				if _, err := tx.AppendJournal(store.Entry{Kind: "ALARM CLEARED", Text: name, Data: map[string]string{"alarm": name}}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			// Not recorded: the change is tried again next time.
			x.log.Error("alarms not journaled", "raised", raised, "cleared", cleared, "err", err)
			return
		}
		x.mu.Lock()
		x.active = on
		x.mu.Unlock()
		for _, name := range raised {
			x.log.Error("ALARM raised", "alarm", name)
			if x.a.metrics != nil {
				x.a.metrics.alarmsRaised.WithLabelValues(alarmKind(name)).Inc()
			}
		}
		for _, name := range cleared {
			x.log.Info("alarm cleared", "alarm", name)
		}
	}
	x.report(ctx)
}

// report pushes the standing set to the proxy when it differs from what
// the proxy has.
func (x *alarmer) report(ctx context.Context) {
	set := x.Active()
	x.mu.Lock()
	same := x.sent && slices.Equal(set, x.reported)
	x.mu.Unlock()
	if same || x.a.Proxy == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := x.a.Proxy.ReportAlarms(ctx, set)
	if err != nil && !errors.Is(err, proxyclient.ErrNotSignedOn) {
		x.log.Warn("the proxy was not told the alarms; trying again", "err", err)
		return
	}
	// Told now, or remembered for the next sign-on.
	x.mu.Lock()
	x.reported, x.sent = set, true
	x.mu.Unlock()
}

// alarmKind is an alarm's name without its unit (the metric label).
func alarmKind(name string) string {
	kind, _, _ := strings.Cut(name, ":")
	return kind
}
