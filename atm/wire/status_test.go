package wire

import (
	"slices"
	"testing"
)

func TestAlarmsRoundTrip(t *testing.T) {
	s, err := FormatAlarms([]string{"dispenser_fault", "cash_low:CST2", "cash_low:CST2", "host_down"})
	if err != nil || s != "ALARMS=cash_low:CST2,dispenser_fault,host_down" {
		t.Fatalf("FormatAlarms: %q %v", s, err)
	}
	got, err := ParseAlarms(s)
	if err != nil || !slices.Equal(got, []string{"cash_low:CST2", "dispenser_fault", "host_down"}) {
		t.Fatalf("ParseAlarms: %q %v", got, err)
	}
	if s, _ := FormatAlarms(nil); s != "ALARMS=" {
		t.Fatalf("no alarms: %q", s)
	}
	for _, bad := range []string{"", "ALARMS=b,a", "ALARMS=a,a", "ALARMS=A", "ALARMS=x;y", "ALARMS=cash_low:", "STATUS=1"} {
		if _, err := ParseAlarms(bad); err == nil {
			t.Errorf("ParseAlarms(%q) accepted", bad)
		}
	}
	if _, err := FormatAlarms([]string{"bad name"}); err == nil {
		t.Error("FormatAlarms accepted a bad name")
	}
}

func FuzzParseAlarms(f *testing.F) {
	f.Add("ALARMS=cash_low:CST2,dispenser_fault")
	f.Add("ALARMS=")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAlarms(s)
		if err != nil {
			return
		}
		again, err := FormatAlarms(a)
		if err != nil || again != s {
			t.Fatalf("%q parsed as %q, formats as %q (%v)", s, a, again, err)
		}
	})
}
