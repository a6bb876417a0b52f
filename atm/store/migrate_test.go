package store

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The fixtures testdata/schema2.db.gz and schema1.db.gz were written by
// the previous version of this package (schema 2, commit 7214b19) with
// the generator in testdata/README.md: a keyed store (testAuth(5)) and an
// unkeyed one, as the appliance leaves them (sessions through their
// states, the open-session index, journal, queue, counters, nonces; the
// keyed one with a checkpoint and its first 10 entries pruned).
// fixtureSession describes what the generator wrote; the tests below
// check the migrated store holds exactly that.

// fixtureKey is the fixtures' journal key.
const fixtureKey = 5

var fixtureStates = []string{"AwaitingPhone", "Authorizing", "Dispensing", "Presenting", "AwaitingTake", "Completed"}

type fixtureSession struct {
	id, record string
	open       bool
}

// fixtureSessions returns the sessions of a fixture of n sessions, in id
// order, and the number of journal entries written.
func fixtureSessions(n int) (out []fixtureSession, entries int) {
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("%032X", uint64(i)*0x9E3779B97F4A7C15)
		last := len(fixtureStates)
		switch i % 10 {
		case 3:
			last = 1
		case 6:
			last = 3
		}
		entries += last
		st := fixtureStates[last-1]
		out = append(out, fixtureSession{id: id, open: st != "Completed",
			record: fmt.Sprintf(`{"id":%q,"state":%q,"amount":%d,"step":%d}`, id, st, 100*i, last-1)})
	}
	slices.SortFunc(out, func(a, b fixtureSession) int { return strings.Compare(a.id, b.id) })
	return out, entries
}

