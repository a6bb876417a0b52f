package xfs4iotsim

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
)

func TestGetServices(t *testing.T) {
	r := newRig(t, nil)
	c := dial(t, r.srv.PublisherURL())
	ms := c.command("ServicePublisher.GetServices", 1, "")
	wantKinds(t, ms, "acknowledge ServicePublisher.GetServices", "completion ServicePublisher.GetServices")
	jsonEqual(t, ms[0].raw, `{"header":{"name":"ServicePublisher.GetServices","requestId":1,"type":"acknowledge","version":"2.0"},"payload":null}`)
	jsonEqual(t, ms[1].raw, `{"header":{"name":"ServicePublisher.GetServices","requestId":1,"type":"completion","version":"2.0","completionCode":"success"},"payload":{"vendorName":"cardless xfs4iotsim","services":[{"serviceURI":"`+r.srv.ServiceURL()+`"}]}}`)
	// The publisher serves nothing else.
	ms = c.command("Common.Status", 2, "")
	wantKinds(t, ms, "acknowledge Common.Status", "completion Common.Status")
	completion(t, ms, "unsupportedCommand", "null")
}

// TestStrictness: each refusal, with the exact acknowledge.
func TestStrictness(t *testing.T) {
	r := newRig(t, nil)
	c := r.service()
	ack := func(name string, id string, status string) string {
		h := `"type":"acknowledge","version":"2.0","status":"` + status + `"`
		if id != "" {
			h = `"requestId":` + id + `,` + h
		}
		if name != "" {
			h = `"name":"` + name + `",` + h
		}
		return `{"header":{` + h + `},"payload":null}`
	}
	cases := []struct{ in, want string }{
		{`{`, ack("", "", "invalidMessage")},
		{`[]`, ack("", "", "invalidMessage")},
		{`null`, ack("", "", "invalidMessage")},
		{`{"payload":null}`, ack("", "", "invalidMessage")},
		{`{"header":{"name":"Common.Status","requestId":7,"type":"command","version":"2.0"},"payload":null,"extra":1}`, ack("Common.Status", "7", "invalidMessage")},
		{`{"header":{"name":"Common.Status","requestId":7,"type":"command","version":"2.0","colour":"red"},"payload":null}`, ack("Common.Status", "7", "invalidMessage")},
		{`{"header":{"name":"Common.Status","requestId":7,"type":"command","version":"2.0","status":"invalidMessage"},"payload":null}`, ack("Common.Status", "7", "invalidMessage")},
		{`{"header":{"name":"Common.Status","requestId":7,"type":"command","version":"2.0","completionCode":"success"},"payload":null}`, ack("Common.Status", "7", "invalidMessage")},
		{`{"header":{"name":"Common.Status","requestId":7,"type":"event","version":"2.0"},"payload":null}`, ack("Common.Status", "7", "invalidMessage")},
		{`{"header":{"name":"Common.Status","requestId":7,"type":"command"},"payload":null}`, ack("Common.Status", "7", "invalidMessage")},
		{`{"header":{"name":"Common.Status","requestId":7,"type":"command","version":"2"},"payload":null}`, ack("Common.Status", "7", "invalidMessage")},
		{`{"header":{"name":"Common.Status","requestId":7,"type":"command","version":2.0},"payload":null}`, ack("Common.Status", "7", "invalidMessage")},
		{`{"header":{"name":"Common.Status","requestId":"7","type":"command","version":"2.0"},"payload":null}`, ack("Common.Status", "", "invalidMessage")},
		{`{"header":{"name":"Common.Status","requestId":7.5,"type":"command","version":"2.0"},"payload":null}`, ack("Common.Status", "", "invalidMessage")},
		{`{"header":{"name":"Common.Status","type":"command","version":"2.0"},"payload":null}`, ack("Common.Status", "", "invalidMessage")},
		{`{"header":{"name":"Status","requestId":7,"type":"command","version":"2.0"},"payload":null}`, ack("Status", "7", "invalidMessage")},
		{`{"header":{"name":"Common.Status","requestId":7,"type":"command","version":"2.0","timeout":-1},"payload":null}`, ack("Common.Status", "7", "invalidMessage")},
		{`{"header":{"name":"Common.Status","name":"Common.Status","requestId":7,"type":"command","version":"2.0"},"payload":null}`, ack("", "", "invalidMessage")},
		{`{"header":{"name":"Common.Status","requestId":7,"type":"command","version":"2.0"},"payload":[]}`, ack("Common.Status", "7", "invalidMessage")},
		{`{"header":{"name":"Common.Status","requestId":7,"type":"command","version":"2.0"},"payload":{"x":1}}`, ack("Common.Status", "7", "invalidMessage")},
		{`{"header":{"name":"CashDispenser.Present","requestId":7,"type":"command","version":"2.0"},"payload":{"Position":"outDefault"}}`, ack("CashDispenser.Present", "7", "invalidMessage")},
		{`{"header":{"name":"CashDispenser.Present","requestId":7,"type":"command","version":"2.0"},"payload":{"position":5}}`, ack("CashDispenser.Present", "7", "invalidMessage")},
		{`{"header":{"name":"CashDispenser.Present","requestId":7,"type":"command","version":"2.0"},"payload":{"position":"outDefault","position":"outDefault"}}`, ack("CashDispenser.Present", "7", "invalidMessage")},
		{`{"header":{"name":"CashDispenser.Dispense","requestId":7,"type":"command","version":"2.0"},"payload":{"denomination":{"denomination":{"app":{"counts":{"unit1":1.5}}}}}}`, ack("CashDispenser.Dispense", "7", "invalidMessage")},
		{`{"header":{"name":"CashDispenser.Dispense","requestId":7,"type":"command","version":"2.0"},"payload":{"denomination":{"denomination":{"app":{"counts":{"unit1":1},"colour":1}}}}}`, ack("CashDispenser.Dispense", "7", "invalidMessage")},
		{`{"header":{"name":"CashDispenser.Present","requestId":7,"type":"command","version":"2.0"},"payload":{"position":"outSideways"}}`, ack("CashDispenser.Present", "7", "invalidMessage")},
		{`{"header":{"name":"CashManagement.Retract","requestId":7,"type":"command","version":"2.0"},"payload":{"location":{"retractArea":"bin"}}}`, ack("CashManagement.Retract", "7", "invalidMessage")},
		{`{"header":{"name":"Common.Status","requestId":0,"type":"command","version":"2.0"},"payload":null}`, ack("Common.Status", "0", "invalidRequestID")},
		{`{"header":{"name":"Common.Status","requestId":-3,"type":"command","version":"2.0"},"payload":null}`, ack("Common.Status", "-3", "invalidRequestID")},
		{`{"header":{"name":"Common.Status","requestId":2147483648,"type":"command","version":"2.0"},"payload":null}`, ack("Common.Status", "2147483648", "invalidRequestID")},
	}
	for i, tc := range cases {
		c.sendRaw(tc.in)
		m := c.mustRecv()
		t.Run(fmt.Sprint(i), func(t *testing.T) { jsonEqual(t, m.raw, tc.want) })
	}
	// A binary frame is not a message.
	// Unknown commands and versions: accepted, then unsupportedCommand.
	for i, in := range []string{
		`{"header":{"name":"Common.Cancel","requestId":8,"type":"command","version":"2.0"},"payload":null}`,
		`{"header":{"name":"Common.Status","requestId":9,"type":"command","version":"3.0"},"payload":{"anything":true}}`,
	} {
		c.sendRaw(in)
		ms := c.until(8 + i)
		if len(ms) != 2 || ms[0].Header.Type != TypeAcknowledge || ms[0].Header.Status != "" {
			t.Fatalf("%d: %s", i, rawList(ms))
		}
		completion(t, ms, "unsupportedCommand", "null")
	}
	// After all that the connection still works.
	ms := c.command("Common.Status", 10, "{}")
	completion(t, ms, "success", "")
}

