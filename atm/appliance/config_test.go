package appliance

import (
	"os"
	"strings"
	"testing"
)

func TestShippedConfigLoads(t *testing.T) {
	if _, err := Load("../../configs/atm.json"); err != nil {
		t.Fatal(err)
	}
}

func TestValidateNamesEveryBadValue(t *testing.T) {
	b, err := os.ReadFile("../../configs/atm.json")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, r := range [][2]string{
		{`"terminalId": "ATM00001"`, `"terminalId": "atm-1"`},
		{`"currency": "156"`, `"currency": "CNY"`},
		{`"sessionTtl": "120s"`, `"sessionTtl": "2s"`},
		{`"maxNotes": 40`, `"maxNotes": 0`},
		{`"mode": "headless"`, `"mode": "fancy"`},
		{`"addr": "127.0.0.1:6200"`, `"addr": "nowhere"`},
		{`"logLevel": "info"`, `"logLevel": "chatty"`},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("config lacks %s", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	_, err = Parse([]byte(s))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, field := range []string{"terminalId", "currency:", "sessionTtl", "dispenser.sim.maxNotes", "screen.mode", "proxy.addr", "logLevel"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s:\n%v", field, err)
		}
	}
	if _, err := Parse([]byte(`{"terminalId":"A","bogus":1}`)); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown field: %v", err)
	}
}