// fixture copies testdata/name (gzipped) to a temporary file.
func fixture(t testing.TB, name string) string {
	t.Helper()
	f, err := os.Open("testdata/" + name + ".gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "atm.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// layout describes where a closed store file keeps what: its schema, the
// nested schema-2 buckets, the top-level index, and whether every session
// value is sealed.
type layout struct {
	schema                  uint64
	nestedMACs, nestedIndex bool
	topIndex                bool
	sealed, bare            int // session values sealed / not
}

func fileLayout(t *testing.T, path string) layout {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var l layout
	_ = bdb.View(func(tx *bolt.Tx) error {
		l.schema, _ = readU64(tx.Bucket(bucketMeta).Get(keySchema))
		sb := tx.Bucket(bucketSessions)
		l.nestedMACs = sb.Bucket(sessionMACs) != nil
		l.nestedIndex = sb.Bucket(sessionIndex) != nil
		l.topIndex = tx.Bucket(bucketOpenSessions) != nil
		return sb.ForEach(func(k, v []byte) error {
			if v == nil {
				return nil
			}
			if _, _, ok := unsealSession(v); ok {
				l.sealed++
			} else {
				l.bare++
			}
			return nil
		})
	})
	return l
}

// checkFixture checks that db holds exactly what the schema-2 fixture's
// generator wrote, every MAC verifying.
func checkFixture(t *testing.T, db *DB) {
	t.Helper()
	want, entries := fixtureSessions(40)
	if n, err := db.VerifySessions(); err != nil || n != len(want) {
		t.Fatalf("VerifySessions: %d, %v; want %d", n, err, len(want))
	}
	if err := db.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
	if b, err := db.JournalBase(); err != nil || b.Seq != 10 {
		t.Fatalf("journal base %d, %v; want 10", b.Seq, err)
	}
	err := db.View(func(tx *Tx) error {
		var got []fixtureSession
		if err := tx.ForEachSession(func(id string, v []byte) error {
			got = append(got, fixtureSession{id: id, record: string(v)})
			return nil
		}); err != nil {
			return err
		}
		var wantOpen []string
		for i, s := range want {
			if s.open {
				wantOpen = append(wantOpen, s.id)
			}
			if i >= len(got) || got[i].id != s.id || got[i].record != s.record {
				return fmt.Errorf("session %d: %+v, want %+v", i, got[min(i, len(got)-1)], s)
			}
			if v, err := tx.GetSession(s.id); err != nil || string(v) != s.record {
				return fmt.Errorf("GetSession %s: %q, %v", s.id, v, err)
			}
		}
		if len(got) != len(want) {
			return fmt.Errorf("%d sessions, want %d", len(got), len(want))
		}
		if open, err := tx.OpenSessions(); err != nil || !slices.Equal(open, wantOpen) {
			return fmt.Errorf("open sessions %q, %v; want %q", open, err, wantOpen)
		}
		if seq, err := tx.JournalSeq(); err != nil || seq != uint64(entries) {
			return fmt.Errorf("journal head %d, %v; want %d", seq, err, entries)
		}
		items, err := tx.QueueItems()
		if err != nil || len(items) != 16 {
			return fmt.Errorf("%d queue items, %v; want 16", len(items), err)
		}
		if n, err := tx.Counter("withdrawals"); err != nil || n != 32 {
			return fmt.Errorf("withdrawals %d, %v", n, err)
		}
		if n, err := tx.DailyTotal("2025-01-02"); err != nil || n != 66400 {
			return fmt.Errorf("daily total %d, %v", n, err)
		}
		if s, err := tx.LastSTAN(); err != nil || s != fmt.Sprintf("%06d", entries) {
			return fmt.Errorf("last STAN %s, %v", s, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateSchema2Fixture: a real schema-2 file is migrated at Open
// with the key, in place: schema 3, the MACs sealed into the records, the
// index in its top-level bucket, nothing lost, every MAC verifying; it
// goes on as a schema-3 store and is not migrated again. Migrating and
// then writing schema 2's layout back (downgradeToSchema2) gives the
// fixture's contents exactly, so nothing else changed either.
func TestMigrateSchema2Fixture(t *testing.T) {
	path := fixture(t, "schema2.db")
	if l := fileLayout(t, path); l != (layout{schema: 2, nestedMACs: true, nestedIndex: true, bare: 40}) {
		t.Fatalf("the fixture is not a schema-2 file: %+v", l)
	}
	orig := dumpStore(t, path)
	auth := testAuth(fixtureKey)
	db := openAt(t, path, Options{JournalAuth: auth})
	if db.MigratedFrom() != 2 {
		t.Fatalf("MigratedFrom %d, want 2", db.MigratedFrom())
	}
	checkFixture(t, db)
	db.Close()
	if l := fileLayout(t, path); l != (layout{schema: 3, topIndex: true, sealed: 40}) {
		t.Fatalf("after the migration: %+v", l)
	}
	back := tempPath(t)
	copyFile(t, path, back)
	downgradeToSchema2(t, back)
	if got := dumpStore(t, back); !maps.Equal(got, orig) {
		t.Fatalf("migrated and written back in schema 2's layout, the store differs from the fixture:\n%s", diffDumps(orig, got))
	}

	// The store goes on: a new session through the index, a journal
	// entry; the next Open migrates nothing.
	db = openAt(t, path, Options{JournalAuth: auth, DeferFileCheck: true})
	if db.MigratedFrom() != 0 {
		t.Fatalf("second Open: MigratedFrom %d", db.MigratedFrom())
	}
	mustUpdate(t, db, func(tx *Tx) error {
		if err := tx.PutSession("FFFF", []byte(`{"new":1}`)); err != nil {
			return err
		}
		if err := tx.MarkSession("FFFF", true); err != nil {
			return err
		}
		_, err := tx.AppendJournal(Entry{Kind: "AwaitingPhone", SessionID: "FFFF"})
		return err
	})
	db.Close()
	db = openAt(t, path, Options{JournalAuth: auth})
	defer db.Close()
	if err := db.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
	if n, err := db.VerifySessions(); err != nil || n != 41 {
		t.Fatalf("VerifySessions %d, %v", n, err)
	}
	_ = db.View(func(tx *Tx) error {
		if ids, err := tx.OpenSessions(); err != nil || len(ids) != 9 || !slices.Contains(ids, "FFFF") {
			t.Errorf("open sessions %q, %v", ids, err)
		}
		return nil
	})
}

// TestMigrateRefusesTampered: a schema-2 file whose records or index do
// not verify is not migrated: Open fails with ErrSessionTampered and the
// file is left exactly as it was (byte for byte), whichever record it is
// (the first, or one in a later batch of the migration).
func TestMigrateRefusesTampered(t *testing.T) {
	sessions, _ := fixtureSessions(40)
	first, last := []byte(sessions[0].id), []byte(sessions[len(sessions)-1].id)
	for _, attack := range []struct {
		name string
		edit func(sb *bolt.Bucket) error
	}{
		{"first record edited", func(sb *bolt.Bucket) error {
			v := bytes.Clone(sb.Get(first))
			v[len(v)-2]++ // the step
			return sb.Put(first, v)
		}},
		{"last record's MAC removed", func(sb *bolt.Bucket) error { return sb.Bucket(sessionMACs).Delete(last) }},
		{"a record without a MAC added", func(sb *bolt.Bucket) error { return sb.Put([]byte("0000"), []byte(`{"state":"InDoubt"}`)) }},
		{"an open session hidden from the index", func(sb *bolt.Bucket) error {
			ix := sb.Bucket(sessionIndex)
			k, _ := ix.Cursor().Last()
			return ix.Delete(k)
		}},
		{"the index's MAC removed", func(sb *bolt.Bucket) error { return sb.Bucket(sessionIndex).Delete(sessionIndexMAC) }},
	} {
		t.Run(attack.name, func(t *testing.T) {
			path := fixture(t, "schema2.db")
			bdb, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := bdb.Update(func(tx *bolt.Tx) error { return attack.edit(tx.Bucket(bucketSessions)) }); err != nil {
				t.Fatal(err)
			}
			bdb.Close()
			before := fileDigest(t, path)
			if db, err := Open(path, Options{JournalAuth: testAuth(fixtureKey)}); !errors.Is(err, ErrSessionTampered) {
				if err == nil {
					db.Close()
				}
				t.Fatalf("Open: %v, want ErrSessionTampered", err)
			}
			if !bytes.Equal(before, fileDigest(t, path)) {
				t.Fatal("the refused migration changed the file")
			}
			// Kept for investigation: without the key it opens as it is.
			db := openAt(t, path, Options{})
			n, err := db.VerifySessions()
			db.Close()
			if err != nil || db.MigratedFrom() != 0 || n < 40 {
				t.Fatalf("opened without the key: %d sessions, %v, migrated from %d", n, err, db.MigratedFrom())
			}
			if l := fileLayout(t, path); l.schema != 2 || !bytes.Equal(before, fileDigest(t, path)) {
				t.Fatalf("opened without the key, the file changed (schema %d)", l.schema)
			}
		})
	}
	// Many records (several batches of the migration): the last one
	// edited stops it too, after the first batches were rewritten.
	path := schema2Store(t, 3*migrateBatch+10)
	rawSessions(t, path, func(sb *bolt.Bucket) error {
		k, v := sb.Cursor().Last()
		return sb.Put(k, append(bytes.Clone(v), ' '))
	})
	before := fileDigest(t, path)
	if _, err := Open(path, Options{JournalAuth: testAuth(fixtureKey)}); !errors.Is(err, ErrSessionTampered) {
		t.Fatalf("Open: %v, want ErrSessionTampered", err)
	}
	if !bytes.Equal(before, fileDigest(t, path)) {
		t.Fatal("the refused migration changed the file")
	}
	// A schema-2 file that already holds the schema-3 index is not one the
	// ATM wrote.
	path = fixture(t, "schema2.db")
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = bdb.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucketOpenSessions); return err })
	bdb.Close()
	before = fileDigest(t, path)
	if _, err := Open(path, Options{JournalAuth: testAuth(fixtureKey)}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want ErrCorrupt", err)
	}
	if !bytes.Equal(before, fileDigest(t, path)) {
		t.Fatal("the refused migration changed the file")
	}
}

// TestMigrateManySessions: a schema-2 store of several migration batches
// migrates completely.
func TestMigrateManySessions(t *testing.T) {
	n := 3*migrateBatch + 10
	path := schema2Store(t, n)
	db := openAt(t, path, Options{JournalAuth: testAuth(fixtureKey)})
	checkManySessions(t, db, n)
	db.Close()
	if l := fileLayout(t, path); l != (layout{schema: 3, topIndex: true, sealed: n}) {
		t.Fatalf("after the migration: %+v", l)
	}
}

// TestSchema1StaysAsItWas: an unkeyed store of the previous version
// (schema 1: bare records, the index nested without MAC) opens without a
// key and keeps working in its own layout; it is not migrated.
func TestSchema1StaysAsItWas(t *testing.T) {
	path := fixture(t, "schema1.db")
	want, _ := fixtureSessions(6)
	if l := fileLayout(t, path); l != (layout{schema: 1, nestedIndex: true, bare: len(want)}) {
		t.Fatalf("the fixture is not a schema-1 file: %+v", l)
	}
	db := openAt(t, path, Options{})
	if db.MigratedFrom() != 0 {
		t.Fatalf("MigratedFrom %d", db.MigratedFrom())
	}
	var wantOpen []string
	for _, s := range want {
		if s.open {
			wantOpen = append(wantOpen, s.id)
		}
	}
	err := db.View(func(tx *Tx) error {
		for _, s := range want {
			if v, err := tx.GetSession(s.id); err != nil || string(v) != s.record {
				return fmt.Errorf("GetSession %s: %q, %v", s.id, v, err)
			}
		}
		if ids, err := tx.OpenSessions(); err != nil || !slices.Equal(ids, wantOpen) {
			return fmt.Errorf("open sessions %q, %v; want %q", ids, err, wantOpen)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, db, func(tx *Tx) error {
		if err := tx.PutSession("FFFF", []byte("new")); err != nil {
			return err
		}
		return tx.MarkSession("FFFF", true)
	})
	db.Close()
	if l := fileLayout(t, path); l != (layout{schema: 1, nestedIndex: true, bare: len(want) + 1}) {
		t.Fatalf("after a write: %+v", l)
	}
	db = openAt(t, path, Options{})
	defer db.Close()
	_ = db.View(func(tx *Tx) error {
		if ids, err := tx.OpenSessions(); err != nil || !slices.Equal(ids, append(wantOpen, "FFFF")) {
			t.Errorf("open sessions %q, %v", ids, err)
		}
		return nil
	})
}

// schema2Store writes a schema-2 store of n sessions (every third open,
// in the index), a journal entry each, under testAuth(fixtureKey), and
// returns its path.
func schema2Store(t *testing.T, n int) string {
	t.Helper()
	path := tempPath(t)
	db := openAt(t, path, Options{JournalAuth: testAuth(fixtureKey)})
	mustUpdate(t, db, func(tx *Tx) error {
		var open []string
		for i := range n {
			id := fmt.Sprintf("%032X", uint64(i+1)*0x9E3779B97F4A7C15)
			if err := tx.PutSession(id, fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
				return err
			}
			if i%3 == 0 {
				open = append(open, id)
			}
			if _, err := tx.AppendJournal(Entry{Kind: "STEP", SessionID: id}); err != nil {
				return err
			}
		}
		return tx.IndexSessions(open)
	})
	db.Close()
	downgradeToSchema2(t, path)
	return path
}

// checkManySessions checks a store written by schema2Store(n).
func checkManySessions(t *testing.T, db *DB, n int) {
	t.Helper()
	if got, err := db.VerifySessions(); err != nil || got != n {
		t.Fatalf("VerifySessions %d, %v; want %d", got, err, n)
	}
	if err := db.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
	err := db.View(func(tx *Tx) error {
		var wantOpen []string
		for i := range n {
			id := fmt.Sprintf("%032X", uint64(i+1)*0x9E3779B97F4A7C15)
			if v, err := tx.GetSession(id); err != nil || string(v) != fmt.Sprintf(`{"n":%d}`, i) {
				return fmt.Errorf("session %d: %q, %v", i, v, err)
			}
			if i%3 == 0 {
				wantOpen = append(wantOpen, id)
			}
		}
		slices.Sort(wantOpen)
		if ids, err := tx.OpenSessions(); err != nil || !slices.Equal(ids, wantOpen) {
			return fmt.Errorf("open sessions: %d, %v; want %d", len(ids), err, len(wantOpen))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func rawSessions(t testing.TB, path string, fn func(sb *bolt.Bucket) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if err := bdb.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucketSessions)) }); err != nil {
		t.Fatal(err)
	}
}

// downgradeToSchema2 rewrites the closed schema-3 store at path in schema
// 2's layout, as the previous version wrote it: bare records, their MACs
// in the bucket nested in the sessions bucket, the open-session index
// nested there too. It is the migration undone (nothing verified), for
// tests and benchmarks that need a schema-2 file of any size;
// TestMigrateSchema2Fixture checks it against a file of that version.
func downgradeToSchema2(t testing.TB, path string) {
	t.Helper()
	rawTx(t, path, func(tx *bolt.Tx) error {
		sb := tx.Bucket(bucketSessions)
		type rec struct{ id, mac, v []byte }
		var recs []rec
		if err := sb.ForEach(func(k, v []byte) error {
			mac, r, ok := unsealSession(v)
			if !ok {
				return fmt.Errorf("session %q is not sealed", k)
			}
			recs = append(recs, rec{bytes.Clone(k), bytes.Clone(mac), bytes.Clone(r)})
			return nil
		}); err != nil {
			return err
		}
		if len(recs) > 0 {
			macs, err := sb.CreateBucket(sessionMACs)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if err := sb.Put(r.id, r.v); err != nil {
					return err
				}
				if err := macs.Put(r.id, r.mac); err != nil {
					return err
				}
			}
		}
		if ix := tx.Bucket(bucketOpenSessions); ix != nil {
			nix, err := sb.CreateBucket(sessionIndex)
			if err != nil {
				return err
			}
			if err := ix.ForEach(func(k, v []byte) error { return nix.Put(bytes.Clone(k), bytes.Clone(v)) }); err != nil {
				return err
			}
			if err := tx.DeleteBucket(bucketOpenSessions); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, u64(schemaKeyedV2))
	})
}

func rawTx(t testing.TB, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if err := bdb.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// dumpStore returns every bucket (with its sequence) and record of the
// closed store at path, keyed by their path of bucket names.
func dumpStore(t *testing.T, path string) map[string]string {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	out := map[string]string{}
	var walk func(prefix string, b *bolt.Bucket)
	walk = func(prefix string, b *bolt.Bucket) {
		out[prefix] = fmt.Sprintf("bucket, sequence %d", b.Sequence())
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				walk(prefix+"/"+fmt.Sprintf("%q", k), b.Bucket(k))
				continue
			}
			out[prefix+"/"+fmt.Sprintf("%q", k)] = string(v)
		}
	}
	_ = bdb.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { walk(fmt.Sprintf("%q", name), b); return nil })
	})
	return out
}

// diffDumps lists (at most 10) differences between two dumps.
func diffDumps(want, got map[string]string) string {
	var out []string
	for k, v := range want {
		if w, ok := got[k]; !ok {
			out = append(out, "missing "+k)
		} else if w != v {
			out = append(out, fmt.Sprintf("%s: %q, want %q", k, w, v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, "extra "+k)
		}
	}
	slices.Sort(out)
	return strings.Join(out[:min(len(out), 10)], "\n")
}