// TestInFlightAndQueue holds the device busy (the AfterSave hook blocks a
// GetCommandNonce) to test requestId reuse in flight and the queue limit.
func TestInFlightAndQueue(t *testing.T) {
	block, release := make(chan struct{}), make(chan struct{})
	r := newRig(t, func(c *Config) {
		c.QueueLimit = 2
		c.AfterSave = func(action string) {
			if action == "nonce" {
				close(block)
				<-release
			}
		}
	})
	c := r.service()
	c.sendRaw(`{"header":{"name":"Common.GetCommandNonce","requestId":1,"type":"command","version":"2.0"},"payload":null}`)
	jsonEqual(t, c.mustRecv().raw, `{"header":{"name":"Common.GetCommandNonce","requestId":1,"type":"acknowledge","version":"2.0"},"payload":null}`)
	<-block // running, blocked
	c.sendRaw(`{"header":{"name":"Common.Status","requestId":1,"type":"command","version":"2.0"},"payload":null}`)
	jsonEqual(t, c.mustRecv().raw, `{"header":{"name":"Common.Status","requestId":1,"type":"acknowledge","version":"2.0","status":"invalidRequestID"},"payload":null}`)
	c.sendRaw(`{"header":{"name":"Common.Status","requestId":2,"type":"command","version":"2.0"},"payload":null}`)
	jsonEqual(t, c.mustRecv().raw, `{"header":{"name":"Common.Status","requestId":2,"type":"acknowledge","version":"2.0"},"payload":null}`)
	c.sendRaw(`{"header":{"name":"Common.Status","requestId":3,"type":"command","version":"2.0"},"payload":null}`)
	jsonEqual(t, c.mustRecv().raw, `{"header":{"name":"Common.Status","requestId":3,"type":"acknowledge","version":"2.0","status":"tooManyRequests"},"payload":null}`)
	// Another connection shares the device's queue.
	c2 := r.service()
	c2.sendRaw(`{"header":{"name":"Common.Status","requestId":1,"type":"command","version":"2.0"},"payload":null}`)
	jsonEqual(t, c2.mustRecv().raw, `{"header":{"name":"Common.Status","requestId":1,"type":"acknowledge","version":"2.0","status":"tooManyRequests"},"payload":null}`)
	close(release)
	// Completions in order: 1 then 2.
	m := c.mustRecv()
	if m.String() != "completion Common.GetCommandNonce" || *m.Header.RequestID != 1 {
		t.Fatalf("%s", m.raw)
	}
	m = c.mustRecv()
	if m.String() != "completion Common.Status" || *m.Header.RequestID != 2 {
		t.Fatalf("%s", m.raw)
	}
	// requestId 1 is free again.
	completion(t, c.command("Common.Status", 1, ""), "success", "")
}

