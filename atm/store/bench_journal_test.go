package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// An aged store, as the appliance leaves it after many withdrawals: per
// withdrawal a session record written at each of its states and eight
// journal entries, with the head MAC under a journal key. It is built
// once per test binary (in batches: the same keys and values, and the
// same page layout, as one commit per state change; building it one
// fsync at a time would take hours) and copied for each benchmark.
var (
	agedOnce  sync.Map // entries -> *agedStore
	benchAuth = testAuth(9)
	agedDirs  sync.Map // directories to remove when the test binary ends
)

// TestMain removes the aged stores (about 1 GB at a million entries)
// when the benchmarks are done.
func TestMain(m *testing.M) {
	code := m.Run()
	agedDirs.Range(func(k, _ any) bool { os.RemoveAll(k.(string)); return true })
	os.Exit(code)
}

type agedStore struct {
	once sync.Once
	path string
	err  error
}

func agedStorePath(b *testing.B, entries int) string {
	b.Helper()
	v, _ := agedOnce.LoadOrStore(entries, &agedStore{})
	a := v.(*agedStore)
	a.once.Do(func() {
		dir, err := os.MkdirTemp("", "aged-store")
		if err != nil {
			a.err = err
			return
		}
		agedDirs.Store(dir, true)
		a.path = filepath.Join(dir, "atm.db")
		a.err = buildAged(a.path, entries)
	})
	if a.err != nil {
		b.Fatal(a.err)
	}
	return a.path
}

// copyAged copies the aged store to a fresh file of b.
func copyAged(b *testing.B, entries int) string {
	b.Helper()
	raw, err := os.ReadFile(agedStorePath(b, entries))
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(b.TempDir(), "atm.db")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	// Synced, so that the first commits measured do not pay for writing
	// the copy back from the page cache.
	if _, err := f.Write(raw); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}

