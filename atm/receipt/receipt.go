// Package receipt is the customer's receipt of a withdrawal: what it says
// (terminal, location, date and time, amount, masked customer, auth code,
// RRN, STAN, a reference for the QR code) in the customer's language, as
// lines a printer driver lays out. The ESC/POS encoding is in the escpos
// subpackage, a printer simulator in printersim.
package receipt

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

// Receipt is one withdrawal's receipt. Customer is already masked; no PIN,
// key or token is ever on a receipt.
type Receipt struct {
	Terminal string
	Location string
	Time     time.Time // when the cash was taken, in the terminal's zone
	Amount   int64     // paid, minor units
	Currency string    // ISO 4217 alphabetic
	Exponent int
	Customer string // masked (****1234)
	AuthCode string
	RRN      string
	STAN     string
}

// Reference is the transaction reference printed as a QR code: terminal,
// RRN and STAN, which a bank's back office finds the withdrawal by
// (atmctl journal find --rrn).
func (r Receipt) Reference() string {
	return "CARDLESS:" + r.Terminal + ":" + r.RRN + ":" + r.STAN
}

// Style says how a line is printed.
type Style int

// Line styles.
const (
	Normal Style = iota
	Title        // centred, double size, bold
	Big          // double size, bold (the amount)
	Center       // centred
)

// Line is one line of the receipt.
type Line struct {
	Text  string
	Style Style
}

// labels are the receipt's words per language (BCP 47 tag).
var labels = map[string]map[string]string{
	"en": {"title": "CASH WITHDRAWAL", "terminal": "Terminal", "location": "Location", "date": "Date", "time": "Time",
		"amount": "Amount", "customer": "Customer", "auth": "Auth code", "rrn": "RRN", "stan": "STAN", "thanks": "Thank you"},
	"zh": {"title": "取款凭条", "terminal": "终端号", "location": "地点", "date": "日期", "time": "时间",
		"amount": "金额", "customer": "客户", "auth": "授权码", "rrn": "参考号", "stan": "流水号", "thanks": "谢谢惠顾"},
}

// Languages lists the languages a receipt can be printed in.
var Languages = []string{"en", "zh"}

// Lines lays the receipt out in lang ("en" or "zh"; another tag is an
// error).
func (r Receipt) Lines(lang string) ([]Line, error) {
	l, ok := labels[lang]
	if !ok {
		return nil, fmt.Errorf("receipt: no language %q", lang)
	}
	field := func(k, v string) Line { return Line{Text: l[k] + ": " + v} }
	return []Line{
		{Text: l["title"], Style: Title},
		field("terminal", r.Terminal),
		field("location", r.Location),
		field("date", r.Time.Format(time.DateOnly)),
		field("time", r.Time.Format(time.TimeOnly)),
		{Text: l["amount"] + ": " + dispenser.FormatAmount(r.Amount, r.Exponent) + " " + r.Currency, Style: Big},
		field("customer", r.Customer),
		field("auth", r.AuthCode),
		field("rrn", r.RRN),
		field("stan", r.STAN),
		{Text: l["thanks"], Style: Center},
	}, nil
}

// Text is the receipt as plain text, one line each (the phone's receipt
// and logs use it).
func (r Receipt) Text(lang string) (string, error) {
	lines, err := r.Lines(lang)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// The phone's copy travels in field 63 of the 0210 (docs/phone.md) as a
// URL query: TID, LOC, TIME (RFC 3339 with the terminal's offset), AMT
// (minor units), CUR, EXP, CUST (masked), AUTH, RRN, STAN, each once,
// values percent-encoded, so the field stays ASCII whatever the location's
// script.
var wireKeys = []string{"TID", "LOC", "TIME", "AMT", "CUR", "EXP", "CUST", "AUTH", "RRN", "STAN"}

// Encode returns the receipt as field 63 carries it.
func (r Receipt) Encode() string {
	v := url.Values{}
	v.Set("TID", r.Terminal)
	v.Set("LOC", r.Location)
	v.Set("TIME", r.Time.Format(time.RFC3339))
	v.Set("AMT", strconv.FormatInt(r.Amount, 10))
	v.Set("CUR", r.Currency)
	v.Set("EXP", strconv.Itoa(r.Exponent))
	v.Set("CUST", r.Customer)
	v.Set("AUTH", r.AuthCode)
	v.Set("RRN", r.RRN)
	v.Set("STAN", r.STAN)
	return v.Encode()
}

// Decode parses field 63 strictly: every key once, no other key, an
// amount in minor units, an exponent 0-3, a three-letter currency and a
// customer ID that is masked.
func Decode(s string) (Receipt, error) {
	if len(s) > 999 {
		return Receipt{}, fmt.Errorf("receipt: %d characters, at most 999", len(s))
	}
	v, err := url.ParseQuery(s)
	if err != nil {
		return Receipt{}, fmt.Errorf("receipt: %w", err)
	}
	for k, vals := range v {
		if !slices.Contains(wireKeys, k) || len(vals) != 1 {
			return Receipt{}, fmt.Errorf("receipt: key %q unknown or repeated", k)
		}
	}
	for _, k := range wireKeys {
		if _, ok := v[k]; !ok {
			return Receipt{}, fmt.Errorf("receipt: no %s", k)
		}
	}
	r := Receipt{Terminal: v.Get("TID"), Location: v.Get("LOC"), Currency: v.Get("CUR"), Customer: v.Get("CUST"),
		AuthCode: v.Get("AUTH"), RRN: v.Get("RRN"), STAN: v.Get("STAN")}
	if r.Time, err = time.Parse(time.RFC3339, v.Get("TIME")); err != nil {
		return Receipt{}, fmt.Errorf("receipt: TIME: %w", err)
	}
	if r.Amount, err = strconv.ParseInt(v.Get("AMT"), 10, 64); err != nil || r.Amount < 0 {
		return Receipt{}, fmt.Errorf("receipt: AMT %q", v.Get("AMT"))
	}
	if r.Exponent, err = strconv.Atoi(v.Get("EXP")); err != nil || r.Exponent < 0 || r.Exponent > 3 {
		return Receipt{}, fmt.Errorf("receipt: EXP %q", v.Get("EXP"))
	}
	if len(r.Currency) != 3 || strings.Trim(r.Currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return Receipt{}, fmt.Errorf("receipt: CUR %q", r.Currency)
	}
	if !strings.HasPrefix(r.Customer, "****") {
		return Receipt{}, errors.New("receipt: CUST is not masked")
	}
	return r, nil
}