func TestStatusCapabilitiesStorage(t *testing.T) {
	r := newRig(t, nil)
	c := r.service()
	ms := c.command("Common.Status", 1, "")
	completion(t, ms, "success", `{"common":{"device":"online","devicePosition":"inPosition","powerSaveRecoveryTime":0,"antiFraudModule":"ok","exchange":"inactive","endToEndSecurity":"enforced"},
		"cashDispenser":{"intermediateStacker":"empty","positions":[{"position":"outDefault","shutter":"closed","positionStatus":"empty","transport":"ok","transportStatus":"empty"}]},
		"cashManagement":{"dispenser":"ok"}}`)
	ms = c.command("Common.Capabilities", 2, "")
	m := completion(t, ms, "success", "")
	var caps struct {
		Common struct {
			EndToEndSecurity struct {
				Required string   `json:"required"`
				Commands []string `json:"commands"`
			} `json:"endToEndSecurity"`
		} `json:"common"`
		CashDispenser struct {
			Type             string `json:"type"`
			MaxDispenseItems int    `json:"maxDispenseItems"`
		} `json:"cashDispenser"`
		Interfaces []struct {
			Name     string                         `json:"name"`
			Commands map[string]map[string][]string `json:"commands"`
		} `json:"interfaces"`
	}
	if err := json.Unmarshal(m.Payload, &caps); err != nil {
		t.Fatal(err)
	}
	if caps.CashDispenser.Type != "selfServiceBill" || caps.CashDispenser.MaxDispenseItems != 40 ||
		caps.Common.EndToEndSecurity.Required != "always" || fmt.Sprint(caps.Common.EndToEndSecurity.Commands) != "[CashDispenser.Dispense]" ||
		len(caps.Interfaces) != 4 || caps.Interfaces[1].Commands["CashDispenser.Dispense"]["versions"][0] != "2.0" {
		t.Fatalf("capabilities %s", m.Payload)
	}
	ms = c.command("Storage.GetStorage", 3, "")
	completion(t, ms, "success", `{"storage":{
	 "unit1":{"id":"CST1","positionName":"slot 1","capacity":2500,"status":"ok","serialNumber":"SIM-unit1",
	   "cash":{"capabilities":{"types":{"cashOut":true},"items":{"fit":true}},
	     "configuration":{"types":{"cashOut":true},"items":{"fit":true},"currency":"CNY","value":100.00,"lowThreshold":10,"appLockOut":false},
	     "status":{"index":1,"initial":{"unrecognized":0,"typeCNY100":{"fit":50}},
	       "out":{"presented":{"unrecognized":0,"typeCNY100":{"fit":0}},"rejected":{"unrecognized":0,"typeCNY100":{"fit":0}},"stacked":{"unrecognized":0,"typeCNY100":{"fit":0}}},
	       "in":{},"accuracy":"accurate","replenishmentStatus":"ok"}}},
	 "unit2":{"id":"CST2","positionName":"slot 2","capacity":2500,"status":"ok","serialNumber":"SIM-unit2",
	   "cash":{"capabilities":{"types":{"cashOut":true},"items":{"fit":true}},
	     "configuration":{"types":{"cashOut":true},"items":{"fit":true},"currency":"CNY","value":50.00,"lowThreshold":10,"appLockOut":false},
	     "status":{"index":2,"initial":{"unrecognized":0,"typeCNY50":{"fit":12}},
	       "out":{"presented":{"unrecognized":0,"typeCNY50":{"fit":0}},"rejected":{"unrecognized":0,"typeCNY50":{"fit":0}},"stacked":{"unrecognized":0,"typeCNY50":{"fit":0}}},
	       "in":{},"accuracy":"accurate","replenishmentStatus":"ok"}}}}}`)
}

