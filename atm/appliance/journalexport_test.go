package appliance

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/hsm"
	bolt "go.etcd.io/bbolt"
)

// TestJournalExportClosedDays: each closed day goes out once, in order,
// and the exported files verify offline as one chain; today's entries
// wait for the day to close.
func TestJournalExportClosedDays(t *testing.T) {
	zone := time.FixedZone("UTC+8", 8*3600)
	clk := clock.NewFake(time.Date(2030, 3, 1, 9, 0, 0, 0, zone))
	db, auth, note := keyedJournalStore(t, clk)
	dir := filepath.Join(t.TempDir(), "export")
	x := &journalExporter{db: db, dir: dir, terminal: "ATM00001", zone: zone, clk: clk, log: slog.New(slog.DiscardHandler)}
	export := func() string {
		t.Helper()
		f, err := x.exportClosedDays()
		if err != nil {
			t.Fatal(err)
		}
		return filepath.Base(f)
	}

	note("day 1 a")
	note("day 1 b")
	if f := export(); f != "." {
		t.Fatalf("exported %s before the day closed", f)
	}
	clk.Set(time.Date(2030, 3, 1, 23, 59, 0, 0, zone))
	note("day 1 c")
	clk.Set(time.Date(2030, 3, 2, 0, 0, 1, 0, zone)) // the day closes (in dayZone, not UTC)
	note("day 2 a")
	if f := export(); f != "ATM00001-journal-2030-03-01-00000001-00000003.jsonl" {
		t.Fatalf("first export %q", f)
	}
	if f := export(); f != "." {
		t.Fatalf("exported %s twice", f)
	}
	clk.Set(time.Date(2030, 3, 4, 10, 0, 0, 0, zone)) // off for a day: days 2 and 3 together
	note("day 4 a")
	// Entries 4 (day 2 a) and 5 (JOURNAL EXPORTED, day 2) are closed.
	if f := export(); f != "ATM00001-journal-2030-03-02-00000004-00000005.jsonl" {
		t.Fatalf("second export %q", f)
	}

	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	slices.Sort(files)
	v := &store.SegmentVerifier{Auth: auth}
	var texts []string
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(filepath.Base(f), r, func(e store.Entry) error { texts = append(texts, e.Kind+" "+e.Text); return nil })
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"NOTE day 1 a", "NOTE day 1 b", "NOTE day 1 c", "NOTE day 2 a",
		"JOURNAL EXPORTED entries 1-3 exported to ATM00001-journal-2030-03-01-00000001-00000003.jsonl"}
	if !slices.Equal(texts, want) {
		t.Fatalf("exported entries\n%q\nwant\n%q", texts, want)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".export-*")); len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

