package xfs4iot_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/xfs4iot"
)

// signed builds a response token for nonce as a device would.
func signed(key []byte, nonce, fields string) string {
	n := 0
	for {
		body := fmt.Sprintf("NONCE=%s,TOKENFORMAT=1,TOKENLENGTH=%04d,%s,HMACSHA256=", nonce, n, fields)
		if len(body)+64 == n {
			m := hmac.New(sha256.New, key)
			m.Write([]byte(body))
			return body + strings.ToUpper(hex.EncodeToString(m.Sum(nil)))
		}
		n = len(body) + 64
	}
}

const dispenseID = "99A437DCF19F3D041BF6F632227D5248E299A5B9376BEAA3608BD0D8E7136002"

// deviceAfterPresent is a cash dispenser that presented CST1:2 and signs
// that; its Common.Status is statusPayload.
func deviceAfterPresent(t *testing.T, statusPayload string, extra map[string][]string) *fakeService {
	script := map[string][]string{
		"Common.Capabilities": {ack("Common.Capabilities"), done("Common.Capabilities", "success", cashCaps)},
		"Common.Status":       {ack("Common.Status"), done("Common.Status", "success", statusPayload)},
		"Storage.GetStorage":  {ack("Storage.GetStorage"), done("Storage.GetStorage", "success", storage)},
	}
	for k, v := range extra {
		script[k] = v
	}
	f := newFakeService(t, map[string]map[string][]string{
		publisherPath:                     {"ServicePublisher.GetServices": {ack("ServicePublisher.GetServices"), done("ServicePublisher.GetServices", "success", services("/CashDispenser1"))}},
		publisherPath + "/CashDispenser1": script,
	})
	f.respond = func(name string, payload json.RawMessage) ([]string, bool) {
		if name != "CashDispenser.GetPresentStatus" {
			return nil, false
		}
		var p struct {
			Nonce string `json:"nonce"`
		}
		json.Unmarshal(payload, &p)
		body := `{"denomination":{"currencies":{"CNY":200.00},"values":{"unit1":2}},"presentState":"presented"`
		if p.Nonce != "" {
			body += `,"token":"` + signed(testKey, p.Nonce, "DISPENSEID="+dispenseID+",DISPENSED1=200.00CNY,PRESENTED1=YES,PRESENTEDAMOUNT1=200.00CNY,RETRACTED1=NO") + `"`
		}
		return []string{ack(name), done(name, "success", body+"}")}, true
	}
	return f
}