// TestWithdrawal runs a whole withdrawal at the raw JSON level and checks
// the exact message sequence of each step.
func TestWithdrawal(t *testing.T) {
	r := newRig(t, nil)
	c := r.service()
	other := r.service() // sees the unsolicited events too

	ms := c.command("CashDispenser.Denominate", 1, `{"request":{"denomination":{"service":{"currencies":{"CNY":250.00},"mix":"mix1"}}}}`)
	wantKinds(t, ms, "acknowledge CashDispenser.Denominate", "completion CashDispenser.Denominate")
	completion(t, ms, "success", `{"result":{"currencies":{"CNY":250.00},"values":{"unit1":2,"unit2":1}}}`)

	nonce := c.nonce(2)
	tok := signToken(t, nonce, 25000)
	// unit2 goes from 12 to 10 notes: low (threshold 10).
	ms = c.command("CashDispenser.Dispense", 3, dispenseJSON(`{"unit1":1,"unit2":3}`, "250.00", tok))
	wantKinds(t, ms, "acknowledge CashDispenser.Dispense", "unsolicited Common.NonceClearedEvent",
		"unsolicited Storage.CountsChangedEvent", "unsolicited Storage.StorageThresholdEvent", "completion CashDispenser.Dispense")
	jsonEqual(t, ms[1].raw, `{"header":{"name":"Common.NonceClearedEvent","type":"unsolicited","version":"2.0"},"payload":{"reasonDescription":"used by CashDispenser.Dispense"}}`)
	var counts map[string]storageUnitView
	json.Unmarshal(ms[2].Payload, &counts)
	if len(counts) != 2 || counts["unit1"].Cash.Status.Out.Stacked["typeCNY100"].Fit != 1 || counts["unit2"].Cash.Status.Out.Stacked["typeCNY50"].Fit != 3 {
		t.Fatalf("CountsChangedEvent %s", ms[2].Payload)
	}
	var thr map[string]storageUnitView
	json.Unmarshal(ms[3].Payload, &thr)
	if len(thr) != 1 || thr["unit2"].Cash.Status.ReplenishmentStatus != "low" {
		t.Fatalf("StorageThresholdEvent %s", ms[3].Payload)
	}
	completion(t, ms, "success", `{"denomination":{"currencies":{"CNY":250.00},"values":{"unit1":1,"unit2":3}}}`)
	if st, ex := r.srv.Stacked(); !st.Equal(dispenser.Mix{"unit1": 1, "unit2": 3}) || ex.Notes() != 0 {
		t.Fatalf("ground truth stacker %v exit %v", st, ex)
	}

	// The other connection saw the unsolicited events, in order.
	for _, want := range []string{"unsolicited Common.NonceClearedEvent", "unsolicited Storage.CountsChangedEvent", "unsolicited Storage.StorageThresholdEvent"} {
		if m := other.mustRecv(); m.String() != want {
			t.Fatalf("other connection got %s, want %s", m.raw, want)
		}
	}

	armed := r.fake.Armed()
	ms = c.command("CashDispenser.Present", 4, `{"position":"outDefault"}`)
	wantKinds(t, ms, "acknowledge CashDispenser.Present", "unsolicited CashManagement.ItemsPresentedEvent",
		"unsolicited Storage.CountsChangedEvent", "completion CashDispenser.Present")
	jsonEqual(t, ms[1].raw, `{"header":{"name":"CashManagement.ItemsPresentedEvent","type":"unsolicited","version":"2.0"},"payload":{"position":"outDefault","additionalBunches":"0"}}`)
	completion(t, ms, "success", `{"position":{"position":"outDefault","additionalBunches":"0"}}`)

	// The customer takes the notes TakeDelay later on the fake clock.
	waitArmed(t, armed)
	r.fake.Advance(takeDelay)
	jsonEqual(t, c.mustRecv().raw, `{"header":{"name":"CashManagement.ItemsTakenEvent","type":"unsolicited","version":"2.0"},"payload":{"position":"outDefault","additionalBunches":"0"}}`)

	// Present status with a response token.
	ms = c.command("CashDispenser.GetPresentStatus", 5, `{"position":"outDefault","nonce":"7F3C2A9B1D4E5F60718293A4B5C6D7E8"}`)
	wantKinds(t, ms, "acknowledge CashDispenser.GetPresentStatus", "completion CashDispenser.GetPresentStatus")
	wantTok := "NONCE=7F3C2A9B1D4E5F60718293A4B5C6D7E8,TOKENFORMAT=1,TOKENLENGTH=0298,DISPENSEID=" + tok[len(tok)-64:] +
		",DISPENSED1=250.00CNY,PRESENTED1=YES,PRESENTEDAMOUNT1=250.00CNY,RETRACTED1=NO,HMACSHA256="
	m := completion(t, ms, "success", "")
	var ps struct {
		Token string `json:"token"`
	}
	json.Unmarshal(m.Payload, &ps)
	if !strings.HasPrefix(ps.Token, wantTok) || len(ps.Token) != 298 {
		t.Fatalf("token %s\nwant prefix %s", ps.Token, wantTok)
	}
	if !verifyResponseToken(ps.Token, testKey) {
		t.Fatal("response token does not verify with the shared key")
	}
	if verifyResponseToken(ps.Token, []byte("another key entirely, not shared")) {
		t.Fatal("response token verifies with another key")
	}
	tampered := strings.Replace(ps.Token, "PRESENTED1=YES", "PRESENTED1=NO_", 1)
	if verifyResponseToken(tampered, testKey) {
		t.Fatal("tampered token verifies")
	}
	completion(t, ms, "success", `{"denomination":{"currencies":{"CNY":250.00},"values":{"unit1":1,"unit2":3}},"presentState":"presented","token":"`+ps.Token+`"}`)

	// Ground truth.
	cs := counters(r.srv)
	if cs["unit1"].Count != 49 || cs["unit2"].Count != 9 || cs["unit2"].Dispensed != 3 {
		t.Fatalf("counters %+v", cs)
	}
	// The token was used: a second dispense with it is refused.
	ms = c.command("CashDispenser.Dispense", 6, dispenseJSON(`{"unit1":1,"unit2":3}`, "250.00", tok))
	wantKinds(t, ms, "acknowledge CashDispenser.Dispense", "completion CashDispenser.Dispense")
	completion(t, ms, "noCommandNonce", "null")
	// Nothing to retract: the customer took the notes.
	ms = c.command("CashManagement.Retract", 7, `{"location":{"outputPosition":"outDefault","retractArea":"retract"}}`)
	completion(t, ms, "commandErrorCode", `{"errorCode":"noItems"}`)
}

