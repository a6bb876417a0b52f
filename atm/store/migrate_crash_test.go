package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMigrateTornCommit: the states a crash inside the migration's commit
// can leave, built from the file before and after it. bbolt writes the
// commit's pages to free space, syncs, then writes the meta page: until
// that meta page is complete the file's current meta page is still the
// old one, whose pages nothing overwrote. Each state opens as schema 2 and
// is migrated then, or opens as schema 3; either way holding exactly the
// fixture's contents.
func TestMigrateTornCommit(t *testing.T) {
	path := fixture(t, "schema2.db")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	openAt(t, path, Options{JournalAuth: testAuth(fixtureKey)}).Close()
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m0, err := parseMeta(before)
	if err != nil {
		t.Fatal(err)
	}
	ps := int(m0.pageSize)
	page := func(b []byte, p int) []byte { return b[p*ps : (p+1)*ps] }
	meta := -1 // the meta page the migration's commit wrote
	for p := range 2 {
		if !bytes.Equal(page(before, p), page(after, p)) {
			if meta >= 0 {
				t.Fatal("the migration wrote both meta pages")
			}
			meta = p
		}
	}
	if meta < 0 {
		t.Fatal("the migration wrote no meta page")
	}
	var written []int // the data pages the commit wrote
	for p := 2; p < len(after)/ps; p++ {
		if (p+1)*ps > len(before) || !bytes.Equal(page(before, p), page(after, p)) {
			written = append(written, p)
		}
	}
	if len(written) == 0 {
		t.Fatal("the migration wrote no data page")
	}
	t.Logf("the migration's commit wrote %d pages and meta page %d", len(written), meta)

	allButMeta := bytes.Clone(after)
	copy(page(allButMeta, meta), page(before, meta))
	half := make([]byte, len(after))
	copy(half, before)
	for i, p := range written {
		if i%2 == 0 {
			copy(page(half, p), page(after, p))
		}
	}
	torn := bytes.Clone(after)
	// The meta page's second half (root, freelist, high-water mark, txid,
	// checksum) still the old one's.
	copy(torn[meta*ps+pageHeaderSize+32:meta*ps+pageHeaderSize+metaSize], before[meta*ps+pageHeaderSize+32:])
	for _, st := range []struct {
		name   string
		file   []byte
		schema uint64
	}{
		{"every page written, not the meta page", allButMeta, 2},
		{"half the pages written", half, 2},
		{"meta page torn", torn, 2},
		{"committed", after, 3},
	} {
		t.Run(st.name, func(t *testing.T) {
			p := tempPath(t)
			if err := os.WriteFile(p, st.file, 0o600); err != nil {
				t.Fatal(err)
			}
			checkCrashed(t, p, st.schema, 40)
		})
	}
}

// checkCrashed checks the store file at path a crash left in the middle
// of the migration of a schema-2 store of n sessions (the fixture, n 40,
// or schema2Store(n)): it is wholly schema 2 or wholly schema 3 (want, if
// not 0), and opening it with the key (migrating it if it is schema 2)
// gives exactly what was written. It returns the schema found.
func checkCrashed(t *testing.T, path string, want uint64, n int) uint64 {
	t.Helper()
	l := fileLayout(t, path)
	switch {
	case want != 0 && l.schema != want:
		t.Fatalf("the file is schema %d, want %d", l.schema, want)
	case l.schema == 2 && l != (layout{schema: 2, nestedMACs: true, nestedIndex: true, bare: n}):
		t.Fatalf("a schema-2 file not in schema 2's layout: %+v", l)
	case l.schema == 3 && l != (layout{schema: 3, topIndex: true, sealed: n}):
		t.Fatalf("a schema-3 file not in schema 3's layout: %+v", l)
	case l.schema != 2 && l.schema != 3:
		t.Fatalf("the file is schema %d", l.schema)
	}
	db := openAt(t, path, Options{JournalAuth: testAuth(fixtureKey)})
	defer db.Close()
	if from := db.MigratedFrom(); (from == 2) != (l.schema == 2) {
		t.Fatalf("Open migrated from schema %d a schema-%d file", from, l.schema)
	}
	if n == 40 {
		checkFixture(t, db)
	} else {
		checkManySessions(t, db, n)
	}
	return l.schema
}