func keyedDriver(t *testing.T, f *fakeService) *xfs4iot.Driver {
	t.Helper()
	d, err := xfs4iot.New(xfs4iot.Config{Publisher: f.url(publisherPath), Exponent: 2, ResponseKey: testKey, CommandTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestTakenOnlyWhenTheExitSaysEmpty: presented notes count as taken only
// when the device says the exit is empty; a status that does not say so
// leaves them presented (recovery retracts).
func TestTakenOnlyWhenTheExitSaysEmpty(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         dispenser.PresentState
	}{
		{"exit empty", `{"common":{"device":"online"},"cashDispenser":{"intermediateStacker":"empty","positions":[{"position":"outDefault","positionStatus":"empty"}]}}`, dispenser.PresentTaken},
		{"exit not empty", `{"common":{"device":"online"},"cashDispenser":{"intermediateStacker":"empty","positions":[{"position":"outDefault","positionStatus":"notEmpty"}]}}`, dispenser.PresentPresented},
		{"no cash dispenser status", `{"common":{"device":"online"}}`, dispenser.PresentPresented},
		{"exit status unknown", `{"common":{"device":"online"},"cashDispenser":{"positions":[{"position":"outDefault","positionStatus":"unknown"}]}}`, dispenser.PresentPresented},
		{"another position", `{"common":{"device":"online"},"cashDispenser":{"positions":[{"position":"outCenter","positionStatus":"empty"}]}}`, dispenser.PresentPresented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := keyedDriver(t, deviceAfterPresent(t, tc.status, nil))
			ps, err := d.PresentStatus(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if ps.State != tc.want || ps.Taken != (tc.want == dispenser.PresentTaken) || ps.PresentedAmount != 20000 || ps.DispenseID != dispenseID {
				t.Fatalf("present status %+v, want %s", ps, tc.want)
			}
			if ps.Seq == 0 || ps.Seq >= 1<<62 {
				t.Fatalf("seq %d: must be 1..2^62-1", ps.Seq)
			}
		})
	}
}

// TestRetractNoItemsNeedsAPresentation: "no items" means taken only after
// the device presented the notes; a retract after a retract confirmed by
// the signed status returns what was taken back; one the device signs as
// partial is an error.
func TestRetractOutcomes(t *testing.T) {
	noItems := []string{ack("CashManagement.Retract"), `{"header":{"name":"CashManagement.Retract","requestId":{{id}},"type":"completion","version":"2.0","completionCode":"commandErrorCode"},"payload":{"errorCode":"noItems"}}`}
	t.Run("no items after a presentation", func(t *testing.T) {
		d := keyedDriver(t, deviceAfterPresent(t, `{"common":{"device":"online"}}`, map[string][]string{"CashManagement.Retract": noItems}))
		if _, err := d.Retract(context.Background()); !errors.Is(err, dispenser.ErrNoItems) {
			t.Fatalf("Retract: %v, want ErrNoItems", err)
		}
	})
	t.Run("no items, never presented", func(t *testing.T) {
		f := deviceAfterPresent(t, `{"common":{"device":"online"}}`, map[string][]string{"CashManagement.Retract": noItems})
		f.respond = func(name string, _ json.RawMessage) ([]string, bool) {
			if name != "CashDispenser.GetPresentStatus" {
				return nil, false
			}
			return []string{ack(name), done(name, "success", `{"denomination":{"currencies":{"CNY":200.00},"values":{"unit1":2}},"presentState":"notPresented"}`)}, true
		}
		d := keyedDriver(t, f)
		_, err := d.Retract(context.Background())
		if err == nil || errors.Is(err, dispenser.ErrNoItems) {
			t.Fatalf("Retract: %v, want an error that is not ErrNoItems", err)
		}
	})
	t.Run("retract the device signs as short", func(t *testing.T) {
		// The device signs RETRACTED1=NO after a retract that "succeeded".
		d := keyedDriver(t, deviceAfterPresent(t, `{"common":{"device":"online"},"cashDispenser":{"positions":[{"position":"outDefault","positionStatus":"empty"}]}}`,
			map[string][]string{"CashManagement.Retract": {ack("CashManagement.Retract"), done("CashManagement.Retract", "success", "null")}}))
		_, err := d.Retract(context.Background())
		if err == nil || !strings.Contains(err.Error(), "the customer may have taken some") {
			t.Fatalf("Retract: %v", err)
		}
	})
}

// TestDispenseOutcomesThatMayHaveMoved: completions that do not prove
// nothing moved are "count unknown", never a refusal.
func TestDispenseOutcomesThatMayHaveMoved(t *testing.T) {
	dispenseDone := func(code, payload string) string {
		return `{"header":{"name":"CashDispenser.Dispense","requestId":{{id}},"type":"completion","version":"2.0","completionCode":"` + code + `"},"payload":` + payload + `}`
	}
	event := `{"header":{"name":"CashDispenser.IncompleteDispenseEvent","requestId":{{id}},"type":"event","version":"2.0"},"payload":{"currencies":{"CNY":100.00},"values":{"unit1":1}}}`
	nullEvent := `{"header":{"name":"CashDispenser.IncompleteDispenseEvent","requestId":{{id}},"type":"event","version":"2.0"},"payload":null}`
	for _, tc := range []struct {
		name    string
		answers []string
		unknown bool
		want    error
	}{
		{"userError", []string{ack("CashDispenser.Dispense"), dispenseDone("userError", "null")}, true, nil},
		{"fraudAttempt", []string{ack("CashDispenser.Dispense"), dispenseDone("fraudAttempt", "null")}, true, nil},
		{"cashUnitError without a count", []string{ack("CashDispenser.Dispense"), dispenseDone("commandErrorCode", `{"errorCode":"cashUnitError"}`)}, true, nil},
		{"unknown error code", []string{ack("CashDispenser.Dispense"), dispenseDone("commandErrorCode", `{"errorCode":"somethingNew"}`)}, true, nil},
		{"hardwareError with only an event", []string{ack("CashDispenser.Dispense"), event, dispenseDone("hardwareError", "null")}, true, nil},
		{"null event then short", []string{ack("CashDispenser.Dispense"), nullEvent, dispenseDone("commandErrorCode", `{"errorCode":"cashUnitError"}`)}, true, nil},
		{"acknowledge with an unknown status", []string{`{"header":{"name":"CashDispenser.Dispense","requestId":{{id}},"type":"acknowledge","version":"2.0","status":""},"payload":null}`}, true, nil},
		{"token refused", []string{ack("CashDispenser.Dispense"), dispenseDone("invalidTokenHMAC", "null")}, false, dispenser.ErrInvalidTokenHMAC},
		{"not dispensable", []string{ack("CashDispenser.Dispense"), dispenseDone("commandErrorCode", `{"errorCode":"notDispensable"}`)}, false, dispenser.ErrNotDispensable},
		{"refused by the acknowledge", []string{`{"header":{"name":"CashDispenser.Dispense","requestId":{{id}},"type":"acknowledge","version":"2.0","status":"tooManyRequests"},"payload":null}`}, false, dispenser.ErrDeviceNotReady},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := deviceAfterPresent(t, `{"common":{"device":"online"}}`, map[string][]string{
				"CashDispenser.Dispense":   tc.answers,
				"Common.ClearCommandNonce": {ack("Common.ClearCommandNonce"), done("Common.ClearCommandNonce", "success", "null")},
			})
			d := keyedDriver(t, f)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := d.Dispense(ctx, dispenser.Mix{"CST1": 1}, "NONCE=X")
			var de *dispenser.DispenseError
			if tc.unknown {
				if !errors.As(err, &de) || de.CountKnown || !errors.Is(err, dispenser.ErrCountUnknown) {
					t.Fatalf("Dispense: %v, want count unknown", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || errors.Is(err, dispenser.ErrCountUnknown) {
				t.Fatalf("Dispense: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestEventDuringDiscovery: an unsolicited event that arrives while the
// driver is still connecting does not stall it.
func TestEventDuringDiscovery(t *testing.T) {
	taken := `{"header":{"name":"CashManagement.ItemsTakenEvent","type":"unsolicited","version":"2.0"},"payload":{"position":"outDefault"}}`
	f := deviceAfterPresent(t, `{"common":{"device":"online"}}`, map[string][]string{
		"Common.Capabilities": {ack("Common.Capabilities"), taken, done("Common.Capabilities", "success", cashCaps)},
	})
	d := keyedDriver(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second) // the command timeout is 5 s
	defer cancel()
	if _, err := d.Status(ctx); err != nil {
		t.Fatalf("Status: %v", err)
	}
}