// storageUnitView decodes the parts of a storage unit the tests check.
type storageUnitView struct {
	Cash struct {
		Status struct {
			Out struct {
				Stacked   map[string]struct{ Fit int } `json:"stacked"`
				Presented map[string]struct{ Fit int } `json:"presented"`
				Rejected  map[string]struct{ Fit int } `json:"rejected"`
			} `json:"out"`
			Accuracy            string `json:"accuracy"`
			ReplenishmentStatus string `json:"replenishmentStatus"`
		} `json:"status"`
	} `json:"cash"`
}

// verifyResponseToken checks TOKENLENGTH and the HMAC of a present-status
// token as a host would.
func verifyResponseToken(tok string, key []byte) bool {
	i := strings.LastIndex(tok, ",HMACSHA256=")
	if i < 0 || len(tok) > 1024 {
		return false
	}
	signed := tok[:i+len(",HMACSHA256=")]
	if !strings.Contains(tok, fmt.Sprintf(",TOKENLENGTH=%04d,", len(tok))) {
		return false
	}
	want, err := dispenser.HMACSHA256(key)([]byte(signed))
	if err != nil {
		return false
	}
	return strings.EqualFold(fmt.Sprintf("%X", want), tok[len(signed):])
}

// TestTokenRefusals: every token refusal, its completion code, no cash
// moved, and the nonce used up by each attempt.
func TestTokenRefusals(t *testing.T) {
	r := newRig(t, nil)
	c := r.service()
	id := 0
	next := func() int { id++; return id }
	counts := `{"unit1":2}`
	otherKey := func(n string) string {
		tok, _ := dispenser.BuildToken(n, 20000, "CNY", 2, dispenser.HMACSHA256([]byte("not the device's key, 32 bytes..")))
		return tok
	}
	cases := []struct {
		name  string
		token func(nonce string) string
		code  string
	}{
		{"missing", func(string) string { return "" }, "invalidToken"},
		{"format", func(n string) string {
			return strings.Replace(signToken(t, n, 20000), "TOKENLENGTH=0165", "TOKENLENGTH=0166", 1)
		}, "invalidTokenFormat"},
		{"nonce", func(string) string { return signToken(t, "00000000000000000000000000000000", 20000) }, "invalidTokenNonce"},
		{"hmac", otherKey, "invalidTokenHMAC"},
		{"amount", func(n string) string { return signToken(t, n, 19999) }, "invalidToken"},
	}
	for _, tc := range cases {
		n := c.nonce(next())
		tok := tc.token(n)
		var p string
		if tok == "" {
			p = `{"denomination":{"denomination":{"app":{"counts":{"unit1":2}}}}}`
		} else {
			p = dispenseJSON(counts, "200.00", tok)
		}
		ms := c.command("CashDispenser.Dispense", next(), p)
		wantKinds(t, ms, "acknowledge CashDispenser.Dispense", "unsolicited Common.NonceClearedEvent", "completion CashDispenser.Dispense")
		completion(t, ms, tc.code, "null")
		// The nonce is gone: even a good token for it is refused now.
		ms = c.command("CashDispenser.Dispense", next(), dispenseJSON(counts, "200.00", signToken(t, n, 20000)))
		wantKinds(t, ms, "acknowledge CashDispenser.Dispense", "completion CashDispenser.Dispense")
		completion(t, ms, "noCommandNonce", "null")
	}
	// ClearCommandNonce: success, no event, the token is dead.
	n := c.nonce(next())
	ms := c.command("Common.ClearCommandNonce", next(), "")
	wantKinds(t, ms, "acknowledge Common.ClearCommandNonce", "completion Common.ClearCommandNonce")
	completion(t, ms, "success", "null")
	ms = c.command("CashDispenser.Dispense", next(), dispenseJSON(counts, "200.00", signToken(t, n, 20000)))
	completion(t, ms, "noCommandNonce", "null")
	// Payload refusals also use up the nonce.
	n = c.nonce(next())
	ms = c.command("CashDispenser.Dispense", next(), dispenseJSON(`{"unit9":1}`, "100.00", signToken(t, n, 10000)))
	wantKinds(t, ms, "acknowledge CashDispenser.Dispense", "unsolicited Common.NonceClearedEvent", "completion CashDispenser.Dispense")
	completion(t, ms, "invalidData", "null")
	for _, tc := range []struct{ payload, code, result string }{
		{dispenseJSON(counts, "150.00", "x"), "commandErrorCode", `{"errorCode":"invalidDenomination"}`},
		{dispenseJSON(`{"unit1":41}`, "4100.00", "x"), "invalidTokenFormat", "null"}, // token checked before the note limit
		{`{"denomination":{"denomination":{"service":{"currencies":{"EUR":10}}}},"token":"x"}`, "commandErrorCode", `{"errorCode":"invalidCurrency"}`},
		{`{"denomination":{"denomination":{"service":{"currencies":{"CNY":10}}}},"token":"x"}`, "commandErrorCode", `{"errorCode":"notDispensable"}`},
		{`{"denomination":{"denomination":{"service":{"currencies":{"CNY":100},"mix":"mix2"}}},"token":"x"}`, "commandErrorCode", `{"errorCode":"invalidMixNumber"}`},
		{`{"denomination":{"denomination":{"service":{"currencies":{"CNY":100.001}}}},"token":"x"}`, "invalidData", "null"},
		{`{"denomination":{"denomination":{"app":{"counts":{"unit1":1}}}},"position":"outLeft","token":"x"}`, "commandErrorCode", `{"errorCode":"unsupportedPosition"}`},
	} {
		ms := c.command("CashDispenser.Dispense", next(), tc.payload)
		completion(t, ms, tc.code, tc.result)
	}
	// Too many notes with a valid token.
	n = c.nonce(next())
	ms = c.command("CashDispenser.Dispense", next(), dispenseJSON(`{"unit1":41}`, "4100.00", signToken(t, n, 410000)))
	completion(t, ms, "commandErrorCode", `{"errorCode":"tooManyItems"}`)
	n = c.nonce(next())
	ms = c.command("CashDispenser.Dispense", next(), dispenseJSON(`{"unit2":13}`, "650.00", signToken(t, n, 65000)))
	completion(t, ms, "commandErrorCode", `{"errorCode":"notDispensable"}`)
	for _, u := range r.srv.Counters() {
		if u.Dispensed != 0 {
			t.Fatalf("cash moved on a refusal: %+v", u)
		}
	}
}

