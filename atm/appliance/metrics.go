package appliance

import (
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/store"
)

// metrics are the appliance's Prometheus metrics, served as GET /metrics
// on the loopback control listener (docs/control.md lists them). Counters
// are fed by the core's Observer as sessions commit; the rest is read
// when scraped.
type metrics struct {
	reg          *prometheus.Registry
	withdrawals  *prometheus.CounterVec
	presented    prometheus.Histogram
	alarmsRaised *prometheus.CounterVec
}

func newMetrics(a *Appliance) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		withdrawals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardless_atm_withdrawals_total",
			Help: "Withdrawal sessions ended, by final state and host response code (none: never authorized).",
		}, []string{"outcome", "rc"}),
		presented: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cardless_atm_command_to_presented_seconds",
			Help:    "Time from the dispense command's acceptance (authorization request) to the notes presented.",
			Buckets: []float64{0.5, 1, 2, 3, 5, 8, 13, 21, 34},
		}),
	}
	m.alarmsRaised = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cardless_atm_alarms_raised_total",
		Help: "Alarms raised, by kind (the unit is not a label).",
	}, []string{"alarm"})
	m.reg.MustRegister(m.withdrawals, m.presented, m.alarmsRaised, &stateCollector{a: a},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe is the core's Observer: it runs on the session's goroutine and
// only updates counters.
func (m *metrics) observe(s atm.Session) {
	switch {
	case s.State == atm.StateAwaitingTake && !s.HostTime.IsZero():
		m.presented.Observe(s.Updated.Sub(s.HostTime).Seconds())
	case s.State.Terminal():
		rc := s.ResponseCode
		if rc == "" {
			rc = "none"
		}
		m.withdrawals.WithLabelValues(strings.ToLower(s.State.String()), rc).Inc()
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// stateCollector reads the appliance's state at each scrape.
type stateCollector struct{ a *Appliance }

var (
	descInService = prometheus.NewDesc("cardless_atm_in_service", "1 while the terminal takes customers.", nil, nil)
	descLinkUp    = prometheus.NewDesc("cardless_atm_link_up", "1 while the link is up (proxy: signed on; host: connected).", []string{"link"}, nil)
	descSAF       = prometheus.NewDesc("cardless_atm_saf_pending", "Advices and reversals waiting for the host's acknowledgement.", nil, nil)
	descInDoubt   = prometheus.NewDesc("cardless_atm_sessions_in_doubt", "Sessions waiting for an operator's count.", nil, nil)
	descDevice    = prometheus.NewDesc("cardless_atm_dispenser_state", "1 for the dispenser's state as last read (online, offline, hardwareError, ...).", []string{"state"}, nil)
	descNotes     = prometheus.NewDesc("cardless_atm_cash_unit_notes", "Notes in each cash unit as the dispenser reports them.", []string{"unit", "denomination", "currency"}, nil)
	descUnit      = prometheus.NewDesc("cardless_atm_cash_unit_status", "1 for each cash unit's status (ok, low, empty, inoperative).", []string{"unit", "status"}, nil)
	descJournal   = prometheus.NewDesc("cardless_atm_journal_entries", "Sequence number of the newest electronic journal entry.", nil, nil)
	descJournalOK = prometheus.NewDesc("cardless_atm_journal_verified", "0 while the electronic journal fails its verification, else 1.", nil, nil)
	descStoreSize = prometheus.NewDesc("cardless_atm_store_file_bytes", "Size of the store file (atm.db).", nil, nil)
	descAlarm     = prometheus.NewDesc("cardless_atm_alarm_active", "1 for each standing alarm.", []string{"alarm"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInService, descLinkUp, descSAF, descInDoubt, descDevice, descNotes, descUnit, descJournal, descJournalOK, descStoreSize, descAlarm} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge(descInService, b2f(a.Core.View().InService))
	l := a.Links()
	gauge(descLinkUp, b2f(l.ProxyUp()), "proxy")
	gauge(descLinkUp, b2f(l.HostUp()), "host")
	if n, err := a.Core.PendingSAF(); err == nil {
		gauge(descSAF, float64(n))
	}
	if s, err := a.Core.InDoubt(); err == nil {
		gauge(descInDoubt, float64(len(s)))
	}
	if st, ok := a.Core.DispenserStatus(); ok {
		gauge(descDevice, 1, st.Device.String())
		for _, u := range st.Units {
			gauge(descNotes, float64(u.Count), u.ID, dispenser.FormatAmount(u.Denomination, a.Config.Exponent), u.Currency)
			gauge(descUnit, 1, u.ID, u.Status.String())
		}
	} else {
		gauge(descDevice, 1, "unknown")
	}
	var seq uint64
	if err := a.Store.View(func(tx *store.Tx) (err error) { seq, err = tx.JournalSeq(); return err }); err == nil {
		gauge(descJournal, float64(seq))
	}
	gauge(descJournalOK, b2f(a.journal == nil || a.journal.Alarm() == ""))
	if fi, err := os.Stat(a.Store.Path()); err == nil {
		gauge(descStoreSize, float64(fi.Size()))
	}
	if a.alarms != nil {
		for _, name := range a.alarms.Active() {
			gauge(descAlarm, 1, name)
		}
	}
}
