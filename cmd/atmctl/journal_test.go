package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/store"
)

const journalKeyHex = "f59436af217f194e00f6c085d9c41d6d6477c91b840105fd420ca85c4ce24565" // test-only

// segments writes a store with a withdrawal's entries and exports them as
// two segment files.
func segments(t *testing.T) (dir string, files []string, db *store.DB) {
	t.Helper()
	dir = t.TempDir()
	k, err := readKeyFile(writeFile(t, dir, "journal.key", journalKeyHex))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	db, err = store.Open(filepath.Join(dir, "atm.db"), store.Options{Now: func() time.Time { return now }, JournalAuth: k})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, e := range []store.Entry{
		{Kind: "SESSION CREATED", SessionID: "S1"},
		{Kind: "COMMAND ACCEPTED", SessionID: "S1", Data: map[string]string{"customer": "****1234"}},
		{Kind: "APPROVED", SessionID: "S1", Data: map[string]string{"rrn": "000000000042"}},
		{Kind: "SESSION CREATED", SessionID: "S2"},
		{Kind: "CASH TAKEN", SessionID: "S1"},
	} {
		if err := db.Update(func(tx *store.Tx) error { _, err := tx.AppendJournal(e); return err }); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range [][2]uint64{{1, 3}, {4, 5}} {
		var b bytes.Buffer
		if _, _, err := db.ExportJournal(&b, "ATM00001", r[0], r[1]); err != nil {
			t.Fatal(err)
		}
		files = append(files, writeFile(t, dir, []string{"a.jsonl", "b.jsonl"}[i], b.String()))
	}
	return dir, files, db
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func run(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	handled, code := journalCmd(args, &o, &e)
	if !handled {
		return -1, "", "not handled"
	}
	return code, o.String(), e.String()
}

func TestJournalVerifyAndFindOffline(t *testing.T) {
	dir, files, _ := segments(t)
	key := filepath.Join(dir, "journal.key")
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{append([]string{"verify", "--key-file", key}, files...), 0, "journal segments verified: 2 segments, 5 entries, chain and MACs good\n"},
		{append([]string{"verify"}, files...), 0, "journal segments verified: 2 segments, 5 entries, chain good; MACs NOT checked (no --key-file)\n"},
		{[]string{"verify", "--key-file", key, files[1], files[0]}, 1, ""},
		{[]string{"verify"}, 2, ""},
	} {
		code, out, errOut := run(tc.args...)
		if code != tc.code || out != tc.out {
			t.Errorf("atmctl journal %s: code %d, out %q, err %q; want %d %q", strings.Join(tc.args, " "), code, out, errOut, tc.code, tc.out)
		}
	}
	// A tampered segment: found and named.
	b, _ := os.ReadFile(files[1])
	bad := writeFile(t, dir, "bad.jsonl", strings.Replace(string(b), `"Kind":"CASH TAKEN"`, `"Kind":"CASH RETRACTED"`, 1))
	if code, _, errOut := run("verify", "--key-file", key, files[0], bad); code != 1 || errOut != "atmctl journal: journal segment "+bad+": entry 5: hash mismatch (entry edited)\n" {
		t.Fatalf("tampered: code %d, %q", code, errOut)
	}
	// A dispute: every entry of the session with that RRN, across segments.
	code, out, errOut := run(append([]string{"find", "--rrn", "000000000042"}, files...)...)
	var kinds []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		kinds = append(kinds, l[strings.Index(l, `"Kind":`)+8:strings.Index(l, `","SessionID"`)])
	}
	if code != 0 || strings.Join(kinds, "|") != "SESSION CREATED|COMMAND ACCEPTED|APPROVED|CASH TAKEN" {
		t.Fatalf("find: code %d, %q, %q", code, kinds, errOut)
	}
	if code, _, _ := run(append([]string{"find", "--customer", "6222020000005678"}, files...)...); code != 1 {
		t.Fatalf("find of an unknown customer: code %d", code)
	}
}

func TestJournalExportFromTheAppliance(t *testing.T) {
	dir, _, db := segments(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/journal/export" || r.URL.Query().Get("from") != "2" || r.URL.Query().Get("to") != "0" {
			http.Error(w, "unexpected "+r.URL.String(), 400)
			return
		}
		db.ExportJournal(w, "ATM00001", 2, 0)
	}))
	defer srv.Close()
	out := filepath.Join(dir, "export.jsonl")
	code, stdout, errOut := run("export", "--control", strings.TrimPrefix(srv.URL, "http://"), "--from", "2", "--out", out)
	if code != 0 || stdout != "journal segment written to "+out+"\n" {
		t.Fatalf("export: code %d, %q, %q", code, stdout, errOut)
	}
	if code, stdout, _ := run("verify", "--key-file", filepath.Join(dir, "journal.key"), out); code != 0 || !strings.HasPrefix(stdout, "journal segments verified: 1 segments, 4 entries") {
		t.Fatalf("verify the export: %d %q", code, stdout)
	}
}

func TestStoreCompact(t *testing.T) {
	dir, _, db := segments(t)
	db.Close()
	var o, e bytes.Buffer
	if code := storeCmd([]string{"compact", "--data-dir", dir}, &o, &e); code != 0 || !strings.HasPrefix(o.String(), "store compacted: ") {
		t.Fatalf("compact: %d %q %q", code, o.String(), e.String())
	}
	// A running appliance holds the store: refused, nothing changed.
	k, _ := readKeyFile(filepath.Join(dir, "journal.key"))
	open, err := store.Open(filepath.Join(dir, "atm.db"), store.Options{JournalAuth: k, Timeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := open.VerifyJournal(); err != nil {
		t.Fatalf("after compaction: %v", err)
	}
	o.Reset()
	e.Reset()
	if code := storeCmd([]string{"compact", "--data-dir", dir}, &o, &e); code != 1 || !strings.Contains(e.String(), "file is locked by another process") {
		t.Fatalf("compact of an open store: %d %q", code, e.String())
	}
}