// TestNonceAcrossRestart: nonces never repeat across power cycles, the
// current nonce is lost at power-up, the present status survives.
func TestNonceAcrossRestart(t *testing.T) {
	r := newRig(t, nil)
	seen := map[string]bool{}
	var tok string
	for cycle := range 3 {
		c := r.service()
		for i := range 5 {
			n := c.nonce(i + 1)
			if seen[n] {
				t.Fatalf("nonce %s repeated in cycle %d", n, cycle)
			}
			seen[n] = true
			tok = signToken(t, n, 10000)
		}
		if cycle == 1 {
			completion(t, c.command("CashDispenser.Dispense", 10, dispenseJSON(`{"unit1":1}`, "100.00", tok)), "success", "")
			completion(t, c.command("CashDispenser.Reject", 11, ""), "success", "null")
			n := c.nonce(12)
			seen[n] = true
			tok = signToken(t, n, 10000)
		}
		addr := r.srv.Addr()
		ns, err := r.srv.Restart()
		if err != nil {
			t.Fatal(err)
		}
		r.srv = ns
		if ns.Addr() != addr {
			t.Fatalf("restart moved from %s to %s", addr, ns.Addr())
		}
		// The old connection is gone.
		if _, err := c.recv(); err == nil {
			t.Fatal("connection survived the power cycle")
		}
		c = r.service()
		ms := c.command("CashDispenser.Dispense", 1, dispenseJSON(`{"unit1":1}`, "100.00", tok))
		wantKinds(t, ms, "acknowledge CashDispenser.Dispense", "completion CashDispenser.Dispense")
		completion(t, ms, "noCommandNonce", "null")
	}
	ps, err := r.srv.PresentStatus()
	if err != nil || ps.State != dispenser.PresentRejected && ps.State != dispenser.PresentStacked || ps.DispensedAmount != 10000 {
		t.Fatalf("present status after restarts %+v %v", ps, err)
	}
}

