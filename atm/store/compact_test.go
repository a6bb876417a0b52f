package store

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"testing"
)

// The crash test runs the test binary again as a child that compacts the
// store and stops dead (os.Exit, no cleanup) right after one step.
const (
	compactCrashPath = "STORE_TEST_COMPACT_PATH"
	compactCrashStep = "STORE_TEST_COMPACT_CRASH"
)

func TestCompactCrashChild(t *testing.T) {
	path, step := os.Getenv(compactCrashPath), os.Getenv(compactCrashStep)
	if path == "" {
		t.Skip("the child of TestCompactCrash")
	}
	CompactFile(path, func(s string) {
		if s == step {
			os.Exit(3)
		}
	})
	os.Exit(4) // never reached the step
}

// TestCompactCrash kills the compaction after each step and checks that
// the store at its path is always whole (the old one or the new one):
// it opens, its journal verifies with every entry, and a second
// compaction completes and shrinks the file.
func TestCompactCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	for _, step := range CompactSteps {
		t.Run(step, func(t *testing.T) {
			path, _ := prunedDB(t) // 20 entries, 1..10 pruned
			db := openKeyed(t, path)
			appendN(t, db, 300) // pages to free
			if _, err := db.PruneJournal(250, 100); err == nil {
				t.Fatal("pruned past the checkpoint")
			}
			head, err := db.VerifyJournalSince()
			if err != nil {
				t.Fatal(err)
			}
			if err := db.SetCheckpoint(head); err != nil {
				t.Fatal(err)
			}
			if _, err := db.PruneJournal(250, 100); err != nil {
				t.Fatal(err)
			}
			db.Close()

			cmd := exec.Command(os.Args[0], "-test.run=^TestCompactCrashChild$")
			cmd.Env = append(os.Environ(), compactCrashPath+"="+path, compactCrashStep+"="+step)
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
				t.Fatalf("child did not stop after %s: %v\n%s", step, err, out)
			}
			check := func(when string) {
				t.Helper()
				db, err := Open(path, Options{Now: newClock().Now, JournalAuth: testAuth(7)})
				if err != nil {
					t.Fatalf("%s: open: %v", when, err)
				}
				defer db.Close()
				if err := db.VerifyJournal(); err != nil {
					t.Fatalf("%s: %v", when, err)
				}
				var n int
				db.View(func(tx *Tx) error {
					return tx.JournalRange(0, func(Entry) error { n++; return nil })
				})
				if n != 320-250 {
					t.Fatalf("%s: %d live entries, want %d", when, n, 320-250)
				}
			}
			check(fmt.Sprintf("after a crash at %q", step))
			before, after, err := CompactFile(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
				t.Fatalf("leftover copy: %v", err)
			}
			if step == "copied" || step == "checked" {
				if after >= before {
					t.Fatalf("compaction after the crash: %d -> %d bytes", before, after)
				}
			}
			check("after a full compaction")
		})
	}
}

// TestCompactKeepsSessions: compaction copies a store as it is, in its
// own layout: a schema-2 file stays schema 2 (Open migrates it with the
// key, as before the compaction) and a schema-3 file stays schema 3, with
// the same contents, every record and the index verifying.
func TestCompactKeepsSessions(t *testing.T) {
	for _, migrated := range []bool{false, true} {
		t.Run(fmt.Sprintf("schema 3: %v", migrated), func(t *testing.T) {
			path := fixture(t, "schema2.db")
			want := layout{schema: 2, nestedMACs: true, nestedIndex: true, bare: 40}
			if migrated {
				openAt(t, path, Options{JournalAuth: testAuth(fixtureKey)}).Close()
				want = layout{schema: 3, topIndex: true, sealed: 40}
			}
			dump := dumpStore(t, path)
			if _, _, err := CompactFile(path, nil); err != nil {
				t.Fatal(err)
			}
			if l := fileLayout(t, path); l != want {
				t.Fatalf("compacted: %+v, want %+v", l, want)
			}
			if got := dumpStore(t, path); !maps.Equal(got, dump) {
				t.Fatalf("the compaction changed the contents:\n%s", diffDumps(dump, got))
			}
			db := openAt(t, path, Options{JournalAuth: testAuth(fixtureKey)})
			defer db.Close()
			checkFixture(t, db)
		})
	}
}
