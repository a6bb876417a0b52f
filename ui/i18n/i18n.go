package i18n

import (
	"fmt"
	"strconv"
	"strings"
)

// Lang is a display language.
type Lang int

// The supported languages.
const (
	English Lang = iota
	Chinese
)

// Langs lists every supported language.
var Langs = []Lang{English, Chinese}

// String returns the BCP 47 tag of the language ("en", "zh").
func (l Lang) String() string {
	if l == Chinese {
		return "zh"
	}
	return "en"
}

// Other returns the other language (used for bilingual attract screens).
func (l Lang) Other() Lang {
	if l == Chinese {
		return English
	}
	return Chinese
}

// Key names a message in the catalogs.
type Key string

// T returns the message for k in language l, formatted with args when given.
// A missing key returns the key itself in brackets so that it is visible (and
// the catalog tests fail).
func T(l Lang, k Key, args ...any) string {
	m, ok := catalogs[l][k]
	if !ok {
		m, ok = catalogs[English][k]
		if !ok {
			return "[" + string(k) + "]"
		}
	}
	if len(args) > 0 {
		return fmt.Sprintf(m, args...)
	}
	return m
}

// Has reports whether the catalog of l holds k.
func Has(l Lang, k Key) bool {
	_, ok := catalogs[l][k]
	return ok
}

// Reason returns the plain-words explanation of a decline or failure code
// ("51", "55", "timeout", ...). Unknown codes get a generic message.
func Reason(l Lang, code string) string { return explain(l, "reason.", code) }

// CannotPayReason explains a *ui.CannotPayError reason key.
func CannotPayReason(l Lang, reason string) string { return explain(l, "cannot.", reason) }

// OutOfServiceReason explains, for the supervisor, why the terminal is out
// of service (the core's reason: "link", "dispenser", ...).
func OutOfServiceReason(l Lang, reason string) string { return explain(l, "oosreason.", reason) }

// Alarm names a standing alarm ("cash_low:CST1") in l; an alarm without
// a translation is shown as named.
func Alarm(l Lang, name string) string {
	base, arg, hasArg := strings.Cut(name, ":")
	if k := Key("alarm." + base); Has(l, k) {
		if hasArg {
			return T(l, k, arg)
		}
		return T(l, k)
	}
	return name
}

// Device names a device and its state ("dispenser", "hardwareError") in
// l; words without a translation are shown as given.
func Device(l Lang, name, state string) (string, string) {
	if k := Key("device." + name); Has(l, k) {
		name = T(l, k)
	}
	if k := Key("devstate." + state); Has(l, k) {
		state = T(l, k)
	}
	return name, state
}

// JournalKind names a journal entry's kind ("CASH TAKEN") in l for the
// supervisor screen; a kind without a translation is shown as recorded.
// The journal itself is recorded in English, its legal language.
func JournalKind(l Lang, kind string) string {
	if k := Key("jkind." + kind); Has(l, k) {
		return T(l, k)
	}
	return kind
}

// explain returns the message prefix+name in language l, or the message
// prefix+"unknown" when l's catalog has no such key.
func explain(l Lang, prefix, name string) string {
	if k := Key(prefix + name); Has(l, k) {
		return T(l, k)
	}
	return T(l, Key(prefix+"unknown"))
}

// Amount formats minor units of an ISO 4217 currency for language l:
// English "CNY 1,000.00", Chinese "1,000.00元" for CNY and
// "1,000.00 USD" for other currencies.
func Amount(l Lang, minor int64, currency string, exponent int) string {
	n := Number(minor, exponent)
	if l == Chinese {
		if currency == "CNY" {
			return n + "元"
		}
		return n + " " + currency
	}
	return currency + " " + n
}

// Number formats minor units with thousands separators and exponent decimals:
// Number(100000, 2) == "1,000.00".
func Number(minor int64, exponent int) string {
	neg := minor < 0
	if neg {
		minor = -minor
	}
	s := strconv.FormatInt(minor, 10)
	if exponent > 0 {
		for len(s) <= exponent {
			s = "0" + s
		}
	}
	intPart, frac := s, ""
	if exponent > 0 {
		intPart, frac = s[:len(s)-exponent], s[len(s)-exponent:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// Countdown formats remaining whole seconds as "0:45".
func Countdown(secs int) string {
	if secs < 0 {
		secs = 0
	}
	return fmt.Sprintf("%d:%02d", secs/60, secs%60)
}