// TestFaults: jam, count unknown, short dispense, shutter, offline.
func TestFaults(t *testing.T) {
	r := newRig(t, nil)
	c := r.service()
	id := 100
	next := func() int { id++; return id }
	dispense := func(counts, amount string, minor int64) []msg {
		n := c.nonce(next())
		return c.command("CashDispenser.Dispense", next(), dispenseJSON(counts, amount, signToken(t, n, minor)))
	}

	// Jam after 1 of 3 notes.
	r.srv.SetFaults(dispensersim.Faults{Jam: true, JamAfter: 1})
	ms := dispense(`{"unit1":3}`, "300.00", 30000)
	wantKinds(t, ms, "acknowledge CashDispenser.Dispense", "event CashDispenser.IncompleteDispenseEvent",
		"unsolicited Common.NonceClearedEvent", "unsolicited Storage.CountsChangedEvent", "unsolicited Common.StatusChangedEvent",
		"completion CashDispenser.Dispense")
	jsonEqual(t, ms[1].raw, fmt.Sprintf(`{"header":{"name":"CashDispenser.IncompleteDispenseEvent","requestId":%d,"type":"event","version":"2.0"},"payload":{"currencies":{"CNY":100.00},"values":{"unit1":1}}}`, id))
	jsonEqual(t, ms[4].raw, `{"header":{"name":"Common.StatusChangedEvent","type":"unsolicited","version":"2.0"},"payload":{"common":{"device":"hardwareError"}}}`)
	completion(t, ms, "hardwareError", `{"denomination":{"currencies":{"CNY":100.00},"values":{"unit1":1}}}`)
	if last(ms).Header.ErrorDescription != "notes jammed after 1 of 3" {
		t.Fatalf("errorDescription %q", last(ms).Header.ErrorDescription)
	}
	completion(t, c.command("Common.GetCommandNonce", next(), ""), "deviceNotReady", "null")
	ms = c.command("CashManagement.Reset", next(), `{"position":{"target":"reject"}}`)
	wantKinds(t, ms, "acknowledge CashManagement.Reset", "unsolicited Storage.CountsChangedEvent", "unsolicited Common.StatusChangedEvent", "completion CashManagement.Reset")
	jsonEqual(t, ms[2].Payload, `{"common":{"device":"online"}}`)
	if cs := counters(r.srv)["unit1"]; cs.Rejected != 1 || cs.Count != 49 {
		t.Fatalf("after reset %+v", cs)
	}

	// Count unknown: no incomplete event, no denomination, accuracy unknown until Reset.
	r.srv.SetFaults(dispensersim.Faults{CountUnknown: true})
	ms = dispense(`{"unit1":2}`, "200.00", 20000)
	wantKinds(t, ms, "acknowledge CashDispenser.Dispense", "unsolicited Common.NonceClearedEvent",
		"unsolicited Storage.CountsChangedEvent", "unsolicited Common.StatusChangedEvent", "completion CashDispenser.Dispense")
	completion(t, ms, "hardwareError", "null")
	var units map[string]storageUnitView
	ms = c.command("Storage.GetStorage", next(), "")
	var st struct{ Storage map[string]storageUnitView }
	json.Unmarshal(last(ms).Payload, &st)
	units = st.Storage
	if units["unit1"].Cash.Status.Accuracy != "unknown" || units["unit2"].Cash.Status.Accuracy != "accurate" {
		t.Fatalf("accuracy %s", last(ms).Payload)
	}
	ms = c.command("CashDispenser.GetPresentStatus", next(), `{"nonce":"1234"}`)
	m := completion(t, ms, "success", "")
	var ps struct {
		PresentState string          `json:"presentState"`
		Denomination json.RawMessage `json:"denomination"`
		Token        string          `json:"token"`
	}
	json.Unmarshal(m.Payload, &ps)
	if ps.PresentState != "notPresented" || ps.Denomination != nil || !strings.Contains(ps.Token, ",DISPENSED1=?,PRESENTED1=NO,RETRACTED1=NO,HMACSHA256=") || !verifyResponseToken(ps.Token, testKey) {
		t.Fatalf("present status after count unknown %s", m.Payload)
	}
	r.srv.SetFaults(dispensersim.Faults{})
	completion(t, c.command("CashManagement.Reset", next(), ""), "success", "null")
	ms = c.command("Storage.GetStorage", next(), "")
	json.Unmarshal(last(ms).Payload, &st)
	if st.Storage["unit1"].Cash.Status.Accuracy != "accurate" {
		t.Fatalf("accuracy after reset %s", last(ms).Payload)
	}

	// Short dispense: two of three, presentable.
	r.srv.SetFaults(dispensersim.Faults{ShortDispense: 1})
	ms = dispense(`{"unit1":3}`, "300.00", 30000)
	wantKinds(t, ms, "acknowledge CashDispenser.Dispense", "event CashDispenser.IncompleteDispenseEvent",
		"unsolicited Common.NonceClearedEvent", "unsolicited Storage.CountsChangedEvent", "completion CashDispenser.Dispense")
	completion(t, ms, "commandErrorCode", `{"errorCode":"cashUnitError","denomination":{"currencies":{"CNY":200.00},"values":{"unit1":2}}}`)

	// Shutter failure on present, then Reject.
	r.srv.SetFaults(dispensersim.Faults{ShutterFailure: true})
	ms = c.command("CashDispenser.Present", next(), "")
	wantKinds(t, ms, "acknowledge CashDispenser.Present", "completion CashDispenser.Present")
	completion(t, ms, "commandErrorCode", `{"errorCode":"shutterNotOpen"}`)
	r.srv.SetFaults(dispensersim.Faults{})
	ms = c.command("CashDispenser.Reject", next(), "")
	wantKinds(t, ms, "acknowledge CashDispenser.Reject", "unsolicited Storage.CountsChangedEvent", "completion CashDispenser.Reject")
	completion(t, ms, "success", "null")
	completion(t, c.command("CashDispenser.Reject", next(), ""), "commandErrorCode", `{"errorCode":"noItems"}`)
	completion(t, c.command("CashDispenser.Present", next(), ""), "commandErrorCode", `{"errorCode":"noItems"}`)

	// Offline: announced at once; status offline; cash commands deviceNotReady.
	r.srv.SetFaults(dispensersim.Faults{Offline: true})
	jsonEqual(t, c.mustRecv().raw, `{"header":{"name":"Common.StatusChangedEvent","type":"unsolicited","version":"2.0"},"payload":{"common":{"device":"offline"}}}`)
	ms = c.command("Common.Status", next(), "")
	var status struct {
		Common struct{ Device string } `json:"common"`
	}
	json.Unmarshal(last(ms).Payload, &status)
	if status.Common.Device != "offline" {
		t.Fatalf("status %s", last(ms).Payload)
	}
	for _, name := range []string{"Common.GetCommandNonce", "CashDispenser.Present", "CashDispenser.Reject", "CashManagement.Retract", "CashManagement.Reset", "CashDispenser.GetPresentStatus"} {
		completion(t, c.command(name, next(), ""), "deviceNotReady", "null")
	}
	completion(t, c.command("CashDispenser.Dispense", next(), dispenseJSON(`{"unit1":1}`, "100.00", "x")), "deviceNotReady", "null")
	completion(t, c.command("Storage.GetStorage", next(), ""), "success", "")
	r.srv.SetFaults(dispensersim.Faults{})
	if m := c.mustRecv(); m.String() != "unsolicited Common.StatusChangedEvent" {
		t.Fatalf("%s", m.raw)
	}
}

