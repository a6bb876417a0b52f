package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)}
}

func tempPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "atm.db")
}

func openAt(t *testing.T, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func mustUpdate(t *testing.T, db *DB, fn func(tx *Tx) error) {
	t.Helper()
	if err := db.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func TestSessionsRoundTrip(t *testing.T) {
	db := openAt(t, tempPath(t), Options{})
	mustUpdate(t, db, func(tx *Tx) error {
		for _, id := range []string{"b", "a", "c"} {
			if err := tx.PutSession(id, []byte(`{"id":"`+id+`"}`)); err != nil {
				return err
			}
		}
		return tx.PutSession("a", []byte(`{"id":"a","v":2}`))
	})
	if err := db.Update(func(tx *Tx) error { return tx.PutSession("", []byte("x")) }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty id: got %v, want ErrInvalid", err)
	}
	err := db.View(func(tx *Tx) error {
		v, err := tx.GetSession("a")
		if err != nil {
			return err
		}
		if string(v) != `{"id":"a","v":2}` {
			t.Errorf("GetSession(a) = %s", v)
		}
		if _, err := tx.GetSession("zz"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetSession(zz) err = %v, want ErrNotFound", err)
		}
		var ids []string
		if err := tx.ForEachSession(func(id string, v []byte) error {
			ids = append(ids, id)
			return nil
		}); err != nil {
			return err
		}
		if strings.Join(ids, ",") != "a,b,c" {
			t.Errorf("ForEachSession ids = %v", ids)
		}
		stop := errors.New("stop")
		if err := tx.ForEachSession(func(string, []byte) error { return stop }); err != stop {
			t.Errorf("ForEachSession did not return fn's error: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCountersRoundTrip(t *testing.T) {
	path := tempPath(t)
	db := openAt(t, path, Options{})
	mustUpdate(t, db, func(tx *Tx) error {
		if v, err := tx.AddCounter("notes", 5); err != nil || v != 5 {
			t.Errorf("AddCounter = %d, %v", v, err)
		}
		if v, err := tx.AddCounter("notes", -7); err != nil || v != -2 {
			t.Errorf("AddCounter negative = %d, %v", v, err)
		}
		if _, err := tx.AddCounter("big", 1<<62); err != nil {
			return err
		}
		if _, err := tx.AddCounter("big", 1<<62); !errors.Is(err, ErrInvalid) {
			t.Errorf("overflow: got %v, want ErrInvalid", err)
		}
		if v, err := tx.AddDailyTotal("2025-01-02", 10000); err != nil || v != 10000 {
			t.Errorf("AddDailyTotal = %d, %v", v, err)
		}
		if v, err := tx.AddDailyTotal("2025-01-02", -2000); err != nil || v != 8000 {
			t.Errorf("AddDailyTotal reversal = %d, %v", v, err)
		}
		if _, err := tx.AddDailyTotal("2025-01-02", -9000); !errors.Is(err, ErrInvalid) {
			t.Errorf("negative daily total: got %v, want ErrInvalid", err)
		}
		if _, err := tx.AddDailyTotal("02/01/2025", 1); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad day: got %v, want ErrInvalid", err)
		}
		for _, u := range []UnitCounters{
			{UnitID: "CST2", Denomination: 2000, Currency: "EUR", Loaded: 500, Remaining: 500},
			{UnitID: "CST1", Denomination: 5000, Currency: "EUR", Loaded: 400, Dispensed: 10, Rejected: 1, Retracted: 2, Remaining: 387},
		} {
			if err := tx.PutUnitCounters(u); err != nil {
				return err
			}
		}
		if err := tx.PutUnitCounters(UnitCounters{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("empty unit id: got %v", err)
		}
		return nil
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Options{})
	_ = db.View(func(tx *Tx) error {
		if v, _ := tx.Counter("notes"); v != -2 {
			t.Errorf("Counter after reopen = %d", v)
		}
		if v, _ := tx.Counter("unknown"); v != 0 {
			t.Errorf("unknown counter = %d", v)
		}
		if v, _ := tx.DailyTotal("2025-01-02"); v != 8000 {
			t.Errorf("DailyTotal after reopen = %d", v)
		}
		if v, _ := tx.DailyTotal("2025-01-03"); v != 0 {
			t.Errorf("DailyTotal of another day = %d", v)
		}
		units, err := tx.UnitCounters()
		if err != nil {
			t.Fatal(err)
		}
		want := []UnitCounters{
			{UnitID: "CST1", Denomination: 5000, Currency: "EUR", Loaded: 400, Dispensed: 10, Rejected: 1, Retracted: 2, Remaining: 387},
			{UnitID: "CST2", Denomination: 2000, Currency: "EUR", Loaded: 500, Remaining: 500},
		}
		if fmt.Sprint(units) != fmt.Sprint(want) {
			t.Errorf("UnitCounters = %+v, want %+v", units, want)
		}
		return nil
	})
}

func TestSTANWrapAndPersist(t *testing.T) {
	path := tempPath(t)
	db := openAt(t, path, Options{})
	mustUpdate(t, db, func(tx *Tx) error {
		for _, want := range []string{"000001", "000002"} {
			if got, err := tx.NextSTAN(); err != nil || got != want {
				t.Errorf("NextSTAN = %q, %v; want %q", got, err, want)
			}
		}
		// Jump close to the end of the range.
		return tx.tx.Bucket(bucketMeta).Put(keySTAN, u64(999998))
	})
	mustUpdate(t, db, func(tx *Tx) error {
		for _, want := range []string{"999999", "000001", "000002"} {
			if got, err := tx.NextSTAN(); err != nil || got != want {
				t.Errorf("NextSTAN = %q, %v; want %q", got, err, want)
			}
		}
		return nil
	})
	db.Close()
	db = openAt(t, path, Options{})
	mustUpdate(t, db, func(tx *Tx) error {
		if got, _ := tx.NextSTAN(); got != "000003" {
			t.Errorf("NextSTAN after reopen = %q, want 000003", got)
		}
		return nil
	})
}

func TestQueueIdempotencyAndAck(t *testing.T) {
	clk := newClock()
	path := tempPath(t)
	db := openAt(t, path, Options{Now: clk.Now})
	var first QueueItem
	mustUpdate(t, db, func(tx *Tx) error {
		var err error
		first, err = tx.Enqueue("reversal", "s1/reversal", []byte("payload-1"))
		if err != nil {
			return err
		}
		dup, err := tx.Enqueue("reversal", "s1/reversal", []byte("other payload"))
		if err != nil {
			return err
		}
		if dup.ID != first.ID || string(dup.Payload) != "payload-1" {
			t.Errorf("duplicate key returned %+v, want the existing item %+v", dup, first)
		}
		if _, err := tx.Enqueue("advice", "s2/advice", []byte("payload-2")); err != nil {
			return err
		}
		if _, err := tx.Enqueue("", "k", nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("empty kind: %v", err)
		}
		return nil
	})
	// Duplicate in a later transaction too.
	mustUpdate(t, db, func(tx *Tx) error {
		dup, err := tx.Enqueue("reversal", "s1/reversal", nil)
		if err != nil || dup.ID != first.ID {
			t.Errorf("later duplicate = %+v, %v", dup, err)
		}
		items, err := tx.QueueItems()
		if err != nil {
			return err
		}
		if len(items) != 2 || items[0].Key != "s1/reversal" || items[1].Key != "s2/advice" {
			t.Fatalf("QueueItems = %+v", items)
		}
		it := items[0]
		it.Attempts = 3
		it.NextAttempt = clk.t.Add(time.Minute)
		it.Key = "tampered"
		return tx.UpdateQueueItem(it)
	})
	db.Close()
	db = openAt(t, path, Options{Now: clk.Now})
	mustUpdate(t, db, func(tx *Tx) error {
		items, _ := tx.QueueItems()
		if items[0].Attempts != 3 || !items[0].NextAttempt.Equal(clk.t.Add(time.Minute)) || items[0].Key != "s1/reversal" {
			t.Errorf("after UpdateQueueItem+reopen: %+v", items[0])
		}
		if !items[0].Created.Equal(first.Created) || !items[0].AckedAt.IsZero() {
			t.Errorf("Created/AckedAt wrong: %+v", items[0])
		}
		if err := tx.Ack(first.ID); err != nil {
			return err
		}
		if err := tx.Ack(first.ID); err != nil {
			t.Errorf("second Ack: %v", err)
		}
		if err := tx.Ack(999); !errors.Is(err, ErrNotFound) {
			t.Errorf("Ack unknown: %v", err)
		}
		if err := tx.UpdateQueueItem(QueueItem{ID: first.ID}); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateQueueItem on acked: %v", err)
		}
		again, err := tx.Enqueue("reversal", "s1/reversal", []byte("payload-1"))
		if err != nil {
			return err
		}
		if again.ID != first.ID || again.AckedAt.IsZero() {
			t.Errorf("Enqueue of acked key = %+v; want the acked item", again)
		}
		items, _ = tx.QueueItems()
		if len(items) != 1 || items[0].Key != "s2/advice" {
			t.Errorf("queue after ack = %+v", items)
		}
		n, _ := tx.Enqueue("advice", "s3/advice", nil)
		if n.ID <= items[0].ID {
			t.Errorf("IDs not increasing: %d after %d", n.ID, items[0].ID)
		}
		return nil
	})
}

// TestQueueLen: QueueLen counts what QueueItems returns, the pending items
// only: a duplicate key adds nothing and an acknowledged item is gone.
func TestQueueLen(t *testing.T) {
	db := openAt(t, tempPath(t), Options{})
	check := func(want int) {
		t.Helper()
		_ = db.View(func(tx *Tx) error {
			n, err := tx.QueueLen()
			items, ierr := tx.QueueItems()
			if err != nil || ierr != nil || n != want || len(items) != want {
				t.Errorf("QueueLen = %d, %v; len(QueueItems) = %d, %v; want %d", n, err, len(items), ierr, want)
			}
			return nil
		})
	}
	check(0)
	var first QueueItem
	mustUpdate(t, db, func(tx *Tx) error {
		var err error
		if first, err = tx.Enqueue("reversal", "s1/reversal", []byte("p1")); err != nil {
			return err
		}
		if _, err := tx.Enqueue("reversal", "s1/reversal", []byte("dup")); err != nil {
			return err
		}
		if _, err := tx.Enqueue("advice", "s2/advice", []byte("p2")); err != nil {
			return err
		}
		_, err = tx.Enqueue("advice", "s3/advice", nil)
		return err
	})
	check(3)
	mustUpdate(t, db, func(tx *Tx) error {
		if err := tx.Ack(first.ID); err != nil {
			return err
		}
		_, err := tx.Enqueue("reversal", "s1/reversal", []byte("p1")) // acked key: not re-added
		return err
	})
	check(2)
}

func TestNonceSingleUse(t *testing.T) {
	path := tempPath(t)
	db := openAt(t, path, Options{})
	mustUpdate(t, db, func(tx *Tx) error { return tx.UseNonce("n-1") })
	err := db.Update(func(tx *Tx) error { return tx.UseNonce("n-1") })
	if !errors.Is(err, ErrNonceUsed) {
		t.Fatalf("reuse: got %v, want ErrNonceUsed", err)
	}
	if strings.Contains(err.Error(), "n-1") {
		t.Errorf("error echoes the nonce: %v", err)
	}
	// A nonce registered in a rolled-back transaction is not used.
	boom := errors.New("boom")
	if err := db.Update(func(tx *Tx) error {
		if err := tx.UseNonce("n-2"); err != nil {
			return err
		}
		return boom
	}); err != boom {
		t.Fatal(err)
	}
	db.Close()
	db = openAt(t, path, Options{})
	mustUpdate(t, db, func(tx *Tx) error { return tx.UseNonce("n-2") })
	if err := db.Update(func(tx *Tx) error { return tx.UseNonce("n-1") }); !errors.Is(err, ErrNonceUsed) {
		t.Fatalf("reuse after reopen: %v", err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.UseNonce("") }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty nonce: %v", err)
	}
}

// TestUpdateRollbackAllOrNothing: a state change that fails half-way leaves
// no session, no journal entry, no queue item and no counter movement.
func TestUpdateRollbackAllOrNothing(t *testing.T) {
	var labels []string
	db := openAt(t, tempPath(t), Options{AfterCommit: func(l string) { labels = append(labels, l) }})
	boom := errors.New("dispenser said no")
	err := db.UpdateLabeled("create", func(tx *Tx) error {
		if err := tx.PutSession("s1", []byte("{}")); err != nil {
			return err
		}
		if _, err := tx.AppendJournal(Entry{Kind: "SESSION", SessionID: "s1"}); err != nil {
			return err
		}
		if _, err := tx.Enqueue("reversal", "s1/rev", []byte("x")); err != nil {
			return err
		}
		if _, err := tx.NextSTAN(); err != nil {
			return err
		}
		if _, err := tx.AddCounter("c", 1); err != nil {
			return err
		}
		if _, err := tx.AddDailyTotal("2025-01-01", 100); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update err = %v", err)
	}
	if len(labels) != 0 {
		t.Errorf("AfterCommit called on rollback: %v", labels)
	}
	_ = db.View(func(tx *Tx) error {
		if _, err := tx.GetSession("s1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("session survived rollback")
		}
		if tail, _ := tx.JournalTail(10); len(tail) != 0 {
			t.Errorf("journal survived rollback: %+v", tail)
		}
		if items, _ := tx.QueueItems(); len(items) != 0 {
			t.Errorf("queue item survived rollback: %+v", items)
		}
		if c, _ := tx.Counter("c"); c != 0 {
			t.Errorf("counter survived rollback")
		}
		if d, _ := tx.DailyTotal("2025-01-01"); d != 0 {
			t.Errorf("daily total survived rollback")
		}
		return nil
	})
	// The next commit starts from a clean slate and fires the hook.
	mustUpdate(t, db, func(tx *Tx) error {
		e, err := tx.AppendJournal(Entry{Kind: "SESSION"})
		if err != nil || e.Seq != 1 || e.PrevHash != GenesisHash {
			t.Errorf("first entry after rollback = %+v, %v", e, err)
		}
		s, _ := tx.NextSTAN()
		if s != "000001" {
			t.Errorf("STAN after rollback = %s", s)
		}
		return nil
	})
	if err := db.UpdateLabeled("dispense", func(*Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(labels) != "[ dispense]" {
		t.Errorf("AfterCommit labels = %q", labels)
	}
	if err := db.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
}

func TestWriteInViewFails(t *testing.T) {
	db := openAt(t, tempPath(t), Options{})
	if err := db.View(func(tx *Tx) error { return tx.PutSession("a", nil) }); !errors.Is(err, bolt.ErrTxNotWritable) {
		t.Fatalf("write in View: %v", err)
	}
}

func TestSecondOpenTimesOut(t *testing.T) {
	path := tempPath(t)
	openAt(t, path, Options{})
	before := fileDigest(t, path)
	_, err := Open(path, Options{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, bolt.ErrTimeout) {
		t.Fatalf("second Open: %v, want bbolt ErrTimeout", err)
	}
	if !bytes.Equal(before, fileDigest(t, path)) {
		t.Fatal("file changed")
	}
}

func fileDigest(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return s[:]
}
