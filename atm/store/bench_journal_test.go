package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
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

// copyAged copies the aged store to a fresh file of b. It is synced, so
// that the first commits measured do not pay for writing the copy back
// from the page cache.
func copyAged(b *testing.B, entries int) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "atm.db")
	copyFileSynced(b, agedStorePath(b, entries), p)
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
	// The open-session index, as the appliance keeps it: every session
	// above finished.
	return db.Update(func(tx *Tx) error { return tx.IndexSessions(nil) })
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
				b.ReportMetric(fileMB(b, path), "MB")
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
				if err := benchCommit(db, id, session); err != nil {
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
// store's" is about, and the pages each commit wrote, the meta page
// included (pages-empty, pages-100000, ...: bbolt's TxStats, a mean).
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
	pages := make([]int64, len(sizes)) // pages written (bbolt's TxStats), meta page included
	i := 0
	for b.Loop() {
		i++
		id := "bench" + strconv.Itoa(i)
		for k, db := range dbs {
			written := pagesWritten(db)
			start := time.Now()
			if err := benchCommit(db, id, session); err != nil {
				b.Fatal(err)
			}
			took[k] = append(took[k], time.Since(start))
			pages[k] += pagesWritten(db) - written
		}
	}
	p50 := make([]time.Duration, len(sizes))
	for k, n := range sizes {
		slices.Sort(took[k])
		p50[k] = took[k][len(took[k])/2]
		if n == 0 {
			b.ReportMetric(float64(p50[k].Nanoseconds()), "p50-empty-ns")
			b.ReportMetric(float64(pages[k])/float64(i), "pages-empty")
			continue
		}
		b.ReportMetric(float64(pages[k])/float64(i), fmt.Sprintf("pages-%d", n))
		b.ReportMetric(float64(p50[k].Nanoseconds()), fmt.Sprintf("p50-%d-ns", n))
		b.ReportMetric(float64(p50[k])/float64(p50[0]), fmt.Sprintf("ratio-%d", n))
	}
}

// withdrawalStates are the commits of one withdrawal as the appliance
// makes them: the session record at each state, the open-session index
// when the session opens and when it finishes, a journal entry each, the
// advice queued at completion.
var withdrawalStates = []struct {
	state string
	open  bool
}{{"AwaitingPhone", true}, {"Authorizing", true}, {"Dispensing", true}, {"Presenting", true},
	{"AwaitingTake", true}, {"Completed", false}, {"ADVICE SENT", false}, {"ADVICE ACKNOWLEDGED", false}}

// BenchmarkCommitPagesAged counts the pages written per commit of a whole
// withdrawal (withdrawalStates: the open-session index changes twice in
// eight commits) on the empty store and the aged ones, with bbolt's
// TxStats (pages-per-commit, the meta page included). An op is one
// withdrawal, eight fsynced commits.
func BenchmarkCommitPagesAged(b *testing.B) {
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
			if n == 0 {
				if err := db.Update(func(tx *Tx) error { return tx.IndexSessions(nil) }); err != nil {
					b.Fatal(err)
				}
			}
			rnd := rand.New(rand.NewPCG(1, uint64(n)))
			commits := 0
			written := pagesWritten(db)
			for b.Loop() {
				// Random, as the appliance's session IDs are: a new
				// session lands anywhere in the sessions tree.
				id := fmt.Sprintf("%016X%016X", rnd.Uint64(), rnd.Uint64())
				for _, st := range withdrawalStates {
					session := fmt.Sprintf(`{"id":%q,"terminal":"ATM00001","amount":35000,"currency":"156","state":%q,"hostStan":"000123","rrn":"261263520001","paid":35000}`, id, st.state)
					if err := db.Update(func(tx *Tx) error {
						if err := tx.PutSession(id, []byte(session)); err != nil {
							return err
						}
						if err := tx.MarkSession(id, st.open); err != nil {
							return err
						}
						if _, err := tx.AppendJournal(Entry{Kind: st.state, SessionID: id, Text: "amount 350.00 CNY"}); err != nil {
							return err
						}
						if st.state == "Completed" {
							_, err := tx.Enqueue("advice", id+"/advice", []byte(session))
							return err
						}
						return nil
					}); err != nil {
						b.Fatal(err)
					}
					commits++
				}
			}
			b.ReportMetric(float64(pagesWritten(db)-written)/float64(commits), "pages-per-commit")
		})
	}
}