// TestNotTakenRetract: notes left at the exit are retracted; the response
// token says so.
func TestNotTakenRetract(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Faults.NotesNotTaken = true })
	c := r.service()
	n := c.nonce(1)
	completion(t, c.command("CashDispenser.Dispense", 2, dispenseJSON(`{"unit1":1,"unit2":1}`, "150.00", signToken(t, n, 15000))), "success", "")
	completion(t, c.command("CashDispenser.Present", 3, ""), "success", "")
	r.fake.Advance(takeDelay * 100)
	n = c.nonce(4)
	ms := c.command("CashManagement.Retract", 5, "")
	wantKinds(t, ms, "acknowledge CashManagement.Retract", "unsolicited Common.NonceClearedEvent", "completion CashManagement.Retract")
	completion(t, ms, "success", "null")
	ms = c.command("CashDispenser.GetPresentStatus", 6, `{"nonce":"`+n+`"}`)
	var ps struct {
		PresentState string `json:"presentState"`
		Token        string `json:"token"`
	}
	json.Unmarshal(last(ms).Payload, &ps)
	if ps.PresentState != "presented" || !strings.Contains(ps.Token, ",DISPENSED1=150.00CNY,PRESENTED1=YES,PRESENTEDAMOUNT1=150.00CNY,RETRACTED1=YES,RETRACTEDAMOUNT1=150.00CNY,HMACSHA256=") ||
		!verifyResponseToken(ps.Token, testKey) {
		t.Fatalf("%s", last(ms).Payload)
	}
	if cs := counters(r.srv); cs["unit1"].Retracted != 1 || cs["unit2"].Retracted != 1 {
		t.Fatalf("%+v", cs)
	}
	for _, bad := range []string{`{"location":{"retractArea":"transport"}}`, `{"location":{"outputPosition":"outLeft"}}`} {
		m := last(c.command("CashManagement.Retract", 7, bad))
		if m.Header.CompletionCode != "commandErrorCode" {
			t.Fatalf("%s", m.raw)
		}
	}
}

// TestDropLink: the device acts, the link drops before the completion;
// after reconnecting, the nonce is gone and the present status tells the
// truth.
func TestDropLink(t *testing.T) {
	r := newRig(t, nil)
	c := r.service()
	n := c.nonce(1)
	tok := signToken(t, n, 20000)
	r.srv.DropLink("CashDispenser.Dispense")
	c.sendRaw(`{"header":{"name":"CashDispenser.Dispense","requestId":2,"type":"command","version":"2.0"},"payload":` + dispenseJSON(`{"unit1":2}`, "200.00", tok) + `}`)
	if m := c.mustRecv(); m.String() != "acknowledge CashDispenser.Dispense" {
		t.Fatalf("%s", m.raw)
	}
	if m, err := c.recv(); err == nil {
		t.Fatalf("got %s after the link should have dropped", m.raw)
	}
	if st, _ := r.srv.Stacked(); !st.Equal(dispenser.Mix{"unit1": 2}) {
		t.Fatalf("device did not act: stacker %v", st)
	}
	c = r.service()
	ms := c.command("CashDispenser.GetPresentStatus", 3, "")
	wantKinds(t, ms, "acknowledge CashDispenser.GetPresentStatus", "completion CashDispenser.GetPresentStatus")
	completion(t, ms, "success", `{"denomination":{"currencies":{"CNY":200.00},"values":{"unit1":2}},"presentState":"notPresented"}`)
	ms = c.command("CashDispenser.Reject", 4, "")
	wantKinds(t, ms, "acknowledge CashDispenser.Reject", "unsolicited Storage.CountsChangedEvent", "completion CashDispenser.Reject")
	// One shot: the next Dispense completes normally; the nonce is gone.
	ms = c.command("CashDispenser.Dispense", 5, dispenseJSON(`{"unit1":2}`, "200.00", tok))
	wantKinds(t, ms, "acknowledge CashDispenser.Dispense", "completion CashDispenser.Dispense")
	completion(t, ms, "noCommandNonce", "null")
}

// TestQueueTimeout: a command whose timeout elapsed while queued does not act.
func TestQueueTimeout(t *testing.T) {
	block, release := make(chan struct{}), make(chan struct{})
	var r *rig
	r = newRig(t, func(c *Config) {
		c.AfterSave = func(action string) {
			if action == "nonce" {
				close(block)
				<-release
			}
		}
	})
	c := r.service()
	c.sendRaw(`{"header":{"name":"Common.GetCommandNonce","requestId":1,"type":"command","version":"2.0"},"payload":null}`)
	c.mustRecv()
	<-block
	c.sendRaw(`{"header":{"name":"Common.ClearCommandNonce","requestId":2,"type":"command","version":"2.0","timeout":1000},"payload":null}`)
	c.mustRecv()
	r.fake.Advance(1001 * 1e6)
	close(release)
	completion(t, c.until(1), "success", "")
	ms := c.until(2)
	completion(t, ms, "timeOut", "null")
	// The nonce was not cleared by the timed-out command.
	ms = c.command("CashDispenser.Dispense", 3, "null")
	wantKinds(t, ms, "acknowledge CashDispenser.Dispense", "unsolicited Common.NonceClearedEvent", "completion CashDispenser.Dispense")
}
