package hostsim_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/host/bindapi"
	"github.com/cardless-atm/cardless/atm/hostlink"
	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/hostlink/internal/linktest"
	"github.com/cardless-atm/cardless/atm/wire"
)

// newPhone is a device ID no customer has bound.
const newPhone = "5EED5EED5EED5EED5EED5EED5EED5EED"

// bindFixture is a host on a fake clock with its bind endpoint on
// loopback, and an ATM host link to it.
type bindFixture struct {
	*linktest.Fixture
	clk    *clock.Fake
	client *hostlink.Client
}

func newBindFixture(t *testing.T, mutate func(*hostsim.Config)) *bindFixture {
	t.Helper()
	f := linktest.NewFixture(t)
	f.Host.Close()
	clk := clock.NewFake(time.Date(2030, 3, 4, 10, 0, 0, 0, time.UTC))
	f.Config.Now = clk.Now
	if mutate != nil {
		mutate(&f.Config)
	}
	f.StartHost(t)
	if err := f.Host.StartBind("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return &bindFixture{Fixture: f, clk: clk, client: linktest.Start(t, f.ClientConfig(t), true)}
}

// restart closes the host and starts it again on the same database.
func (b *bindFixture) restart(t *testing.T) {
	t.Helper()
	if err := b.Host.Close(); err != nil {
		t.Fatal(err)
	}
	b.StartHost(t)
	if err := b.Host.StartBind("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	b.client = linktest.Start(t, b.ClientConfig(t), true)
}

// post sends body to path of the bind endpoint as JSON and returns the
// HTTP status and the parsed answer.
func (b *bindFixture) post(t *testing.T, path string, body any) (int, bindapi.Answer) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+b.Host.BindAddr()+path, "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a, err := bindapi.ParseAnswer(got)
	if err != nil {
		t.Fatalf("answer %q: %v", got, err)
	}
	return resp.StatusCode, a
}

func (b *bindFixture) start(t *testing.T, customer, pin, device string) (int, bindapi.Answer) {
	t.Helper()
	block := strings.ToUpper(hex.EncodeToString(linktest.PINBlock(t, b.Keys, pin)))
	return b.post(t, bindapi.PathStart, bindapi.StartRequest{Customer: customer, Device: device, PINBlock: block})
}

func (b *bindFixture) confirm(t *testing.T, customer, device, code string) (int, bindapi.Answer) {
	t.Helper()
	return b.post(t, bindapi.PathConfirm, bindapi.ConfirmRequest{Customer: customer, Device: device, Code: code})
}

// inbox reads the simulated SMS inbox of customer over HTTP.
func (b *bindFixture) inbox(t *testing.T, customer string) []bindapi.SMS {
	t.Helper()
	resp, err := http.Get("http://" + b.Host.BindAddr() + bindapi.PathSimSMS + "?to=" + customer)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	in, err := bindapi.ParseInbox(raw)
	if err != nil || resp.StatusCode != http.StatusOK || in.To != customer {
		t.Fatalf("inbox: HTTP %d %q: %v", resp.StatusCode, raw, err)
	}
	return in.Messages
}

// lastCode is the code of the newest SMS to customer.
func (b *bindFixture) lastCode(t *testing.T, customer string) string {
	t.Helper()
	msgs := b.inbox(t, customer)
	if len(msgs) == 0 {
		t.Fatal("no SMS")
	}
	code, err := bindapi.CodeIn(msgs[len(msgs)-1].Text)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// withdraw authorizes 100.00 for customer from device over the host link.
func (b *bindFixture) withdraw(t *testing.T, customer, pin, device string) string {
	t.Helper()
	r := req(t, b.Fixture, customer, pin, 10000)
	r.DeviceID, r.Time = device, b.clk.Now()
	return authorize(t, b.client, r).ResponseCode
}

// otherCode is a well-formed code that is not code.
func otherCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

func wantAnswer(t *testing.T, status int, a bindapi.Answer, wantStatus int, want bindapi.Answer) {
	t.Helper()
	if want.Meaning == "" {
		want.Meaning = bindapi.ResultText(want.Result)
	}
	if status != wantStatus || a.Result != want.Result || a.ResponseCode != want.ResponseCode || a.TriesLeft != want.TriesLeft ||
		a.SentTo != want.SentTo || a.Meaning != want.Meaning || (want.ExpiresAt != nil && (a.ExpiresAt == nil || !a.ExpiresAt.Equal(*want.ExpiresAt))) {
		t.Fatalf("answer HTTP %d %+v, want HTTP %d %+v", status, a, wantStatus, want)
	}
}

// The happy path over the bind endpoint: a phone that is not bound is
// declined 57; the customer's PIN and the code from the SMS bind it; its
// withdrawals are then approved; asking again sends no code.
func TestBindHappyPath(t *testing.T) {
	b := newBindFixture(t, nil)
	if rc := b.withdraw(t, "C-ALICE", "1234", newPhone); rc != wire.RCPhoneNotBound {
		t.Fatalf("unbound phone: %s, want 57", rc)
	}
	if rc := b.withdraw(t, "C-ALICE", "1234", ""); rc != wire.RCPhoneNotBound {
		t.Fatalf("no device ID: %s, want 57", rc)
	}
	before := mustBalance(t, b.Host, "C-ALICE")

	status, a := b.start(t, "C-ALICE", "1234", newPhone)
	expires := b.clk.Now().Add(hostsim.DefaultCodeTTL)
	wantAnswer(t, status, a, http.StatusOK, bindapi.Answer{Result: bindapi.CodeSent, SentTo: "***LICE", ExpiresAt: &expires, TriesLeft: hostsim.DefaultMaxTries})
	msgs := b.inbox(t, "C-ALICE")
	if len(msgs) != 1 || !msgs[0].SentAt.Equal(b.clk.Now()) || msgs[0].To != "C-ALICE" {
		t.Fatalf("inbox %+v, want one message sent now", msgs)
	}
	code := b.lastCode(t, "C-ALICE")
	if want := bindapi.MessageText(code, hostsim.DefaultCodeTTL); msgs[0].Text != want {
		t.Fatalf("SMS %q, want %q", msgs[0].Text, want)
	}
	if bound, err := b.Host.Bound("C-ALICE", newPhone); err != nil || bound {
		t.Fatalf("bound before the code: %v, %v", bound, err)
	}

	status, a = b.confirm(t, "C-ALICE", newPhone, code)
	wantAnswer(t, status, a, http.StatusOK, bindapi.Answer{Result: bindapi.Bound})
	if bound, err := b.Host.Bound("C-ALICE", newPhone); err != nil || !bound {
		t.Fatalf("not bound after the code: %v, %v", bound, err)
	}
	if rc := b.withdraw(t, "C-ALICE", "1234", newPhone); rc != wire.RCApproved {
		t.Fatalf("bound phone: %s, want 00", rc)
	}
	if got := mustBalance(t, b.Host, "C-ALICE"); got != before-10000 {
		t.Fatalf("balance %d, want %d", got, before-10000)
	}
	// Bound to C-ALICE only.
	if rc := b.withdraw(t, "C-BOB", "4321", newPhone); rc != wire.RCPhoneNotBound {
		t.Fatalf("phone bound to another customer: %s, want 57", rc)
	}
	// A repeated confirm (its answer lost) is answered bound again; a new
	// start sends no code.
	status, a = b.confirm(t, "C-ALICE", newPhone, code)
	wantAnswer(t, status, a, http.StatusOK, bindapi.Answer{Result: bindapi.Bound})
	status, a = b.start(t, "C-ALICE", "1234", newPhone)
	wantAnswer(t, status, a, http.StatusOK, bindapi.Answer{Result: bindapi.AlreadyBound})
	if n := len(b.inbox(t, "C-ALICE")); n != 1 {
		t.Fatalf("%d SMS, want 1", n)
	}
	// The code is never logged, nor the device ID; the database holds
	// neither in clear.
	raw, err := os.ReadFile(b.Config.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{code, newPhone} {
		if strings.Contains(b.HostLog.String(), secret) {
			t.Errorf("%q is in the host's log", secret)
		}
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("%q is in the host's database in clear", secret)
		}
	}
}

// A wrong code counts and says how many tries are left; the right one
// still binds while tries are left.
func TestBindWrongCode(t *testing.T) {
	b := newBindFixture(t, nil)
	b.start(t, "C-BOB", "4321", newPhone)
	code := b.lastCode(t, "C-BOB")
	status, a := b.confirm(t, "C-BOB", newPhone, otherCode(code))
	wantAnswer(t, status, a, http.StatusForbidden, bindapi.Answer{Result: bindapi.WrongCode, TriesLeft: 2})
	status, a = b.confirm(t, "C-BOB", newPhone, otherCode(code))
	wantAnswer(t, status, a, http.StatusForbidden, bindapi.Answer{Result: bindapi.WrongCode, TriesLeft: 1})
	if bound, _ := b.Host.Bound("C-BOB", newPhone); bound {
		t.Fatal("a wrong code bound the phone")
	}
	// The code is the customer's and phone's: another phone cannot use it.
	status, a = b.confirm(t, "C-BOB", linktest.Device, code)
	wantAnswer(t, status, a, http.StatusOK, bindapi.Answer{Result: bindapi.Bound}) // linktest.Device is bound to C-BOB already
	status, a = b.confirm(t, "C-BOB", "0000000000000000000000000000000A", code)
	wantAnswer(t, status, a, http.StatusNotFound, bindapi.Answer{Result: bindapi.NoCode})
	status, a = b.confirm(t, "C-BOB", newPhone, code)
	wantAnswer(t, status, a, http.StatusOK, bindapi.Answer{Result: bindapi.Bound})
}

// The code is valid for CodeTTL on the host's clock: a second before,
// it is still checked; at the expiry it is refused, even when right.
func TestBindExpiredCode(t *testing.T) {
	b := newBindFixture(t, func(c *hostsim.Config) { c.Binding.CodeTTL = 2 * time.Minute })
	b.start(t, "C-ALICE", "1234", newPhone)
	code := b.lastCode(t, "C-ALICE")
	b.clk.Advance(2*time.Minute - time.Second)
	status, a := b.confirm(t, "C-ALICE", newPhone, otherCode(code))
	wantAnswer(t, status, a, http.StatusForbidden, bindapi.Answer{Result: bindapi.WrongCode, TriesLeft: 2})
	b.clk.Advance(time.Second)
	status, a = b.confirm(t, "C-ALICE", newPhone, code)
	wantAnswer(t, status, a, http.StatusGone, bindapi.Answer{Result: bindapi.CodeExpired})
	if bound, _ := b.Host.Bound("C-ALICE", newPhone); bound {
		t.Fatal("an expired code bound the phone")
	}
	// A new code works.
	status, _ = b.start(t, "C-ALICE", "1234", newPhone)
	if status != http.StatusOK {
		t.Fatalf("new code: HTTP %d", status)
	}
	status, a = b.confirm(t, "C-ALICE", newPhone, b.lastCode(t, "C-ALICE"))
	wantAnswer(t, status, a, http.StatusOK, bindapi.Answer{Result: bindapi.Bound})
}

// The MaxTries-th wrong code voids the code: the right one no longer
// binds; a new start sends a new code that does.
func TestBindTooManyTries(t *testing.T) {
	b := newBindFixture(t, nil)
	b.start(t, "C-ALICE", "1234", newPhone)
	first := b.lastCode(t, "C-ALICE")
	for i, want := range []bindapi.Answer{{Result: bindapi.WrongCode, TriesLeft: 2}, {Result: bindapi.WrongCode, TriesLeft: 1}, {Result: bindapi.TooManyTries}} {
		status, a := b.confirm(t, "C-ALICE", newPhone, otherCode(first))
		wantStatus := http.StatusForbidden
		t.Logf("try %d", i+1)
		wantAnswer(t, status, a, wantStatus, want)
	}
	status, a := b.confirm(t, "C-ALICE", newPhone, first)
	wantAnswer(t, status, a, http.StatusForbidden, bindapi.Answer{Result: bindapi.TooManyTries})
	if bound, _ := b.Host.Bound("C-ALICE", newPhone); bound {
		t.Fatal("a void code bound the phone")
	}
	b.start(t, "C-ALICE", "1234", newPhone)
	second := b.lastCode(t, "C-ALICE")
	status, a = b.confirm(t, "C-ALICE", newPhone, second)
	wantAnswer(t, status, a, http.StatusOK, bindapi.Answer{Result: bindapi.Bound})
}

// Start checks the customer and the PIN first (the withdrawal's codes),
// counting wrong PINs with the withdrawals'; nothing is sent then.
func TestBindStartRefusals(t *testing.T) {
	b := newBindFixture(t, nil)
	status, a := b.start(t, "C-NOBODY", "1234", newPhone)
	wantAnswer(t, status, a, http.StatusForbidden, bindapi.Answer{Result: bindapi.Refused, ResponseCode: "14", Meaning: wire.ResponseText("14")})
	status, a = b.start(t, "C-BLOCKED", "1111", newPhone)
	wantAnswer(t, status, a, http.StatusForbidden, bindapi.Answer{Result: bindapi.Refused, ResponseCode: "05", Meaning: wire.ResponseText("05")})
	status, a = b.start(t, "C-PIN", "9999", newPhone)
	wantAnswer(t, status, a, http.StatusForbidden, bindapi.Answer{Result: bindapi.Refused, ResponseCode: "55", Meaning: wire.ResponseText("55")})
	// The second wrong PIN of a withdrawal from the bound phone, the
	// third of a bind: 75, and the bound phone's withdrawals too.
	if rc := b.withdraw(t, "C-PIN", "9999", linktest.Device); rc != wire.RCIncorrectPIN {
		t.Fatalf("withdrawal with a wrong PIN: %s", rc)
	}
	status, a = b.start(t, "C-PIN", "9999", newPhone)
	wantAnswer(t, status, a, http.StatusForbidden, bindapi.Answer{Result: bindapi.Refused, ResponseCode: "75", Meaning: wire.ResponseText("75")})
	if rc := b.withdraw(t, "C-PIN", "2222", linktest.Device); rc != hostsim.RCPINTriesExceeded {
		t.Fatalf("withdrawal after three wrong PINs: %s, want 75", rc)
	}
	for _, c := range []string{"C-NOBODY", "C-BLOCKED", "C-PIN"} {
		if n := len(b.inbox(t, c)); n != 0 {
			t.Fatalf("%s: %d SMS after a refusal", c, n)
		}
	}
	status, a = b.confirm(t, "C-PIN", newPhone, "123456")
	wantAnswer(t, status, a, http.StatusNotFound, bindapi.Answer{Result: bindapi.NoCode})
}

// A phone that is not bound cannot try PINs: its withdrawals are declined
// 57 before the PIN is looked at, and do not count as wrong PINs.
func TestUnboundPhoneCannotTryPINs(t *testing.T) {
	b := newBindFixture(t, nil)
	for range 5 {
		if rc := b.withdraw(t, "C-ALICE", "0000", newPhone); rc != wire.RCPhoneNotBound {
			t.Fatalf("unbound phone, wrong PIN: %s, want 57", rc)
		}
	}
	if rc := b.withdraw(t, "C-ALICE", "1234", linktest.Device); rc != wire.RCApproved {
		t.Fatalf("bound phone, right PIN after the unbound phone's tries: %s, want 00", rc)
	}
	// A device ID that is not one: 30. Unknown and blocked customers keep
	// their codes (14, 05).
	if rc := b.withdraw(t, "C-ALICE", "1234", "not-a-device"); rc != wire.RCFormatError {
		t.Fatalf("malformed device ID: %s, want 30", rc)
	}
	if rc := b.withdraw(t, "C-NOBODY", "1234", newPhone); rc != wire.RCInvalidAccount {
		t.Fatalf("unknown customer: %s, want 14", rc)
	}
	if rc := b.withdraw(t, "C-BLOCKED", "1111", newPhone); rc != wire.RCDoNotHonour {
		t.Fatalf("blocked customer: %s, want 05", rc)
	}
}

// With Binding.Optional (apps from before binding) any phone, or none, may
// withdraw.
func TestBindingOptional(t *testing.T) {
	b := newBindFixture(t, func(c *hostsim.Config) { c.Binding.Optional = true })
	for _, device := range []string{"", newPhone, linktest.Device} {
		if rc := b.withdraw(t, "C-ALICE", "1234", device); rc != wire.RCApproved {
			t.Fatalf("device %q: %s, want 00", device, rc)
		}
	}
}

// At most MaxCodesPerDay codes a day per customer; the next day more.
func TestBindTooManyCodes(t *testing.T) {
	b := newBindFixture(t, func(c *hostsim.Config) { c.Binding.MaxCodesPerDay = 2 })
	for range 2 {
		if status, a := b.start(t, "C-ALICE", "1234", newPhone); status != http.StatusOK || a.Result != bindapi.CodeSent {
			t.Fatalf("HTTP %d %+v", status, a)
		}
	}
	status, a := b.start(t, "C-ALICE", "1234", newPhone)
	if status != http.StatusTooManyRequests || a.Result != bindapi.TooManyCodes {
		t.Fatalf("third code of the day: HTTP %d %+v", status, a)
	}
	if n := len(b.inbox(t, "C-ALICE")); n != 2 {
		t.Fatalf("%d SMS, want 2", n)
	}
	b.clk.Advance(14 * time.Hour) // 2030-03-05 00:00 UTC
	if status, a := b.start(t, "C-ALICE", "1234", newPhone); status != http.StatusOK || a.Result != bindapi.CodeSent {
		t.Fatalf("next day: HTTP %d %+v", status, a)
	}
}

// Bindings and pending codes are in the host's database: they survive a
// restart (the in-memory SMS inbox does not).
func TestBindingSurvivesRestart(t *testing.T) {
	b := newBindFixture(t, nil)
	b.start(t, "C-ALICE", "1234", newPhone)
	code := b.lastCode(t, "C-ALICE")
	b.restart(t)
	if n := len(b.inbox(t, "C-ALICE")); n != 0 {
		t.Fatalf("%d SMS after a restart, want 0", n)
	}
	status, a := b.confirm(t, "C-ALICE", newPhone, code)
	wantAnswer(t, status, a, http.StatusOK, bindapi.Answer{Result: bindapi.Bound})
	b.restart(t)
	if bound, err := b.Host.Bound("C-ALICE", newPhone); err != nil || !bound {
		t.Fatalf("after a restart: bound %v, %v", bound, err)
	}
	if rc := b.withdraw(t, "C-ALICE", "1234", newPhone); rc != wire.RCApproved {
		t.Fatalf("bound phone after a restart: %s, want 00", rc)
	}
	// The seeded bindings are created once: a restart with a config that
	// no longer lists them keeps them.
	b.Host.Close()
	b.Config.Binding.Devices = nil
	b.restart(t)
	if bound, _ := b.Host.Bound("C-BOB", linktest.Device); !bound {
		t.Fatal("seeded binding lost at a restart")
	}
}

// The endpoint: loopback only, JSON only, bounded, strict.
func TestBindEndpointGuards(t *testing.T) {
	b := newBindFixture(t, nil)
	if err := b.Host.StartBind("0.0.0.0:0"); !errors.Is(err, hostsim.ErrNotLoopback) {
		t.Fatalf("StartBind on every interface: %v, want ErrNotLoopback", err)
	}
	if err := b.Host.StartBind("127.0.0.1:0"); err == nil {
		t.Fatal("second StartBind accepted")
	}
	url := "http://" + b.Host.BindAddr()
	do := func(method, path, host, ctype, body string) (int, string) {
		t.Helper()
		r, err := http.NewRequest(method, url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			r.Host = host
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	good := `{"customer":"C-ALICE","device":"` + newPhone + `","code":"123456"}`
	for _, tc := range []struct {
		name                      string
		method, path, host, ctype string
		body                      string
		want                      int
	}{
		{"rebinding host", "POST", bindapi.PathConfirm, "bank.evil.example", "application/json", good, http.StatusMisdirectedRequest},
		{"form post", "POST", bindapi.PathConfirm, "", "text/plain", good, http.StatusUnsupportedMediaType},
		{"unknown field", "POST", bindapi.PathConfirm, "", "application/json", `{"customer":"C-ALICE","device":"` + newPhone + `","code":"123456","x":1}`, http.StatusBadRequest},
		{"two objects", "POST", bindapi.PathConfirm, "", "application/json", good + good, http.StatusBadRequest},
		{"short code", "POST", bindapi.PathConfirm, "", "application/json", `{"customer":"C-ALICE","device":"` + newPhone + `","code":"12345"}`, http.StatusBadRequest},
		{"lower-case device", "POST", bindapi.PathStart, "", "application/json", `{"customer":"C-ALICE","device":"` + strings.ToLower(newPhone) + `","pinBlock":"0123456789ABCDEF"}`, http.StatusBadRequest},
		{"too large", "POST", bindapi.PathStart, "", "application/json", `{"customer":"` + strings.Repeat("A", bindapi.MaxBody) + `"}`, http.StatusRequestEntityTooLarge},
		{"GET start", "GET", bindapi.PathStart, "", "", "", http.StatusMethodNotAllowed},
		{"inbox without number", "GET", bindapi.PathSimSMS, "", "", "", http.StatusBadRequest},
		{"localhost host", "POST", bindapi.PathConfirm, "localhost:1", "application/json; charset=utf-8", good, http.StatusNotFound},
	} {
		if got, body := do(tc.method, tc.path, tc.host, tc.ctype, tc.body); got != tc.want {
			t.Errorf("%s: HTTP %d %s, want %d", tc.name, got, body, tc.want)
		}
	}
}