// buildAged writes an aged store of entries journal entries at path.
func buildAged(path string, entries int) error {
	db, err := Open(path, Options{JournalAuth: benchAuth})
	if err != nil {
		return err
	}
	defer db.Close()
	states := []string{"AwaitingPhone", "Authorizing", "Dispensing", "Presenting", "AwaitingTake", "Completed", "ADVICE SENT", "ADVICE ACKNOWLEDGED"}
	const batch = 2000 // withdrawals per transaction
	for w := 0; w*len(states) < entries; w += batch {
		err := db.Update(func(tx *Tx) error {
			for i := w; i < w+batch && i*len(states) < entries; i++ {
				id := fmt.Sprintf("%032X", i)
				for _, st := range states {
					session := fmt.Sprintf(`{"id":%q,"terminal":"ATM00001","amount":35000,"currency":"156","state":%q,"hostStan":"%06d","rrn":"26126352%04d","paid":35000}`, id, st, i%1000000, i%10000)
					if err := tx.PutSession(id, []byte(session)); err != nil {
						return err
					}
					if _, err := tx.AppendJournal(Entry{Kind: st, SessionID: id, Text: "amount 350.00 CNY, customer *******0001",
						Data: map[string]string{"stan": fmt.Sprintf("%06d", i%1000000), "rrn": fmt.Sprintf("26126352%04d", i%10000)}}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

var agedSizes = []int{100_000, 1_000_000}

// BenchmarkStartAged is what an aged ATM does at start with its store:
// open it and verify the journal since the checkpoint (100 entries
// since, as after a restart). "start" is the appliance's start: Open with
// DeferFileCheck (the pages the start reads; the rest of the file is
// checked in the background, BenchmarkCheckFileAged). "whole-file" is
// the same with the whole file checked at Open (the appliance's start
// before DeferFileCheck); "full" verifies the whole chain instead of the
// part since the checkpoint (the start before checkpoints).
func BenchmarkStartAged(b *testing.B) {
	for _, n := range agedSizes {
		for _, mode := range []string{"start", "whole-file", "full"} {
			b.Run(fmt.Sprintf("entries=%d/%s", n, mode), func(b *testing.B) {
				path := agedWithCheckpoint(b, n)
				for b.Loop() {
					db, err := Open(path, Options{JournalAuth: benchAuth, DeferFileCheck: mode == "start"})
					if err != nil {
						b.Fatal(err)
					}
					if mode == "full" {
						err = db.VerifyJournal()
					} else {
						_, err = db.VerifyJournalSince()
					}
					if err != nil {
						b.Fatal(err)
					}
					db.Close()
				}
			})
		}
	}
}

// agedWithCheckpoint copies the aged store of n entries and records the
// checkpoint 100 entries before its head.
func agedWithCheckpoint(b *testing.B, n int) string {
	b.Helper()
	path := copyAged(b, n)
	db, err := Open(path, Options{JournalAuth: benchAuth})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var cp Checkpoint
	err = db.View(func(tx *Tx) error {
		return tx.JournalRange(uint64(n-100), func(e Entry) error {
			if e.Seq == uint64(n-100) {
				cp = Checkpoint{Seq: e.Seq, Hash: e.Hash}
			}
			return nil
		})
	})
	if err != nil || db.SetCheckpoint(cp) != nil {
		b.Fatal("checkpoint", err)
	}
	return path
}

// BenchmarkCheckFileAged is the background check of the whole file
// (DB.CheckFile) on an aged store opened as the appliance opens it:
// "one-tx" in one read transaction, "chunked" as the appliance runs it
// (2000 pages per transaction; without its 20 ms pauses, which only add
// wall time).
func BenchmarkCheckFileAged(b *testing.B) {
	for _, n := range agedSizes {
		for _, mode := range []string{"one-tx", "chunked"} {
			b.Run(fmt.Sprintf("entries=%d/%s", n, mode), func(b *testing.B) {
				db, err := Open(agedWithCheckpoint(b, n), Options{JournalAuth: benchAuth, DeferFileCheck: true})
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				chunk := 0
				if mode == "chunked" {
					chunk = 2000
				}
				for b.Loop() {
					if err := db.CheckFile(context.Background(), chunk, func() error { return nil }); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkCommitAged is BenchmarkUpdateSessionJournalQueue's commit (one
// fsynced Update: session, journal entry, queue item) on an empty store
// and on aged ones; besides the mean (ns/op) it reports the median
// (p50-ns).
func BenchmarkCommitAged(b *testing.B) {
	for _, n := range append([]int{0}, agedSizes...) {
		b.Run("entries="+strconv.Itoa(n), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "atm.db")
			if n > 0 {
				path = copyAged(b, n)
			}
			db, err := Open(path, Options{JournalAuth: benchAuth})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			session := []byte(`{"id":"s","state":"Authorizing","amount":10000,"currency":"156","hostStan":"000123"}`)
			i := 0
			var took []time.Duration
			for b.Loop() {
				i++
				id := "bench" + strconv.Itoa(i)
				start := time.Now()
				if err := db.Update(func(tx *Tx) error {
					if err := tx.PutSession(id, session); err != nil {
						return err
					}
					if _, err := tx.AppendJournal(Entry{Kind: "Authorizing", SessionID: id, Text: "amount 100.00 CNY"}); err != nil {
						return err
					}
					_, err := tx.Enqueue("advice", id+"/advice", session)
					return err
				}); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			// The median: fsync times on a shared disk have long tails
			// that move the mean from one run to the next.
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
		})
	}
}

// BenchmarkCommitAgedRatio is BenchmarkCommitAged's commit on the empty
// store and the aged ones in turn, one of each per iteration, so that the
// shared disk's load falls on all alike: it reports each store's median
// (p50-empty-ns, p50-100000-ns, ...) and the aged medians over the empty
// one (ratio-100000, ...), the figure the goal "commit <= 1.5x the empty
// store's" is about.
func BenchmarkCommitAgedRatio(b *testing.B) {
	sizes := append([]int{0}, agedSizes...)
	dbs := make([]*DB, len(sizes))
	for k, n := range sizes {
		path := filepath.Join(b.TempDir(), "atm.db")
		if n > 0 {
			path = copyAged(b, n)
		}
		db, err := Open(path, Options{JournalAuth: benchAuth})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		dbs[k] = db
	}
	session := []byte(`{"id":"s","state":"Authorizing","amount":10000,"currency":"156","hostStan":"000123"}`)
	took := make([][]time.Duration, len(sizes))
	i := 0
	for b.Loop() {
		i++
		id := "bench" + strconv.Itoa(i)
		for k, db := range dbs {
			start := time.Now()
			if err := db.Update(func(tx *Tx) error {
				if err := tx.PutSession(id, session); err != nil {
					return err
				}
				if _, err := tx.AppendJournal(Entry{Kind: "Authorizing", SessionID: id, Text: "amount 100.00 CNY"}); err != nil {
					return err
				}
				_, err := tx.Enqueue("advice", id+"/advice", session)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			took[k] = append(took[k], time.Since(start))
		}
	}
	p50 := make([]time.Duration, len(sizes))
	for k, n := range sizes {
		slices.Sort(took[k])
		p50[k] = took[k][len(took[k])/2]
		if n == 0 {
			b.ReportMetric(float64(p50[k].Nanoseconds()), "p50-empty-ns")
			continue
		}
		b.ReportMetric(float64(p50[k].Nanoseconds()), fmt.Sprintf("p50-%d-ns", n))
		b.ReportMetric(float64(p50[k])/float64(p50[0]), fmt.Sprintf("ratio-%d", n))
	}
}
