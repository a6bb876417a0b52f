package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/hsm"
	bolt "go.etcd.io/bbolt"
)

// journalStore makes a store of n entries with a checkpoint at cp, then
// edits entry edit (recomputing its hash, as a forger without the journal
// key would), and reopens it.
func journalStore(t *testing.T, n, cp int, edit uint64) *store.DB {
	t.Helper()
	m := hsm.NewSoft()
	t.Cleanup(func() { m.Close() })
	if err := m.ImportClearHMACKey(hsm.JournalKey, bytes.Repeat([]byte{0x5c}, 32)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "atm.db")
	opts := store.Options{JournalAuth: JournalAuth(m)}
	db, err := store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if err := db.Update(func(tx *store.Tx) error {
			_, err := tx.AppendJournal(store.Entry{Kind: "NOTE", Text: fmt.Sprintf("paid %d.00", i)})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if i == cp {
			head, err := db.VerifyJournalSince()
			if err != nil {
				t.Fatal(err)
			}
			if err := db.SetCheckpoint(head); err != nil {
				t.Fatal(err)
			}
		}
	}
	db.Close()
	if edit > 0 {
		b, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = b.Update(func(tx *bolt.Tx) error {
			j := tx.Bucket([]byte("journal"))
			k := make([]byte, 8)
			k[7] = byte(edit)
			var e store.Entry
			if err := json.Unmarshal(j.Get(k), &e); err != nil {
				return err
			}
			e.Text = "paid 0.00"
			// The forger recomputes nothing it cannot: the entry's own hash
			// stays, so the entry itself no longer matches it.
			v, _ := json.Marshal(&e)
			return j.Put(k, v)
		})
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if db, err = store.Open(path, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestJournalCheckerFindsOldTampering: an entry edited before the
// checkpoint passes the start-up verification (it reads only what follows
// the checkpoint), and the background verification of the whole chain,
// due JournalFullCheckFirst after start, raises the alarm, which the
// checks since the checkpoint do not clear.
func TestJournalCheckerFindsOldTampering(t *testing.T) {
	db := journalStore(t, 40, 30, 7)
	if _, err := db.VerifyJournalSince(); err != nil {
		t.Fatalf("start-up verification: %v (entry 7 is before the checkpoint)", err)
	}
	var logs syncBuffer // written by the checker's goroutine
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	j := newJournalChecker(db, clk, textLog(&logs))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { j.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	wait := func(what string, ok func() bool) {
		t.Helper()
		for range 400 { // bounded: the checker runs on its own goroutine
			if ok() {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	wait("the checker's timers", func() bool { return clk.Pending() == 3 })
	clk.Advance(JournalFullCheckFirst - time.Second) // the store file's check passes (the file is sound)
	wait("the store file check", func() bool { return strings.Count(logs.String(), "\n") == 1 && clk.Pending() == 3 })
	if a := j.Alarm(); a != "" {
		t.Fatalf("alarm before the full verification: %s", a)
	}
	clk.Advance(time.Second)
	want := "store: journal broken at seq 7: hash mismatch (entry edited)"
	wait("the alarm", func() bool { return j.Alarm() == want })
	if got := logs.String(); got != "level=INFO msg=\"store file checked\" took=0s\n"+
		`level=ERROR msg="ALARM electronic journal does not verify (whole chain): keep the store file for investigation" err="`+want+"\"\n" {
		t.Fatalf("log:\n%s", got)
	}
	clk.Advance(JournalCheckEvery) // the check since the checkpoint passes; the alarm stays
	wait("the hourly check", func() bool { return strings.Count(logs.String(), "\n") == 2 && clk.Pending() == 3 })
	if j.Alarm() != want {
		t.Fatalf("alarm after the hourly check: %q", j.Alarm())
	}
}

// TestJournalCheckerAdvancesCheckpoint: the hourly check moves the
// checkpoint to the head, so the next start verifies only newer entries;
// a clean full verification logs how many entries it verified.
func TestJournalCheckerAdvancesCheckpoint(t *testing.T) {
	db := journalStore(t, 12, 5, 0)
	var logs bytes.Buffer
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	j := newJournalChecker(db, clk, textLog(&logs))
	if cp, err := db.Checkpoint(); err != nil || cp.Seq != 5 {
		t.Fatalf("checkpoint before: %+v, %v", cp, err)
	}
	j.incremental()
	if cp, err := db.Checkpoint(); err != nil || cp.Seq != 12 {
		t.Fatalf("checkpoint after the hourly check: %+v, %v; want 12", cp, err)
	}
	j.full(context.Background())
	if j.Alarm() != "" || logs.String() != "level=INFO msg=\"electronic journal verified\" entries=12 sessions=0 took=0s\n" {
		t.Fatalf("alarm %q, log %q", j.Alarm(), logs.String())
	}
}

// TestJournalVerifyEndpoint: GET /journal/verify verifies the whole chain
// (finding an entry edited before the checkpoint) and reports the count.
func TestJournalVerifyEndpoint(t *testing.T) {
	for _, tc := range []struct {
		edit uint64
		code int
		body string
	}{
		{0, 200, `{"entries":40,"ok":true}`},
		{7, 500, `{"error":"store: journal broken at seq 7: hash mismatch (entry edited)","ok":false}`},
	} {
		a := &Appliance{Store: journalStore(t, 40, 30, tc.edit), Config: &Config{}}
		rec := httptest.NewRecorder()
		a.controlMux().ServeHTTP(rec, httptest.NewRequest("GET", "/journal/verify", nil))
		if rec.Code != tc.code || strings.TrimSpace(rec.Body.String()) != tc.body {
			t.Errorf("edit %d: %d %s; want %d %s", tc.edit, rec.Code, rec.Body.String(), tc.code, tc.body)
		}
	}
}

// textLog logs to w as text, without the time.
func textLog(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader on two
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTotalsJSON: GET /totals speaks snake_case throughout (docs/control.md).
func TestTotalsJSON(t *testing.T) {
	db := journalStore(t, 1, 0, 0)
	if err := db.Update(func(tx *store.Tx) error {
		if _, err := tx.AddDailyTotal("2026-01-02", 150000); err != nil {
			return err
		}
		return tx.PutUnitCounters(store.UnitCounters{UnitID: "CST1", Denomination: 10000, Currency: "CNY", Loaded: 500,
			Dispensed: 12, Rejected: 1, Retracted: 2, Remaining: 488})
	}); err != nil {
		t.Fatal(err)
	}
	a := &Appliance{Store: db, Config: &Config{TerminalID: "ATM00001", CurrencyAlpha: "CNY"}}
	rec := httptest.NewRecorder()
	a.controlMux().ServeHTTP(rec, httptest.NewRequest("GET", "/totals?day=2026-01-02", nil))
	want := `{"terminal_id":"ATM00001","day":"2026-01-02","paid":150000,"currency":"CNY","units":[{"unit_id":"CST1","denomination":10000,"currency":"CNY","loaded":500,"dispensed":12,"rejected":1,"retracted":2,"remaining":488}]}`
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != want {
		t.Fatalf("%d %s\nwant %s", rec.Code, rec.Body.String(), want)
	}
}
