package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/atm/store/storetest"
)

// agedAppliance makes, in a new data directory, a store of 3000 journal
// entries under the configuration's journal key with its checkpoint at
// the head, lets damage change the closed file, and starts the appliance
// on it (New; nothing runs). logs receives the appliance's log.
func agedAppliance(t *testing.T, damage func(path string), logs *syncBuffer) (*Appliance, string) {
	t.Helper()
	cfg, err := Load("../../configs/atm.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Screen = Screen{Mode: "headless", PNG: filepath.Join(cfg.DataDir, "screen.png")}
	m, err := openKeys(cfg.Keys, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, "atm.db")
	db, err := store.Open(path, store.Options{JournalAuth: JournalAuth(m)})
	if err != nil {
		t.Fatal(err)
	}
	for w := 0; w < 3000; w += 500 {
		if err := db.Update(func(tx *store.Tx) error {
			for i := w + 1; i <= w+500; i++ {
				if _, err := tx.AppendJournal(store.Entry{Kind: "NOTE", Text: fmt.Sprintf("withdrawal %d, amount 350.00 CNY, customer *******0001", i)}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	head, err := db.VerifyJournalSince()
	if err == nil {
		err = db.SetCheckpoint(head)
	}
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	m.Close()
	if damage != nil {
		damage(path)
	}
	a, err := New(cfg, textLog(logs))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a, path
}

// runChecker runs the appliance's journal checker on a fake clock, as Run
// does, until the test ends.
func runChecker(t *testing.T, a *Appliance) *clock.Fake {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	a.Clock, a.journal.clk = clk, clk
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.journal.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitUntil(t, "the checker's timers", func() bool { return clk.Pending() == 3 })
	return clk
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for range 400 { // bounded: the checker runs on its own goroutine
		if ok() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// journalLog returns the journal checker's log lines.
func journalLog(logs *syncBuffer) string {
	var out []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, " part=journal") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func getVerify(a *Appliance) (int, string) {
	rec := httptest.NewRecorder()
	a.controlMux().ServeHTTP(rec, httptest.NewRequest("GET", "/journal/verify", nil))
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

// TestStoreCheckFindsDamageInTheBackground: a page of the journal's old
// entries is damaged. The appliance starts anyway (the start reads only
// the pages it needs), and the store file's check, due StoreCheckFirst
// after start, finds the page and raises the journal alarm: in /status,
// in the alarms pushed to the proxy, in the log. The whole-chain
// verification is not run on that file, nothing exports from it, and GET
// /journal/verify reports the damage.
func TestStoreCheckFindsDamageInTheBackground(t *testing.T) {
	var logs syncBuffer
	var page uint64
	a, path := agedAppliance(t, func(path string) { page = storetest.DamageJournalLeaf(t, path, 1) }, &logs)
	clk := runChecker(t, a)
	if got := a.Status().JournalAlarm; got != "" {
		t.Fatalf("alarm at start: %q", got)
	}
	if code, body := getVerify(a); code != 503 || body != `{"error":"store: journal entries before 2000: store: that part of the file has not been checked yet (the store is checked in the background after a start; try again shortly)","ok":false}` {
		t.Fatalf("GET /journal/verify before the check: %d %s", code, body)
	}

	clk.Advance(StoreCheckFirst)
	want := fmt.Sprintf("store: check %s: store: database file is corrupt: bbolt structure damaged: page %d element 0: key/value out of bounds", path, page)
	waitUntil(t, "the alarm", func() bool { return a.journal.Alarm() == want })
	if got := a.Status().JournalAlarm; got != want {
		t.Fatalf("status journal_alarm %q\nwant %q", got, want)
	}
	if !a.alarms.evaluate()["journal"] {
		t.Fatal("the journal alarm is not raised")
	}
	select {
	case <-a.journal.FileOK():
		t.Fatal("FileOK closed for a damaged file (the exporter would start)")
	default:
	}
	if code, body := getVerify(a); code != 500 || body != `{"error":"store: journal entries before 2000 cannot be read: `+want+`","ok":false}` {
		t.Fatalf("GET /journal/verify after the check: %d %s", code, body)
	}

	waitUntil(t, "the timers re-armed", func() bool { return clk.Pending() == 3 })
	clk.Advance(JournalFullCheckFirst - StoreCheckFirst)
	waitUntil(t, "the whole-chain verification's turn", func() bool { return strings.Count(journalLog(&logs), "\n") == 1 })
	wantLog := `level=ERROR msg="ALARM store file fails its check: keep the store file for investigation" part=journal err="` + want + `"` + "\n" +
		`level=WARN msg="whole-chain verification of the electronic journal postponed: the store file has not passed its check" part=journal`
	if got := journalLog(&logs); got != wantLog {
		t.Fatalf("log:\n%s\nwant\n%s", got, wantLog)
	}
	if got := a.journal.Alarm(); got != want {
		t.Fatalf("alarm after the whole-chain turn: %q", got)
	}
}

// TestStoreCheckPassesSoundFile: on a sound aged store the check passes,
// the exporter may start, and the old entries read again: GET
// /journal/verify answers 503 before the check and verifies all 3000
// entries after it.
func TestStoreCheckPassesSoundFile(t *testing.T) {
	var logs syncBuffer
	a, _ := agedAppliance(t, nil, &logs)
	clk := runChecker(t, a)
	if code, _ := getVerify(a); code != 503 {
		t.Fatalf("GET /journal/verify before the check: %d", code)
	}
	clk.Advance(StoreCheckFirst)
	select {
	case <-a.journal.FileOK():
	case <-time.After(5 * time.Second):
		t.Fatal("the store file check did not pass")
	}
	if got := journalLog(&logs); got != `level=INFO msg="store file checked" part=journal took=0s` {
		t.Fatalf("log: %s", got)
	}
	if a.journal.Alarm() != "" {
		t.Fatalf("alarm: %s", a.journal.Alarm())
	}
	if code, body := getVerify(a); code != 200 || body != `{"entries":3000,"ok":true}` {
		t.Fatalf("GET /journal/verify after the check: %d %s", code, body)
	}
}
