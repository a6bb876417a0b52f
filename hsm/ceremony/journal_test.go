package ceremony_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestJournalVerify: atmctl journal verify reports what the appliance's
// control endpoint answers (the endpoint itself is tested in
// atm/appliance), and exits 1 when the journal does not verify.
func TestJournalVerify(t *testing.T) {
	answer := `{"ok":true,"entries":1234}`
	code := 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/journal/verify" || r.Method != "GET" {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		}
		w.WriteHeader(code)
		w.Write([]byte(answer))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	r := run(t, nil, "journal", "verify", "--control", addr)
	if r.code != 0 || r.stdout != "electronic journal verified: 1234 entries, head MAC good\n" {
		t.Fatalf("%+v", r)
	}
	answer, code = `{"ok":false,"error":"store: journal broken at seq 7: hash mismatch (entry edited)"}`, 500
	r = run(t, nil, "journal", "verify", "--control", addr)
	if r.code != 1 || r.stderr != "atmctl: the electronic journal does not verify: store: journal broken at seq 7: hash mismatch (entry edited)\n" {
		t.Fatalf("%+v", r)
	}
	if r := run(t, nil, "journal", "verify"); r.code != 2 {
		t.Fatalf("no --control: %+v", r)
	}
}
