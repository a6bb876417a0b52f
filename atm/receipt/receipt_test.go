package receipt

import (
	"strings"
	"testing"
	"time"
)

func TestWireRoundTrip(t *testing.T) {
	r := Receipt{Terminal: "ATM00001", Location: "上海 Demo Branch; 1 Example Road", Time: time.Date(2030, 1, 2, 15, 4, 5, 0, time.FixedZone("CST", 8*3600)),
		Amount: 50000, Currency: "CNY", Exponent: 2, Customer: "****0001", AuthCode: "A12345", RRN: "000000000042", STAN: "000017"}
	s := r.Encode()
	const want = "AMT=50000&AUTH=A12345&CUR=CNY&CUST=%2A%2A%2A%2A0001&EXP=2&LOC=%E4%B8%8A%E6%B5%B7+Demo+Branch%3B+1+Example+Road&RRN=000000000042&STAN=000017&TID=ATM00001&TIME=2030-01-02T15%3A04%3A05%2B08%3A00"
	if s != want {
		t.Fatalf("Encode\n got %s\nwant %s", s, want)
	}
	got, err := Decode(s)
	if err != nil || got.Encode() != s || !got.Time.Equal(r.Time) {
		t.Fatalf("Decode: %+v %v", got, err)
	}
	for _, bad := range []string{
		strings.Replace(s, "CUST=%2A%2A%2A%2A0001", "CUST=6222020000000001", 1),
		strings.Replace(s, "EXP=2", "EXP=7", 1),
		s + "&AMT=1",
		s + "&PIN=1234",
		strings.Replace(s, "&RRN=000000000042", "", 1),
		"%zz",
	} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("Decode(%q) accepted", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("AMT=50000&AUTH=A12345&CUR=CNY&CUST=%2A%2A%2A%2A0001&EXP=2&LOC=x&RRN=1&STAN=2&TID=ATM00001&TIME=2030-01-02T15%3A04%3A05Z")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Decode(s)
		if err != nil {
			return
		}
		if _, err := Decode(r.Encode()); err != nil {
			t.Fatalf("%q decodes, its encoding %q does not: %v", s, r.Encode(), err)
		}
	})
}