const migrateChildEnv = "STORE_MIGRATE_CHILD_DB"

// runMigrateChild is the child process of TestMigrateCrash: it opens the
// store with the key (migrating it), unless a failure point kills it.
func runMigrateChild(path string) {
	db, err := Open(path, Options{JournalAuth: testAuth(fixtureKey)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	fmt.Println("migrated from schema", db.MigratedFrom())
	db.Close()
	os.Exit(0)
}

// TestMigrateCrash kills a process in the middle of the migration: this
// package's tests built with the tag failpoint, run as a child that opens
// a schema-2 store with the key, killed by its failure point
// (FailpointEnv) just before the migration's commit, just after it, and
// at delays after the commit began (some of them inside bbolt's writes).
// Whatever the moment, the file is schema 2 as it was (then migrated by
// the next Open) or schema 3 complete.
func TestMigrateCrash(t *testing.T) {
	if path := os.Getenv(migrateChildEnv); path != "" {
		runMigrateChild(path)
		return
	}
	if testing.Short() {
		t.Skip("builds and spawns a child process")
	}
	bin := filepath.Join(t.TempDir(), "store-failpoint.test")
	if out, err := exec.Command("go", "test", "-c", "-tags", "failpoint", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building the failpoint test binary: %v\n%s", err, out)
	}
	run := func(t *testing.T, path, point string) (killed bool) {
		t.Helper()
		cmd := exec.Command(bin, "-test.run=^TestMigrateCrash$", "-test.count=1")
		cmd.Env = append(os.Environ(), migrateChildEnv+"="+path, FailpointEnv+"="+point)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		watchdog := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
		err := cmd.Wait()
		watchdog.Stop()
		var ee *exec.ExitError
		switch {
		case err == nil && strings.HasPrefix(stdout.String(), "migrated from schema 2\n"):
			return false
		case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL:
			return true
		}
		t.Fatalf("child: %v\n%s%s", err, stdout.String(), stderr.String())
		return false
	}

	t.Run("before the commit", func(t *testing.T) {
		path := fixture(t, "schema2.db")
		before := fileDigest(t, path)
		if !run(t, path, FailpointMigrateSealed) {
			t.Fatal("the child was not killed at its failure point")
		}
		if !bytes.Equal(before, fileDigest(t, path)) {
			t.Fatal("a migration killed before its commit changed the file")
		}
		checkCrashed(t, path, 2, 40)
	})
	t.Run("after the commit", func(t *testing.T) {
		path := fixture(t, "schema2.db")
		if !run(t, path, FailpointMigrateCommitted) {
			t.Fatal("the child was not killed at its failure point")
		}
		checkCrashed(t, path, 3, 40)
	})
	t.Run("during the commit", func(t *testing.T) {
		// A store whose migration commit writes a few megabytes.
		const n = 20000
		src := schema2Store(t, n)
		srcDigest := fileDigest(t, src)
		outcomes := map[string]int{}
		for _, delay := range []string{"0s", "500us", "1ms", "2ms", "3ms", "5ms", "8ms", "12ms", "20ms", "40ms", "100ms"} {
			path := tempPath(t)
			copyFile(t, src, path)
			killed := run(t, path, FailpointMigrateSealed+"+"+delay)
			changed := !bytes.Equal(srcDigest, fileDigest(t, path))
			schema := checkCrashed(t, path, 0, n)
			outcome := fmt.Sprintf("schema %d", schema)
			switch {
			case !killed:
				outcome += ", not killed"
			case schema == 2 && changed:
				outcome += ", killed inside the commit (pages written, meta not)"
			case schema == 2:
				outcome += ", killed before any write"
			default:
				outcome += ", killed after the commit"
			}
			outcomes[outcome]++
			t.Logf("killed %s after the commit began: %s", delay, outcome)
		}
		t.Logf("outcomes: %v", outcomes)
	})
}
