package dispenser

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Token format limits (XFS4IoT end-to-end security).
const (
	MaxTokenLength = 1024 // characters, whole token
	NonceLength    = 32   // hex digits of a command nonce (128 bits)
	hmacKey        = "HMACSHA256="
	maxExponent    = 4 // most minor-unit digits of a currency (and of DISPENSE1)
)

// Token is a parsed XFS4IoT dispense token such as
//
//	NONCE=254611E63B2531576314E86527338D61,TOKENFORMAT=1,TOKENLENGTH=0164,DISPENSE1=50.00EUR,HMACSHA256=<64 hex>
type Token struct {
	Nonce    string // 32 upper-case hex digits
	Format   int    // TOKENFORMAT, always 1
	Length   int    // TOKENLENGTH, the length of the whole token
	Value    int64  // DISPENSE1 value as written, without the decimal point ("50.00" -> 5000)
	Decimals int    // digits after the decimal point in DISPENSE1 ("50.00" -> 2)
	Currency string // ISO 4217 code of DISPENSE1
	HMAC     []byte // 32 bytes
	Signed   string // the text the HMAC covers: everything up to and including "HMACSHA256="
}

// MaxAmount returns the token's DISPENSE1 value in minor units of a currency
// with the given exponent (0-4). ok is false if the exponent is out of
// range, if the value cannot be written exactly in those units (more
// decimals than the currency has: "50.005EUR" with exponent 2) or if it
// overflows.
func (t Token) MaxAmount(exponent int) (amount int64, ok bool) {
	if exponent < 0 || exponent > maxExponent {
		return 0, false
	}
	v := big.NewInt(t.Value)
	if exponent >= t.Decimals {
		v.Mul(v, pow10(exponent-t.Decimals))
	} else {
		q, r := new(big.Int).QuoRem(v, pow10(t.Decimals-exponent), new(big.Int))
		if r.Sign() != 0 {
			return 0, false
		}
		v = q
	}
	if !v.IsInt64() {
		return 0, false
	}
	return v.Int64(), true
}

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

