package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
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
		db, err := Open(a.path, Options{JournalAuth: benchAuth})
		if err != nil {
			a.err = err
			return
		}
		defer db.Close()
		states := []string{"AwaitingPhone", "Authorizing", "Dispensing", "Presenting", "AwaitingTake", "Completed", "ADVICE SENT", "ADVICE ACKNOWLEDGED"}
		const batch = 2000 // withdrawals per transaction
		for w := 0; w*len(states) < entries; w += batch {
			a.err = db.Update(func(tx *Tx) error {
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
			if a.err != nil {
				return
			}
		}
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

var agedSizes = []int{100_000, 1_000_000}

// BenchmarkStartAged is what an aged ATM does at start with its store:
// open it and verify the journal since the checkpoint (100 entries
// since, as after a restart); "full" verifies the whole chain instead,
// as the appliance did before checkpoints.
func BenchmarkStartAged(b *testing.B) {
	for _, n := range agedSizes {
		for _, mode := range []string{"checkpoint", "full"} {
			b.Run(fmt.Sprintf("entries=%d/%s", n, mode), func(b *testing.B) {
				path := copyAged(b, n)
				db, err := Open(path, Options{JournalAuth: benchAuth})
				if err != nil {
					b.Fatal(err)
				}
				if mode == "checkpoint" {
					var cp Checkpoint
					err := db.View(func(tx *Tx) error {
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
				}
				db.Close()
				for b.Loop() {
					db, err := Open(path, Options{JournalAuth: benchAuth})
					if err != nil {
						b.Fatal(err)
					}
					if mode == "checkpoint" {
						_, err = db.VerifyJournalSince()
					} else {
						err = db.VerifyJournal()
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

// BenchmarkCommitAged is BenchmarkUpdateSessionJournalQueue's commit (one
// fsynced Update: session, journal entry, queue item) on an empty store
// and on aged ones.
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
			for b.Loop() {
				i++
				id := "bench" + strconv.Itoa(i)
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
			}
		})
	}
}
