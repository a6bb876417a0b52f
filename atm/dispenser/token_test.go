package dispenser

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const testNonce = "254611E63B2531576314E86527338D61"

var testKey = []byte("0123456789abcdef0123456789abcdef") // test-only key

func mustToken(t *testing.T, nonce string, amount int64, cur string, exp int) string {
	t.Helper()
	tok, err := BuildToken(nonce, amount, cur, exp, HMACSHA256(testKey))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBuildTokenShape(t *testing.T) {
	tok := mustToken(t, testNonce, 5000, "EUR", 2)
	prefix := "NONCE=254611E63B2531576314E86527338D61,TOKENFORMAT=1,TOKENLENGTH=0164,DISPENSE1=50.00EUR,HMACSHA256="
	if !strings.HasPrefix(tok, prefix) || len(tok) != 164 {
		t.Fatalf("token %q (len %d) does not have the reference shape", tok, len(tok))
	}
	// Independent HMAC computation over the text up to and including "HMACSHA256=".
	m := hmac.New(sha256.New, testKey)
	m.Write([]byte(prefix))
	if want := strings.ToUpper(hex.EncodeToString(m.Sum(nil))); tok[len(prefix):] != want {
		t.Fatalf("HMAC %s, want %s", tok[len(prefix):], want)
	}
	p, err := ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Nonce != testNonce || p.Length != 164 || p.Value != 5000 || p.Decimals != 2 || p.Currency != "EUR" || p.Signed != prefix {
		t.Fatalf("parsed %+v", p)
	}
	if a, ok := p.MaxAmount(2); !ok || a != 5000 {
		t.Fatalf("MaxAmount(2) = %d %v", a, ok)
	}
	if a, ok := p.MaxAmount(3); !ok || a != 50000 {
		t.Fatalf("MaxAmount(3) = %d %v", a, ok)
	}
	if a, ok := p.MaxAmount(0); !ok || a != 50 {
		t.Fatalf("MaxAmount(0) = %d %v", a, ok)
	}
}

func TestFormatAmount(t *testing.T) {
	for _, c := range []struct {
		minor int64
		exp   int
		want  string
	}{{5000, 2, "50.00"}, {5, 2, "0.05"}, {0, 2, "0.00"}, {500, 0, "500"}, {1234567, 3, "1234.567"}, {10, 1, "1.0"}} {
		if got := FormatAmount(c.minor, c.exp); got != c.want {
			t.Errorf("FormatAmount(%d, %d) = %q, want %q", c.minor, c.exp, got, c.want)
		}
	}
}

func TestBuildTokenErrors(t *testing.T) {
	mac := HMACSHA256(testKey)
	cases := []struct {
		nonce string
		amt   int64
		cur   string
		exp   int
		mac   func([]byte) ([]byte, error)
	}{
		{"254611e63b2531576314e86527338d61", 100, "EUR", 2, mac}, // lower case
		{"ABC", 100, "EUR", 2, mac},
		{testNonce, 0, "EUR", 2, mac},
		{testNonce, 100, "eur", 2, mac},
		{testNonce, 100, "EURO", 2, mac},
		{testNonce, 100, "EUR", 9, mac},
		{testNonce, 100, "EUR", 2, nil},
		{testNonce, 100, "EUR", 2, func([]byte) ([]byte, error) { return []byte{1}, nil }},
		{testNonce, 100, "EUR", 2, func([]byte) ([]byte, error) { return nil, errors.New("hsm down") }},
		{testNonce, 100, "EUR", 2, HMACSHA256(nil)},
	}
	for i, c := range cases {
		if tok, err := BuildToken(c.nonce, c.amt, c.cur, c.exp, c.mac); err == nil {
			t.Errorf("case %d: BuildToken succeeded: %s", i, tok)
		}
	}
}

func TestVerifyToken(t *testing.T) {
	good := mustToken(t, testNonce, 5000, "EUR", 2)
	resign := func(signed string) string {
		// Re-sign text with a correct TOKENLENGTH, for format tests that
		// must not fail on the HMAC.
		sum, _ := HMACSHA256(testKey)([]byte(signed))
		return signed + strings.ToUpper(hex.EncodeToString(sum))
	}
	other := strings.Repeat("A", 32)
	forged := good[:len(good)-64] + strings.Repeat("0", 64)
	flipped := strings.Replace(good, "50.00EUR", "90.00EUR", 1) // same length, HMAC now wrong
	otherKey, _ := BuildToken(testNonce, 5000, "EUR", 2, HMACSHA256([]byte("another key, 32 bytes long......")))
	tests := []struct {
		name   string
		token  string
		nonce  string
		amount int64
		cur    string
		want   error
	}{
		{"ok exact", good, testNonce, 5000, "EUR", nil},
		{"ok less", good, testNonce, 2000, "EUR", nil},
		{"missing", "", testNonce, 5000, "EUR", ErrInvalidToken},
		{"no nonce issued", good, "", 5000, "EUR", ErrNoCommandNonce},
		{"wrong nonce", good, other, 5000, "EUR", ErrInvalidTokenNonce},
		{"forged hmac", forged, testNonce, 5000, "EUR", ErrInvalidTokenHMAC},
		{"amount changed", flipped, testNonce, 9000, "EUR", ErrInvalidTokenHMAC},
		{"other key", otherKey, testNonce, 5000, "EUR", ErrInvalidTokenHMAC},
		{"over the amount", good, testNonce, 5001, "EUR", ErrInvalidToken},
		{"other currency", good, testNonce, 5000, "CNY", ErrInvalidToken},
		{"zero amount", good, testNonce, 0, "EUR", ErrInvalidToken},
		{"bad format", "hello", testNonce, 5000, "EUR", ErrInvalidTokenFormat},
		{"wrong length", strings.Replace(good, "TOKENLENGTH=0164", "TOKENLENGTH=0165", 1), testNonce, 5000, "EUR", ErrInvalidTokenFormat},
		{"lower-case hmac", good[:len(good)-64] + strings.ToLower(good[len(good)-64:]), testNonce, 5000, "EUR", ErrInvalidTokenFormat},
		{"extra key", resign("NONCE=" + testNonce + ",TOKENFORMAT=1,TOKENLENGTH=0168,DISPENSE1=50.00EUR,X=1,HMACSHA256="), testNonce, 5000, "EUR", ErrInvalidTokenFormat},
		{"nonce not first", resign("TOKENFORMAT=1,NONCE=" + testNonce + ",TOKENLENGTH=0164,DISPENSE1=50.00EUR,HMACSHA256="), testNonce, 5000, "EUR", ErrInvalidTokenFormat},
		{"format 2", resign("NONCE=" + testNonce + ",TOKENFORMAT=2,TOKENLENGTH=0164,DISPENSE1=50.00EUR,HMACSHA256="), testNonce, 5000, "EUR", ErrInvalidTokenFormat},
		{"no dispense", resign("NONCE=" + testNonce + ",TOKENFORMAT=1,TOKENLENGTH=0145,HMACSHA256="), testNonce, 5000, "EUR", ErrInvalidTokenFormat},
		{"too long", good + strings.Repeat(",", 1000), testNonce, 5000, "EUR", ErrInvalidTokenFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyToken(tt.token, tt.nonce, testKey, tt.amount, tt.cur, 2)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("VerifyToken: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !IsTokenError(err) {
				t.Fatalf("IsTokenError(%v) = false", err)
			}
			if strings.Contains(err.Error(), string(testKey)) {
				t.Fatal("error contains the key")
			}
		})
	}
}

