package appliance_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cardless-atm/cardless/atm/appliance"
)

// TestE2EMetrics: after a paid and a declined withdrawal, /metrics says
// so exactly, with the links, the cassettes and the journal, and
// promtool (where installed) accepts the exposition.
func TestE2EMetrics(t *testing.T) {
	s := startSystem(t, nil)
	if out := s.withdraw(s.qr(30000), zhang, "123456"); out.ResponseCode != "00" {
		t.Fatalf("outcome %+v", out)
	}
	s.settled()
	s.dismiss()
	s.waitFor("idle", func(st appliance.Status) bool { return st.InService && st.Session == nil })
	if out := s.withdraw(s.qr(30000), zhang, "000000"); out.ResponseCode != "55" {
		t.Fatalf("wrong PIN outcome %+v", out)
	}
	s.settled()

	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.app.ServeControl(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a.String() }) }()
	t.Cleanup(func() { cancel(); <-done })
	resp, err := http.Get("http://" + <-addrc + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels ...string) float64 {
		t.Helper()
		f, ok := families[name]
		if !ok {
			t.Fatalf("no metric %s", name)
		}
	next:
		for _, m := range f.Metric {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.Label {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"cardless_atm_withdrawals_total", []string{"outcome", "completed", "rc", "00"}, 1},
		{"cardless_atm_withdrawals_total", []string{"outcome", "declined", "rc", "55"}, 1},
		{"cardless_atm_command_to_presented_seconds", nil, 1},
		{"cardless_atm_link_up", []string{"link", "host"}, 1},
		{"cardless_atm_link_up", []string{"link", "proxy"}, 1},
		{"cardless_atm_in_service", nil, 1},
		{"cardless_atm_saf_pending", nil, 0},
		{"cardless_atm_sessions_in_doubt", nil, 0},
		{"cardless_atm_dispenser_state", []string{"state", "online"}, 1},
		{"cardless_atm_cash_unit_notes", []string{"unit", "CST1", "denomination", "100.00", "currency", "CNY"}, 497},
		{"cardless_atm_cash_unit_status", []string{"unit", "CST1", "status", "ok"}, 1},
		{"cardless_atm_journal_verified", nil, 1},
	} {
		if got := value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if n := value("cardless_atm_journal_entries"); n < 10 {
		t.Errorf("journal entries %v", n)
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed: exposition format not checked by it")
	}
	if strings.Contains(string(body), zhang) {
		t.Fatal("a customer ID in the metrics")
	}
}
