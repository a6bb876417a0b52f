package xfs4iot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

var key = []byte("response token test key 01234567")

// sign builds a response token from its fields (without TOKENLENGTH,
// which it fills in) as a device would.
func sign(fields string) string {
	n := len("NONCE=X,TOKENFORMAT=1,TOKENLENGTH=0000,") + len(fields) + len(",HMACSHA256=") + 64
	_ = n
	for {
		body := fmt.Sprintf("NONCE=%s,TOKENFORMAT=1,TOKENLENGTH=%04d,%s,HMACSHA256=", strings.Repeat("A", 32), n, fields)
		if len(body)+64 == n {
			m := hmac.New(sha256.New, key)
			m.Write([]byte(body))
			return body + strings.ToUpper(hex.EncodeToString(m.Sum(nil)))
		}
		n = len(body) + 64
	}
}

func TestParseResponseToken(t *testing.T) {
	id := strings.Repeat("AB", 32)
	nonce := strings.Repeat("A", 32)
	good := sign("DISPENSEID=" + id + ",DISPENSED1=250.00CNY,PRESENTED1=YES,PRESENTEDAMOUNT1=250.00CNY,RETRACTED1=YES,RETRACTEDAMOUNT1=250.00CNY")
	tok, err := VerifyResponseToken(good, nonce, key, 2)
	if err != nil {
		t.Fatal(err)
	}
	if tok.DispenseID != id || tok.Currency != "CNY" || tok.Dispensed != 25000 || !tok.Presented || tok.PresentedAmount != 25000 || !tok.Retracted || tok.RetractedAmount != 25000 {
		t.Fatalf("parsed %+v", tok)
	}
	if _, err := VerifyResponseToken(good, strings.Repeat("B", 32), key, 2); !errors.Is(err, ErrUnverified) {
		t.Errorf("other nonce: %v", err)
	}
	if _, err := VerifyResponseToken(good, nonce, []byte("another key"), 2); !errors.Is(err, ErrUnverified) {
		t.Errorf("other key: %v", err)
	}
	unknown, err := ParseResponseToken(sign("DISPENSEID="+id+",DISPENSED1=?,PRESENTED1=NO,RETRACTED1=NO"), 2)
	if err != nil || unknown.Dispensed != -1 || unknown.Currency != "" {
		t.Fatalf("count unknown: %+v, %v", unknown, err)
	}
	none, err := ParseResponseToken(sign("DISPENSED1=0.00CNY,PRESENTED1=NO,RETRACTED1=NO"), 2)
	if err != nil || none.DispenseID != "" || none.Dispensed != 0 {
		t.Fatalf("no dispense: %+v, %v", none, err)
	}
	for _, tc := range []struct{ token, want string }{
		{sign("DISPENSED1=250.00CNY,RETRACTED1=NO,PRESENTED1=NO"), `key "RETRACTED1" out of order or unknown`},
		{sign("DISPENSED1=250.00CNY,PRESENTED1=YES,RETRACTED1=NO"), "PRESENTEDAMOUNT1 must come with PRESENTED1=YES only"},
		{sign("DISPENSED1=250.0CNY,PRESENTED1=NO,RETRACTED1=NO"), `DISPENSED1 amount "250.0" must have 2 decimals`},
		{sign("DISPENSED1=250.00CNY,PRESENTED1=YES,PRESENTEDAMOUNT1=250.00EUR,RETRACTED1=NO"), `PRESENTEDAMOUNT1 currency "EUR"`},
		{sign("DISPENSED1=250.00CNY,PRESENTED1=MAYBE,RETRACTED1=NO"), `PRESENTED1 "MAYBE"`},
		{sign("DISPENSEID=abc,DISPENSED1=1.00CNY,PRESENTED1=NO,RETRACTED1=NO"), "DISPENSEID must be 64 upper-case hex digits"},
		{sign("DISPENSED1=1.00CNY,PRESENTED1=NO,RETRACTED1=NO,EXTRA=1"), `key "EXTRA" out of order or unknown`},
		{sign("PRESENTED1=NO,RETRACTED1=NO"), `key "PRESENTED1" out of order or unknown`},
		{strings.Replace(sign("DISPENSED1=1.00CNY,PRESENTED1=NO,RETRACTED1=NO"), "TOKENLENGTH=0", "TOKENLENGTH=1", 1), "TOKENLENGTH"},
		{"NONCE=A,TOKENFORMAT=1", "no HMACSHA256"},
	} {
		_, err := ParseResponseToken(tc.token, 2)
		if !errors.Is(err, ErrResponseToken) || !strings.HasPrefix(err.Error(), "xfs4iot: malformed response token: "+tc.want) {
			t.Errorf("%s:\n got %v\nwant %s", tc.token, err, tc.want)
		}
	}
}

// FuzzParseResponseToken: nothing panics; an accepted token has a
// consistent shape.
func FuzzParseResponseToken(f *testing.F) {
	f.Add(sign("DISPENSEID="+strings.Repeat("AB", 32)+",DISPENSED1=250.00CNY,PRESENTED1=YES,PRESENTEDAMOUNT1=250.00CNY,RETRACTED1=NO"), 2)
	f.Add(sign("DISPENSED1=?,PRESENTED1=NO,RETRACTED1=NO"), 0)
	f.Fuzz(func(t *testing.T, s string, exponent int) {
		tok, err := ParseResponseToken(s, exponent%4)
		if err != nil {
			return
		}
		if len(tok.HMAC) != 32 || !strings.HasSuffix(tok.Signed, ",HMACSHA256=") || tok.Dispensed < -1 ||
			(!tok.Presented && tok.PresentedAmount != 0) || (!tok.Retracted && tok.RetractedAmount != 0) {
			t.Fatalf("accepted %q as %+v", s, tok)
		}
	})
}