// TestJournalRetention: exported entries older than the retention leave
// the live store (never unexported ones, never the verified checkpoint's
// entry); the live journal still verifies from the recorded base, and the
// exported files plus a fresh export of what is live form one chain.
func TestJournalRetention(t *testing.T) {
	zone := time.UTC
	clk := clock.NewFake(time.Date(2030, 3, 1, 9, 0, 0, 0, zone))
	db, auth, _ := keyedJournalStore(t, clk)
	checkpoint := func() {
		head, err := db.VerifyJournalSince()
		if err == nil {
			err = db.SetCheckpoint(head)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "export")
	x := &journalExporter{db: db, dir: dir, terminal: "ATM00001", zone: zone, clk: clk, log: slog.New(slog.DiscardHandler), retention: 2 * 24 * time.Hour}
	// The notes belong to sessions S1 (day 1) and S2 (day 2), finished.
	sessionNote := func(id, text string) {
		t.Helper()
		if err := db.Update(func(tx *store.Tx) error {
			if err := tx.PutSession(id, []byte(`{"id":"`+id+`"}`)); err != nil {
				return err
			}
			if err := tx.MarkSession(id, false); err != nil {
				return err
			}
			_, err := tx.AppendJournal(store.Entry{Kind: "NOTE", SessionID: id, Text: text})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	sessionNote("S1", "day 1 a")
	sessionNote("S1", "day 1 b")
	clk.Set(time.Date(2030, 3, 2, 9, 0, 0, 0, zone))
	if _, err := x.exportClosedDays(); err != nil { // 1-2 exported, entry 3 JOURNAL EXPORTED
		t.Fatal(err)
	}
	sessionNote("S2", "day 2 a") // 4
	checkpoint()
	if b, err := x.pruneExported(); err != nil || b.Seq != 0 {
		t.Fatalf("pruned %+v within the retention: %v", b, err)
	}
	clk.Set(time.Date(2030, 3, 5, 9, 0, 0, 0, zone)) // day 1 is 3 days old; days 2 on not exported yet
	// The core has not built its open-session index yet (the first start
	// after an upgrade): the entries go, the session records wait.
	b, err := x.pruneExported()
	if err != nil || b.Seq != 2 {
		t.Fatalf("pruned through %d, want 2 (exported and old): %v", b.Seq, err)
	}
	if !x.sessionsDue {
		t.Fatal("session records not due after the cut")
	}
	if err := db.Update(func(tx *store.Tx) error { return tx.IndexSessions(nil) }); err != nil {
		t.Fatal(err)
	}
	// The next round: no entry to move, the records that waited go.
	if b, err := x.pruneExported(); err != nil || b.Seq != 0 || x.sessionsDue {
		t.Fatalf("second round: base %+v, %v, sessions still due %v", b, err, x.sessionsDue)
	}
	if err := db.VerifyJournal(); err != nil {
		t.Fatalf("live journal after the cut: %v", err)
	}
	var live []string
	db.View(func(tx *store.Tx) error {
		return tx.JournalRange(0, func(e store.Entry) error { live = append(live, e.Kind+" "+e.Text); return nil })
	})
	want := []string{"JOURNAL EXPORTED entries 1-2 exported to ATM00001-journal-2030-03-01-00000001-00000002.jsonl", "NOTE day 2 a",
		"JOURNAL ARCHIVED entries 1-2 (exported, older than 2 days) moved out of the live store",
		"SESSIONS ARCHIVED records of finished sessions whose entries were archived, moved out of the live store: 1"}
	if !slices.Equal(live, want) {
		t.Fatalf("live journal\n%q\nwant\n%q", live, want)
	}
	// S1's entries all left, and its record with them; S2's stays.
	var sessions []string
	if err := db.View(func(tx *store.Tx) error {
		return tx.ForEachSession(func(id string, _ []byte) error { sessions = append(sessions, id); return nil })
	}); err != nil || !slices.Equal(sessions, []string{"S2"}) {
		t.Fatalf("session records %q (%v), want S2 only", sessions, err)
	}
	// What was exported and what is live still make one chain.
	if _, err := x.exportClosedDays(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	slices.Sort(files)
	v := &store.SegmentVerifier{Auth: auth}
	for _, f := range files {
		r, _ := os.Open(f)
		_, err := v.Verify(filepath.Base(f), r, nil)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if v.Segments != 2 || v.Entries != 4 { // 1-2, then 3-4 (the archive note of today waits)
		t.Fatalf("verified %d segments, %d entries", v.Segments, v.Entries)
	}
}

// keyedJournalStore opens a store on clk with a journal key in a software
// module, and returns a function that journals a NOTE.
func keyedJournalStore(t *testing.T, clk *clock.Fake) (*store.DB, store.JournalAuthenticator, func(string)) {
	t.Helper()
	m := hsm.NewSoft()
	t.Cleanup(func() { m.Close() })
	if err := m.GenerateHMACKey(hsm.JournalKey); err != nil {
		t.Fatal(err)
	}
	auth := JournalAuth(m)
	db, err := store.Open(filepath.Join(t.TempDir(), "atm.db"), store.Options{Now: clk.Now, JournalAuth: auth})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	note := func(text string) {
		if err := db.Update(func(tx *store.Tx) error {
			_, err := tx.AppendJournal(store.Entry{Kind: "NOTE", Text: text})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	return db, auth, note
}

// TestJournalRetentionTamperedSession: a session record edited in the
// file stops the pruning of the session records (the ALARM) but not the
// journal's: the cut is archived and journaled, and the records stay due.
func TestJournalRetentionTamperedSession(t *testing.T) {
	zone := time.UTC
	clk := clock.NewFake(time.Date(2030, 3, 1, 9, 0, 0, 0, zone))
	db, auth, _ := keyedJournalStore(t, clk)
	if err := db.Update(func(tx *store.Tx) error {
		if err := tx.IndexSessions(nil); err != nil {
			return err
		}
		for _, id := range []string{"S1", "S2"} {
			if err := tx.PutSession(id, []byte(`{"id":"`+id+`"}`)); err != nil {
				return err
			}
			if _, err := tx.AppendJournal(store.Entry{Kind: "NOTE", SessionID: id, Text: "day 1"}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	path := db.Path()
	db.Close()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("sessions"))
		v := slices.Clone(b.Get([]byte("S2")))
		v[len(v)-2] ^= 1
		return b.Put([]byte("S2"), v)
	}); err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	if db, err = store.Open(path, store.Options{Now: clk.Now, JournalAuth: auth}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	x := &journalExporter{db: db, dir: filepath.Join(t.TempDir(), "export"), terminal: "ATM00001", zone: zone, clk: clk,
		log: slog.New(slog.DiscardHandler), retention: 2 * 24 * time.Hour}
	clk.Set(time.Date(2030, 3, 2, 9, 0, 0, 0, zone))
	if _, err := x.exportClosedDays(); err != nil { // 1-2 exported, 3 JOURNAL EXPORTED
		t.Fatal(err)
	}
	head, err := db.VerifyJournalSince()
	if err == nil {
		err = db.SetCheckpoint(head)
	}
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Date(2030, 3, 5, 9, 0, 0, 0, zone))
	b, err := x.pruneExported()
	if !errors.Is(err, store.ErrSessionTampered) || b.Seq != 2 || !x.sessionsDue {
		t.Fatalf("pruneExported: base %d, %v, due %v; want base 2, ErrSessionTampered, due", b.Seq, err, x.sessionsDue)
	}
	var kinds []string
	db.View(func(tx *store.Tx) error {
		return tx.JournalRange(0, func(e store.Entry) error { kinds = append(kinds, e.Kind); return nil })
	})
	if want := []string{"JOURNAL EXPORTED", "JOURNAL ARCHIVED"}; !slices.Equal(kinds, want) {
		t.Fatalf("live journal %q, want %q", kinds, want)
	}
	// Nothing removed: S1 went in the same transaction as S2 would have.
	if err := db.View(func(tx *store.Tx) error { _, err := tx.GetSession("S1"); return err }); err != nil {
		t.Fatalf("S1: %v", err)
	}
	if _, err := x.pruneExported(); !errors.Is(err, store.ErrSessionTampered) {
		t.Fatalf("the next round: %v, want the alarm again", err)
	}
}