// isUpperHex reports whether s is non-empty and only 0-9, A-F.
func isUpperHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func isCurrency(s string) bool {
	return len(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z'
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatAmount writes minor units with the currency's exponent, as a token
// does: FormatAmount(5000, 2) = "50.00", FormatAmount(500, 0) = "500".
func FormatAmount(minor int64, exponent int) string {
	s := strconv.FormatInt(minor, 10)
	if exponent <= 0 {
		return s
	}
	if len(s) <= exponent {
		s = strings.Repeat("0", exponent-len(s)+1) + s
	}
	return s[:len(s)-exponent] + "." + s[len(s)-exponent:]
}

// HMACSHA256 returns a MAC function for BuildToken computing HMAC-SHA256
// with key (for hosts and simulators holding the key in software; an HSM
// supplies its own function).
func HMACSHA256(key []byte) func(data []byte) ([]byte, error) {
	k := append([]byte(nil), key...)
	return func(data []byte) ([]byte, error) {
		if len(k) == 0 {
			return nil, errors.New("dispenser: empty token key")
		}
		m := hmac.New(sha256.New, k)
		m.Write(data)
		return m.Sum(nil), nil
	}
}

// BuildToken builds and signs a dispense token for the device's command
// nonce, allowing at most maxAmount minor units of currency (whose ISO 4217
// exponent is exponent). mac computes HMAC-SHA256 over the token text up to
// and including "HMACSHA256=" with the token key shared with the device.
func BuildToken(nonce string, maxAmount int64, currency string, exponent int, mac func(data []byte) ([]byte, error)) (string, error) {
	if len(nonce) != NonceLength || !isUpperHex(nonce) {
		return "", fmt.Errorf("%w: nonce must be %d upper-case hex digits", ErrInvalidTokenFormat, NonceLength)
	}
	if maxAmount <= 0 {
		return "", fmt.Errorf("%w: amount %d is not positive", ErrInvalidToken, maxAmount)
	}
	if !isCurrency(currency) {
		return "", fmt.Errorf("%w: currency %q is not an ISO 4217 code", ErrInvalidTokenFormat, currency)
	}
	if exponent < 0 || exponent > maxExponent {
		return "", fmt.Errorf("%w: currency exponent %d", ErrInvalidTokenFormat, exponent)
	}
	if mac == nil {
		return "", errors.New("dispenser: no MAC function")
	}
	body := ",TOKENFORMAT=1,TOKENLENGTH=%04d,DISPENSE1=" + FormatAmount(maxAmount, exponent) + currency + "," + hmacKey
	length := len("NONCE="+nonce) + len(fmt.Sprintf(body, 0)) + 2*sha256.Size
	if length > MaxTokenLength {
		return "", fmt.Errorf("%w: token would be %d characters", ErrInvalidTokenFormat, length)
	}
	signed := "NONCE=" + nonce + fmt.Sprintf(body, length)
	sum, err := mac([]byte(signed))
	if err != nil {
		return "", fmt.Errorf("dispenser: sign token: %w", err)
	}
	if len(sum) != sha256.Size {
		return "", fmt.Errorf("dispenser: MAC function returned %d bytes, want %d", len(sum), sha256.Size)
	}
	return signed + strings.ToUpper(hex.EncodeToString(sum)), nil
}

// ParseToken parses a dispense token with strict checks: at most 1024
// characters, comma-separated KEY=VALUE pairs, NONCE first and HMACSHA256
// last, each key once, only the keys NONCE, TOKENFORMAT, TOKENLENGTH,
// DISPENSE1 and HMACSHA256 (all required), TOKENFORMAT=1, TOKENLENGTH equal
// to the token's length in four digits, a 32-digit upper-case hex nonce, a
// 64-digit upper-case hex HMAC. Errors wrap ErrInvalidTokenFormat. It does
// not verify the HMAC; use VerifyToken.
func ParseToken(s string) (Token, error) {
	bad := func(format string, args ...any) (Token, error) {
		return Token{}, fmt.Errorf("%w: "+format, append([]any{ErrInvalidTokenFormat}, args...)...)
	}
	if len(s) > MaxTokenLength {
		return bad("%d characters, limit %d", len(s), MaxTokenLength)
	}
	if s == "" {
		return bad("empty")
	}
	hi := strings.LastIndex(s, ","+hmacKey)
	if hi < 0 {
		return bad("HMACSHA256 is not the last key")
	}
	var t Token
	t.Signed = s[:hi+1+len(hmacKey)]
	seen := map[string]bool{}
	pairs := strings.Split(s, ",")
	for i, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" || v == "" || strings.Contains(v, "=") {
			return bad("pair %d is not KEY=VALUE", i+1)
		}
		if seen[k] {
			return bad("key %.20q repeated", k)
		}
		seen[k] = true
		switch {
		case i == 0 && k != "NONCE":
			return bad("NONCE is not the first key")
		case i == len(pairs)-1 && k != "HMACSHA256":
			return bad("HMACSHA256 is not the last key")
		}
		switch k {
		case "NONCE":
			if len(v) != NonceLength || !isUpperHex(v) {
				return bad("NONCE must be %d upper-case hex digits", NonceLength)
			}
			t.Nonce = v
		case "TOKENFORMAT":
			if v != "1" {
				return bad("TOKENFORMAT %.10q not supported", v)
			}
			t.Format = 1
		case "TOKENLENGTH":
			if len(v) != 4 || !isDigits(v) {
				return bad("TOKENLENGTH must be 4 digits")
			}
			t.Length, _ = strconv.Atoi(v)
		case "DISPENSE1":
			if err := parseDispense(v, &t); err != nil {
				return bad("DISPENSE1: %v", err)
			}
		case "HMACSHA256":
			if i != len(pairs)-1 {
				return bad("HMACSHA256 is not the last key")
			}
			if len(v) != 2*sha256.Size || !isUpperHex(v) {
				return bad("HMACSHA256 must be %d upper-case hex digits", 2*sha256.Size)
			}
			t.HMAC, _ = hex.DecodeString(v)
		default:
			return bad("unknown key %.20q", k)
		}
	}
	for _, k := range []string{"NONCE", "TOKENFORMAT", "TOKENLENGTH", "DISPENSE1", "HMACSHA256"} {
		if !seen[k] {
			return bad("%s missing", k)
		}
	}
	if t.Length != len(s) {
		return bad("TOKENLENGTH %04d but token has %d characters", t.Length, len(s))
	}
	return t, nil
}

