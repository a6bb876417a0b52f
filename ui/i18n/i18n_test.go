package i18n

import (
	"fmt"
	"strings"
	"testing"
)

func TestCatalogsComplete(t *testing.T) {
	for _, l := range Langs {
		for k := range catalogs[English] {
			if !Has(l, k) {
				t.Errorf("%s: missing key %q", l, k)
			}
		}
		for k := range catalogs[l] {
			if !Has(English, k) {
				t.Errorf("%s: key %q not in English catalog", l, k)
			}
		}
	}
	// Placeholders must agree between languages.
	for k, en := range catalogs[English] {
		if zh := catalogs[Chinese][k]; strings.Count(en, "%") != strings.Count(zh, "%") {
			t.Errorf("key %q: placeholder count differs: %q vs %q", k, en, zh)
		}
	}
}

func TestAmount(t *testing.T) {
	cases := []struct {
		l    Lang
		m    int64
		cur  string
		exp  int
		want string
	}{
		{English, 100000, "CNY", 2, "CNY 1,000.00"},
		{Chinese, 100000, "CNY", 2, "1,000.00元"},
		{Chinese, 5, "USD", 2, "0.05 USD"},
		{English, 123456789, "JPY", 0, "JPY 123,456,789"},
		{English, -150, "EUR", 2, "EUR -1.50"},
		{English, 0, "CNY", 2, "CNY 0.00"},
	}
	for _, c := range cases {
		if got := Amount(c.l, c.m, c.cur, c.exp); got != c.want {
			t.Errorf("Amount(%s,%d,%s,%d) = %q, want %q", c.l, c.m, c.cur, c.exp, got, c.want)
		}
	}
}

func TestReason(t *testing.T) {
	if Reason(English, "51") == Reason(English, "zz") {
		t.Error("code 51 should have its own message")
	}
	if Reason(Chinese, "zz") != T(Chinese, "reason.unknown") {
		t.Error("unknown code should map to reason.unknown")
	}
	if CannotPayReason(English, "notes") != T(English, "cannot.notes") {
		t.Error("reason notes should map to cannot.notes")
	}
	if CannotPayReason(Chinese, "zz") != T(Chinese, "cannot.unknown") {
		t.Error("unknown reason should map to cannot.unknown")
	}
	if T(English, "no.such.key") != "[no.such.key]" {
		t.Error("missing key should be visible")
	}
}

func ExampleAmount() {
	fmt.Println(Amount(English, 250000, "CNY", 2))
	fmt.Println(Amount(Chinese, 250000, "CNY", 2))
	fmt.Println(T(Chinese, "qr.time"), Countdown(75))
	// Output:
	// CNY 2,500.00
	// 2,500.00元
	// 剩余时间 1:15
}