func TestVerifyTokenExponents(t *testing.T) {
	// JPY has no minor unit: DISPENSE1=10000JPY covers 10000 minor units.
	nonce := strings.Repeat("B", 32)
	tok := mustToken(t, nonce, 10000, "JPY", 0)
	if !strings.Contains(tok, "DISPENSE1=10000JPY,") {
		t.Fatalf("token %s", tok)
	}
	if err := VerifyToken(tok, nonce, testKey, 10000, "JPY", 0); err != nil {
		t.Fatal(err)
	}
	if err := VerifyToken(tok, nonce, testKey, 10001, "JPY", 0); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("err = %v", err)
	}
	// A token written with fewer decimals than the currency is compared by value.
	tok = mustToken(t, nonce, 50, "CNY", 0) // "50CNY" = 5000 fen
	if err := VerifyToken(tok, nonce, testKey, 5000, "CNY", 2); err != nil {
		t.Fatal(err)
	}
	if err := VerifyToken(tok, nonce, testKey, 5001, "CNY", 2); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("err = %v", err)
	}
}

// TestVerifyTokenConfiguredExponent: the exponent is the device's
// configuration, not a guess from the currency code. XPF has no minor unit
// and is in no built-in table; a token for 500 XPF must not cover 50000.
func TestVerifyTokenConfiguredExponent(t *testing.T) {
	nonce := strings.Repeat("C", 32)
	tok := mustToken(t, nonce, 500, "XPF", 0)
	if !strings.Contains(tok, "DISPENSE1=500XPF,") {
		t.Fatalf("token %s", tok)
	}
	if err := VerifyToken(tok, nonce, testKey, 500, "XPF", 0); err != nil {
		t.Fatal(err)
	}
	for _, amt := range []int64{501, 50000} {
		if err := VerifyToken(tok, nonce, testKey, amt, "XPF", 0); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("VerifyToken(500XPF token, %d) = %v, want ErrInvalidToken", amt, err)
		}
	}
	// A DISPENSE1 finer than the currency's minor unit is refused, not rounded.
	tok = mustToken(t, nonce, 50005, "EUR", 3) // "50.005EUR"
	if err := VerifyToken(tok, nonce, testKey, 5000, "EUR", 2); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("inexact token: err = %v, want ErrInvalidToken", err)
	}
	if err := VerifyToken(tok, nonce, testKey, 50005, "EUR", 3); err != nil {
		t.Fatal(err)
	}
	// An exponent outside 0-4 is refused.
	for _, exp := range []int{-1, 5} {
		if err := VerifyToken(tok, nonce, testKey, 1, "EUR", exp); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("exponent %d: err = %v, want ErrInvalidToken", exp, err)
		}
	}
}