// parseDispense parses "50.00EUR".
func parseDispense(v string, t *Token) error {
	if len(v) < 4 {
		return errors.New("too short")
	}
	num, cur := v[:len(v)-3], v[len(v)-3:]
	if !isCurrency(cur) {
		return errors.New("no ISO 4217 currency code")
	}
	whole, frac, hasDot := strings.Cut(num, ".")
	if !isDigits(whole) || (hasDot && !isDigits(frac)) {
		return errors.New("value is not a decimal number")
	}
	if len(frac) > 4 || len(whole)+len(frac) > 15 {
		return errors.New("value has too many digits")
	}
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return errors.New("value out of range")
	}
	t.Value, t.Decimals, t.Currency = n, len(frac), cur
	return nil
}

// VerifyToken checks a dispense token the way the device must before moving
// any cash, and returns the matching sentinel (wrapped):
//
//   - ErrInvalidTokenFormat: not a well-formed token, or TOKENLENGTH wrong;
//   - ErrNoCommandNonce: the device has no current nonce (expectNonce == "");
//   - ErrInvalidTokenNonce: the token's nonce is not the current nonce;
//   - ErrInvalidTokenHMAC: the HMAC-SHA256 under key does not verify;
//   - ErrInvalidToken: the token does not cover dispenseAmount (minor
//     units) of currency: other currency, amount above DISPENSE1, or a
//     DISPENSE1 that does not convert exactly to minor units (refused
//     rather than rounded).
//
// exponent is the ISO 4217 minor-unit exponent of currency as the device is
// configured (0 for XPF or JPY, 2 for CNY or EUR, 3 for KWD), the same value
// the host passed to BuildToken; it must be 0-4. It is configuration, never
// guessed from the currency code: with the wrong exponent a token would
// cover a multiple of its amount.
//
// Nonce and HMAC comparisons are constant-time.
func VerifyToken(s, expectNonce string, key []byte, dispenseAmount int64, currency string, exponent int) error {
	if s == "" {
		return fmt.Errorf("%w: no token", ErrInvalidToken)
	}
	t, err := ParseToken(s)
	if err != nil {
		return err
	}
	if expectNonce == "" {
		return ErrNoCommandNonce
	}
	if subtle.ConstantTimeCompare([]byte(t.Nonce), []byte(expectNonce)) != 1 {
		return ErrInvalidTokenNonce
	}
	if len(key) == 0 {
		return fmt.Errorf("%w: device has no token key", ErrInvalidTokenHMAC)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(t.Signed))
	if !hmac.Equal(m.Sum(nil), t.HMAC) {
		return ErrInvalidTokenHMAC
	}
	if t.Currency != currency {
		return fmt.Errorf("%w: token is for %s, dispense is in %.3q", ErrInvalidToken, t.Currency, currency)
	}
	if exponent < 0 || exponent > maxExponent {
		return fmt.Errorf("%w: currency exponent %d out of range 0-%d", ErrInvalidToken, exponent, maxExponent)
	}
	if dispenseAmount <= 0 {
		return fmt.Errorf("%w: dispense amount %d", ErrInvalidToken, dispenseAmount)
	}
	limit, ok := t.MaxAmount(exponent)
	if !ok {
		return fmt.Errorf("%w: token's %s does not convert exactly to minor units of exponent %d", ErrInvalidToken,
			FormatAmount(t.Value, t.Decimals)+t.Currency, exponent)
	}
	if dispenseAmount > limit {
		return fmt.Errorf("%w: dispense of %s %s exceeds the token's %s", ErrInvalidToken,
			FormatAmount(dispenseAmount, exponent), currency, FormatAmount(t.Value, t.Decimals)+t.Currency)
	}
	return nil
}
