package dispenser

import (
	"strings"
	"testing"
)

func TestPresentStatusOf(t *testing.T) {
	key := []byte("present status test key 01234567")
	nonce := strings.Repeat("AB", 16)
	tok, err := BuildToken(nonce, 10000, "CNY", 2, HMACSHA256(key))
	if err != nil {
		t.Fatal(err)
	}
	id := tok[strings.LastIndex(tok, "=")+1:]
	other := strings.Repeat("CD", 16)
	for _, tc := range []struct {
		name string
		ps   PresentStatus
		want bool
	}{
		{"nonce", PresentStatus{Seq: 1, Nonce: nonce}, true},
		{"other nonce", PresentStatus{Seq: 1, Nonce: other, DispenseID: id}, false},
		{"no dispense", PresentStatus{Seq: 0, Nonce: nonce}, false},
		{"dispense ID", PresentStatus{Seq: 7, DispenseID: id}, true},
		{"dispense ID lower case", PresentStatus{Seq: 7, DispenseID: strings.ToLower(id)}, true},
		{"other dispense ID", PresentStatus{Seq: 7, DispenseID: strings.Repeat("0", 64)}, false},
		{"neither", PresentStatus{Seq: 7}, false},
	} {
		if got := tc.ps.Of(nonce, tok); got != tc.want {
			t.Errorf("%s: Of = %v, want %v", tc.name, got, tc.want)
		}
	}
	if (PresentStatus{Seq: 7, DispenseID: id}).Of(nonce, "") {
		t.Error("matched without a token")
	}
}