func TestCode(t *testing.T) {
	for err, want := range map[error]string{
		nil: "success", ErrInvalidTokenHMAC: "invalidTokenHMAC", ErrNoCommandNonce: "noCommandNonce",
		fmt.Errorf("x: %w", ErrTooManyItems):                                 "tooManyItems",
		&DispenseError{Code: "cashUnitError", Err: ErrJam, CountKnown: true}: "cashUnitError",
		errors.New("other"): "hardwareError",
	} {
		if got := Code(err); got != want {
			t.Errorf("Code(%v) = %q, want %q", err, got, want)
		}
	}
	de := &DispenseError{Code: "cashUnitError", Err: ErrJam, CountKnown: true, Dispensed: Mix{"A": 2}}
	if !errors.Is(fmt.Errorf("wrapped: %w", de), ErrJam) || errors.Is(de, ErrShortDispense) {
		t.Fatal("DispenseError does not unwrap to its sentinel only")
	}
	if got := de.Error(); got != "dispenser: notes jammed (cashUnitError), moved A:2" {
		t.Fatalf("Error() = %q", got)
	}
	if IsTokenError(de) {
		t.Fatal("jam is not a token error")
	}
}

func FuzzParseToken(f *testing.F) {
	key := []byte("fuzz key")
	f.Add("NONCE=254611E63B2531576314E86527338D61,TOKENFORMAT=1,TOKENLENGTH=0164,DISPENSE1=50.00EUR,HMACSHA256=" + strings.Repeat("A", 64))
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidTokenFormat) {
				t.Fatalf("ParseToken error %v does not wrap ErrInvalidTokenFormat", err)
			}
			if VerifyToken(s, testNonce, key, 1, "EUR", 2) == nil {
				t.Fatal("VerifyToken accepted an unparsable token")
			}
			return
		}
		if tok.Length != len(s) || len(s) > MaxTokenLength || len(tok.Nonce) != NonceLength || len(tok.HMAC) != 32 {
			t.Fatalf("accepted inconsistent token %q: %+v", s, tok)
		}
		if !strings.HasPrefix(s, tok.Signed) || !strings.HasSuffix(tok.Signed, ",HMACSHA256=") || len(tok.Signed)+64 != len(s) {
			t.Fatalf("signed part %q of %q", tok.Signed, s)
		}
		// A canonical token rebuilt from the parsed values and signed with
		// key verifies for exactly its amount, and not one minor unit more.
		re, err := BuildToken(tok.Nonce, tok.Value, tok.Currency, tok.Decimals, HMACSHA256(key))
		if err != nil || re[:len(re)-64] != tok.Signed {
			return // non-canonical spelling such as "050.00EUR" or zero
		}
		// For every currency exponent: an exact conversion verifies up to its
		// amount and not one minor unit more; an inexact one (or one out of
		// range) is refused outright.
		for exp := 0; exp <= 4; exp++ {
			amt, ok := tok.MaxAmount(exp)
			if !ok {
				if err := VerifyToken(re, tok.Nonce, key, 1, tok.Currency, exp); !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("token %q without an exact amount at exponent %d: %v", re, exp, err)
				}
				continue
			}
			if amt <= 0 || amt == 1<<63-1 {
				continue
			}
			if err := VerifyToken(re, tok.Nonce, key, amt, tok.Currency, exp); err != nil {
				t.Fatalf("rebuilt token %q does not verify for %d at exponent %d: %v", re, amt, exp, err)
			}
			if err := VerifyToken(re, tok.Nonce, key, amt+1, tok.Currency, exp); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("rebuilt token %q verifies above its amount at exponent %d: %v", re, exp, err)
			}
		}
	})
}
