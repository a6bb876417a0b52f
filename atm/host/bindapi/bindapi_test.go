package bindapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/host/bindapi"
)

const device = "A5DF01FC21E4290E59699A870ABD8CEF"

func TestParseStart(t *testing.T) {
	good := `{"customer":"13800000001","device":"` + device + `","pinBlock":"8586F4DFF00B7403"}`
	r, err := bindapi.ParseStart([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if want := (bindapi.StartRequest{Customer: "13800000001", Device: device, PINBlock: "8586F4DFF00B7403"}); r != want {
		t.Fatalf("got %+v", r)
	}
	for _, bad := range []string{
		``, `{}`, `[]`, `null`, good + `{}`, good + ` x`,
		`{"customer":"13800000001","device":"` + device + `","pinBlock":"8586F4DFF00B7403","extra":1}`,
		`{"customer":"","device":"` + device + `","pinBlock":"8586F4DFF00B7403"}`,
		`{"customer":"1380 0001","device":"` + device + `","pinBlock":"8586F4DFF00B7403"}`,
		`{"customer":"` + strings.Repeat("1", bindapi.MaxCustomerLen+1) + `","device":"` + device + `","pinBlock":"8586F4DFF00B7403"}`,
		`{"customer":"13800000001","device":"` + strings.ToLower(device) + `","pinBlock":"8586F4DFF00B7403"}`,
		`{"customer":"13800000001","device":"` + device + `","pinBlock":"8586f4dff00b7403"}`,
		`{"customer":"13800000001","device":"` + device + `","pinBlock":"8586F4DFF00B74"}`,
		`{"customer":13800000001,"device":"` + device + `","pinBlock":"8586F4DFF00B7403"}`,
		`{"customer":"13800000001"`,
		`{"customer":"` + strings.Repeat("1", bindapi.MaxBody) + `"}`,
	} {
		if _, err := bindapi.ParseStart([]byte(bad)); !errors.Is(err, bindapi.ErrFormat) {
			t.Errorf("ParseStart(%.60q) = %v, want ErrFormat", bad, err)
		}
	}
}

func TestParseConfirm(t *testing.T) {
	r, err := bindapi.ParseConfirm([]byte(`{"customer":"C1","device":"` + device + `","code":"012345"}`))
	if err != nil || r != (bindapi.ConfirmRequest{Customer: "C1", Device: device, Code: "012345"}) {
		t.Fatalf("got %+v, %v", r, err)
	}
	for _, code := range []string{"", "12345", "1234567", "12345a", "１２３４５６"} {
		b, _ := json.Marshal(bindapi.ConfirmRequest{Customer: "C1", Device: device, Code: code})
		if _, err := bindapi.ParseConfirm(b); !errors.Is(err, bindapi.ErrFormat) {
			t.Errorf("code %q: %v, want ErrFormat", code, err)
		}
	}
}

func TestParseAnswer(t *testing.T) {
	at := time.Date(2030, 3, 4, 10, 5, 0, 0, time.UTC)
	in := bindapi.Answer{Result: bindapi.CodeSent, SentTo: "*******0001", ExpiresAt: &at, TriesLeft: 3, Meaning: bindapi.ResultText(bindapi.CodeSent)}
	b, _ := json.Marshal(in)
	a, err := bindapi.ParseAnswer(b)
	if err != nil || !reflect.DeepEqual(a, in) {
		t.Fatalf("round trip %s: %+v, %v", b, a, err)
	}
	for _, bad := range []string{`{"result":"ok"}`, `{"result":"bound","triesLeft":-1}`, `{"result":"bound","x":1}`, `{}`} {
		if _, err := bindapi.ParseAnswer([]byte(bad)); !errors.Is(err, bindapi.ErrFormat) {
			t.Errorf("ParseAnswer(%s) = %v, want ErrFormat", bad, err)
		}
	}
}

// Every result has its plain words, and OK is true exactly for those a
// client goes on from.
func TestResults(t *testing.T) {
	ok := map[string]bool{bindapi.CodeSent: true, bindapi.AlreadyBound: true, bindapi.Bound: true}
	for _, r := range []string{bindapi.CodeSent, bindapi.AlreadyBound, bindapi.Refused, bindapi.TooManyCodes, bindapi.Bound, bindapi.WrongCode,
		bindapi.TooManyTries, bindapi.CodeExpired, bindapi.NoCode, bindapi.BadRequest, bindapi.Failed} {
		if bindapi.ResultText(r) == "" {
			t.Errorf("%s has no text", r)
		}
		if got := (bindapi.Answer{Result: r}).OK(); got != ok[r] {
			t.Errorf("%s: OK() = %v", r, got)
		}
		if _, err := bindapi.ParseAnswer([]byte(`{"result":"` + r + `"}`)); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
}

func TestCodeIn(t *testing.T) {
	for _, ttl := range []time.Duration{5 * time.Minute, 90 * time.Second} {
		text := bindapi.MessageText("004217", ttl)
		if code, err := bindapi.CodeIn(text); err != nil || code != "004217" {
			t.Fatalf("CodeIn(%q) = %q, %v", text, code, err)
		}
	}
	if got := bindapi.MessageText("004217", 5*time.Minute); !strings.Contains(got, "expires in 5 minutes") {
		t.Fatalf("text %q", got)
	}
	for _, text := range []string{"", "no code", "12345", "1234567", "123456 and 654321", "code 123456789"} {
		if code, err := bindapi.CodeIn(text); !errors.Is(err, bindapi.ErrFormat) {
			t.Errorf("CodeIn(%q) = %q, %v; want ErrFormat", text, code, err)
		}
	}
}

// FuzzParse feeds outside bytes to every parser of the package: none
// panics, and what one accepts re-encodes to a body it accepts again with
// the same value.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"customer":"13800000001","device":"` + device + `","pinBlock":"8586F4DFF00B7403"}`))
	f.Add([]byte(`{"customer":"13800000001","device":"` + device + `","code":"123456"}`))
	f.Add([]byte(`{"result":"code_sent","sentTo":"*******0001","expiresAt":"2030-03-04T10:05:00Z","triesLeft":3}`))
	f.Add([]byte(`{"to":"13800000001","messages":[{"to":"13800000001","sentAt":"2030-03-04T10:00:00Z","text":"123456 is your code"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := bindapi.ParseStart(b); err == nil {
			again, _ := json.Marshal(r)
			if r2, err := bindapi.ParseStart(again); err != nil || r2 != r {
				t.Fatalf("start %+v does not round-trip: %v", r, err)
			}
		}
		if r, err := bindapi.ParseConfirm(b); err == nil {
			if !bindapi.ValidCode(r.Code) {
				t.Fatalf("accepted code %q", r.Code)
			}
			again, _ := json.Marshal(r)
			if r2, err := bindapi.ParseConfirm(again); err != nil || r2 != r {
				t.Fatalf("confirm %+v does not round-trip: %v", r, err)
			}
		}
		if a, err := bindapi.ParseAnswer(b); err == nil {
			again, _ := json.Marshal(a)
			if _, err := bindapi.ParseAnswer(again); err != nil {
				t.Fatalf("answer %+v does not round-trip: %v", a, err)
			}
		}
		if in, err := bindapi.ParseInbox(b); err == nil {
			for _, m := range in.Messages {
				if code, err := bindapi.CodeIn(m.Text); err == nil && (!bindapi.ValidCode(code) || !strings.Contains(m.Text, code)) {
					t.Fatalf("CodeIn(%q) = %q", m.Text, code)
				}
			}
		}
		if code, err := bindapi.CodeIn(string(b)); err == nil && (!bindapi.ValidCode(code) || !strings.Contains(string(b), code)) {
			t.Fatalf("CodeIn(%q) = %q", b, code)
		}
	})
}

func ExampleCodeIn() {
	text := bindapi.MessageText("004217", 5*time.Minute)
	fmt.Println(text)
	fmt.Println(bindapi.CodeIn(text))
	// Output:
	// [Cardless Bank] 004217 is your code to bind a new phone to your account for cardless withdrawals. It expires in 5 minutes. Never tell it to anyone, not even the bank.
	// 004217 <nil>
}