// pagesWritten is the number of page writes db's commits made so far
// (bbolt's TxStats: one per page with its overflow, one per meta page).
func pagesWritten(db *DB) int64 {
	st := db.bolt.Stats()
	return st.TxStats.GetWrite()
}

// BenchmarkMigrateAged is the first start of this version on an aged
// store of the previous one: Open, as the appliance opens it (with
// DeferFileCheck), of a schema-2 file (the aged store written back in
// schema 2's layout, downgradeToSchema2), which migrates it to schema 3:
// every session record's MAC verified and sealed into its value, in one
// transaction. It reports the sessions migrated and, on the migrated
// file, the pages per commit of BenchmarkCommitAgedRatio's commit
// (pages-per-commit-after).
func BenchmarkMigrateAged(b *testing.B) {
	for _, n := range agedSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			b.StopTimer() // only the Open is timed
			src := copyAged(b, n)
			downgradeToSchema2(b, src)
			b.ReportMetric(fileMB(b, src), "MB-before")
			var path string
			var db *DB
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if db != nil {
					db.Close()
				}
				path = filepath.Join(b.TempDir(), "atm.db")
				copyFileSynced(b, src, path)
				runtime.GC()
				heap := sampleHeap()
				b.StartTimer()
				var err error
				db, err = Open(path, Options{JournalAuth: benchAuth, DeferFileCheck: true})
				b.StopTimer()
				peak, base := heap()
				if err != nil {
					b.Fatal(err)
				}
				if db.MigratedFrom() != schemaKeyedV2 {
					b.Fatalf("not migrated: %d", db.MigratedFrom())
				}
				b.ReportMetric(float64(peak-base)/1e6, "peak-heap-MB")
			}
			defer db.Close()
			b.ReportMetric(fileMB(b, path), "MB-after")
			sessions, err := db.VerifySessions()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(sessions), "sessions")
			session := []byte(`{"id":"s","state":"Authorizing","amount":10000,"currency":"156","hostStan":"000123"}`)
			written := pagesWritten(db)
			const commits = 200
			for i := range commits {
				id := "bench" + strconv.Itoa(i)
				if err := benchCommit(db, id, session); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(pagesWritten(db)-written)/commits, "pages-per-commit-after")
		})
	}
}

// copyFileSynced copies the file from to the new file to, synced.
func copyFileSynced(b *testing.B, from, to string) {
	b.Helper()
	raw, err := os.ReadFile(from)
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(raw); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// fileMB is the size of the file at path in MB (10^6 bytes).
func fileMB(b *testing.B, path string) float64 {
	b.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return float64(fi.Size()) / 1e6
}

// sampleHeap samples the live heap (runtime/metrics, without stopping
// the world) every millisecond until the returned function is called,
// which returns the largest sample and the first.
func sampleHeap() (stop func() (peak, base uint64)) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	done, result := make(chan struct{}), make(chan uint64)
	go func() {
		peak := base
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				result <- max(peak, read())
				return
			case <-t.C:
				peak = max(peak, read())
			}
		}
	}()
	return func() (uint64, uint64) { close(done); return <-result, base }
}

// benchCommit is the benchmarks' commit, as one state change of the core
// writes it: the session record, its journal entry and a queue item.
func benchCommit(db *DB, id string, session []byte) error {
	return db.Update(func(tx *Tx) error {
		if err := tx.PutSession(id, session); err != nil {
			return err
		}
		if _, err := tx.AppendJournal(Entry{Kind: "Authorizing", SessionID: id, Text: "amount 100.00 CNY"}); err != nil {
			return err
		}
		_, err := tx.Enqueue("advice", id+"/advice", session)
		return err
	})
}
