package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// populated returns a closed store file with enough data to span many pages.
func populated(t *testing.T) string {
	t.Helper()
	path := tempPath(t)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, db, func(tx *Tx) error {
		for i := 0; i < 300; i++ {
			id := strings.Repeat("x", 20) + string(rune('a'+i%26)) + string(rune('a'+i/26))
			if err := tx.PutSession(id, bytes.Repeat([]byte{'v'}, 200)); err != nil {
				return err
			}
			if _, err := tx.AppendJournal(Entry{Kind: "NOTE", Text: id}); err != nil {
				return err
			}
		}
		return nil
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// expectRefused opens path, expects err to match want, mention the path and
// leave the file byte-for-byte unchanged.
func expectRefused(t *testing.T, path string, want error) error {
	t.Helper()
	before := fileDigest(t, path)
	db, err := Open(path, Options{})
	if err == nil {
		db.Close()
		t.Fatalf("Open succeeded, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("Open = %v, want %v", err, want)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error does not name the file: %v", err)
	}
	if !bytes.Equal(before, fileDigest(t, path)) {
		t.Fatalf("refused file was modified")
	}
	t.Logf("refused: %v", err)
	return err
}

// A store created without a journal key is schema 1 (no head MAC); with
// one, schema 3 with the head MAC of the empty journal.
func TestOpenCreatesSchema(t *testing.T) {
	for _, tt := range []struct {
		name   string
		auth   JournalAuthenticator
		schema uint64
	}{{"unkeyed", nil, 1}, {"keyed", testAuth(1), SchemaVersion}} {
		t.Run(tt.name, func(t *testing.T) {
			path := tempPath(t)
			db := openAt(t, path, Options{JournalAuth: tt.auth})
			db.Close()
			bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer bdb.Close()
			_ = bdb.View(func(tx *bolt.Tx) error {
				m := tx.Bucket(bucketMeta)
				if string(m.Get(keyMagic)) != Magic {
					t.Errorf("magic = %q", m.Get(keyMagic))
				}
				if v, _ := readU64(m.Get(keySchema)); v != tt.schema {
					t.Errorf("schema = %d, want %d", v, tt.schema)
				}
				if hasMAC := m.Get(keyJournalMAC) != nil; hasMAC != (tt.auth != nil) {
					t.Errorf("head MAC recorded: %v", hasMAC)
				}
				return nil
			})
			entries, err := os.ReadDir(filepath.Dir(path))
			if err != nil || len(entries) != 1 {
				t.Errorf("directory holds %v (%v), want only the store (no leftover init file)", entries, err)
			}
		})
	}
}

func TestOpenRefusesRandomBytes(t *testing.T) {
	path := tempPath(t)
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 64*1024)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	err := expectRefused(t, path, ErrCorrupt)
	if !errors.Is(err, bolt.ErrInvalid) {
		t.Errorf("error does not wrap bbolt's ErrInvalid: %v", err)
	}
}

func TestOpenRefusesTextFile(t *testing.T) {
	path := tempPath(t)
	if err := os.WriteFile(path, []byte("terminal_id = ATM00001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	expectRefused(t, path, ErrCorrupt)
}

func TestOpenRefusesEmptyFile(t *testing.T) {
	path := tempPath(t)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	expectRefused(t, path, ErrCorrupt)
}

func TestOpenRefusesTruncated(t *testing.T) {
	for _, keep := range []int64{100, 4096, 8192 + 10, -1} {
		path := populated(t)
		fi, _ := os.Stat(path)
		size := keep
		if keep < 0 {
			size = fi.Size() / 2
		}
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
		expectRefused(t, path, ErrCorrupt)
	}
}

func TestOpenRefusesDamagedMetaPages(t *testing.T) {
	path := populated(t)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte inside both meta pages' checksummed area.
	for _, off := range []int64{16 + 20, 4096 + 16 + 20} {
		b := make([]byte, 1)
		f.ReadAt(b, off)
		b[0] ^= 0xff
		f.WriteAt(b, off)
	}
	f.Close()
	err = expectRefused(t, path, ErrCorrupt)
	if !errors.Is(err, bolt.ErrChecksum) {
		t.Errorf("error does not wrap bbolt's ErrChecksum: %v", err)
	}
}

// TestOpenRefusesDamagedDataPage: valid meta pages, a data page overwritten
// with garbage. Caught by the page walk or bbolt's consistency check.
func TestOpenRefusesDamagedDataPage(t *testing.T) {
	path := populated(t)
	fi, _ := os.Stat(path)
	pages := fi.Size() / 4096
	damaged := 0
	for trial := int64(0); trial < 3*(pages-2); trial++ {
		pg, mode := 2+trial/3, trial%3
		p := tempPath(t)
		data, _ := os.ReadFile(path)
		r := rand.New(rand.NewPCG(uint64(pg), uint64(mode)))
		page := data[pg*4096 : (pg+1)*4096]
		switch mode {
		case 0: // garbage
			for i := range page {
				page[i] = byte(r.Uint32())
			}
		case 1: // zeroed
			clear(page)
		case 2: // a few flipped bytes
			for range 8 {
				page[r.IntN(len(page))] ^= byte(1 + r.IntN(255))
			}
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := Open(p, Options{})
		if err == nil && mode == 2 {
			// bbolt keeps no checksum on data pages: a few flipped bytes
			// inside values can go unnoticed by Open. Everything must
			// still be readable without a crash, and a damaged journal
			// entry is caught by the hash chain.
			if err := db.VerifyJournal(); err != nil && !errors.Is(err, ErrJournalBroken) {
				t.Fatalf("page %d: VerifyJournal = %v", pg, err)
			}
			_ = db.View(func(tx *Tx) error {
				_, _ = tx.UnitCounters()
				_, _ = tx.QueueItems()
				return tx.ForEachSession(func(string, []byte) error { return nil })
			})
			db.Close()
			continue
		}
		if err == nil {
			// A free page or one beyond the high-water mark may hold
			// anything; then every record must still read back intact.
			if err := db.VerifyJournal(); err != nil {
				t.Fatalf("page %d: accepted file has a broken journal: %v", pg, err)
			}
			n := 0
			_ = db.View(func(tx *Tx) error {
				return tx.ForEachSession(func(_ string, v []byte) error {
					if !bytes.Equal(v, bytes.Repeat([]byte{'v'}, 200)) {
						t.Errorf("page %d: accepted file has a damaged session", pg)
					}
					n++
					return nil
				})
			})
			if n != 300 {
				t.Fatalf("page %d: accepted file has %d sessions, want 300", pg, n)
			}
			db.Close()
			continue
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("page %d: Open = %v, want ErrCorrupt", pg, err)
		}
		damaged++
	}
	if damaged == 0 {
		t.Fatal("no damaged page was detected")
	}
	t.Logf("%d of %d damaged copies refused", damaged, 3*(pages-2))
}

func TestOpenRefusesForeignBolt(t *testing.T) {
	path := tempPath(t)
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("widgets"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	expectRefused(t, path, ErrForeign)

	// A "meta" bucket with someone else's magic is foreign too.
	path2 := tempPath(t)
	bdb, _ = bolt.Open(path2, 0o600, nil)
	_ = bdb.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket(bucketMeta)
		return b.Put(keyMagic, []byte("someone-else"))
	})
	bdb.Close()
	expectRefused(t, path2, ErrForeign)
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := populated(t)
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = bdb.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, u64(SchemaVersion+1)) })
	bdb.Close()
	err = expectRefused(t, path, ErrSchemaVersion)
	if !strings.Contains(err.Error(), fmt.Sprintf("schema %d", SchemaVersion+1)) {
		t.Errorf("error does not say which schema: %v", err)
	}
}

func TestOpenRefusesMissingBucket(t *testing.T) {
	path := populated(t)
	bdb, _ := bolt.Open(path, 0o600, nil)
	_ = bdb.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketQueue) })
	bdb.Close()
	expectRefused(t, path, ErrCorrupt)
}

// TestOpenAcceptsEarlierBuckets: files written by earlier versions carry a
// "seqs" bucket this version no longer creates or reads; they still open,
// and their data is intact.
func TestOpenAcceptsEarlierBuckets(t *testing.T) {
	path := populated(t)
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("seqs"))
		if err != nil {
			return err
		}
		return b.Put([]byte("batch"), u64(3))
	}); err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	db := openAt(t, path, Options{})
	if err := db.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func TestOpenRefusesDirectory(t *testing.T) {
	if _, err := Open(t.TempDir(), Options{}); err == nil {
		t.Fatal("opened a directory")
	}
}

func TestReopenPersistence(t *testing.T) {
	path := tempPath(t)
	db := openAt(t, path, Options{})
	mustUpdate(t, db, func(tx *Tx) error {
		if err := tx.PutSession("s1", []byte("session-1")); err != nil {
			return err
		}
		if _, err := tx.AppendJournal(Entry{Kind: "A"}); err != nil {
			return err
		}
		_, err := tx.Enqueue("advice", "s1/advice", []byte("p"))
		return err
	})
	db.Close()
	for i := 0; i < 3; i++ {
		db = openAt(t, path, Options{})
		mustUpdate(t, db, func(tx *Tx) error {
			v, err := tx.GetSession("s1")
			if err != nil || string(v) != "session-1" {
				t.Fatalf("session after reopen: %q, %v", v, err)
			}
			items, _ := tx.QueueItems()
			if len(items) != 1 {
				t.Fatalf("queue after reopen: %+v", items)
			}
			e, err := tx.AppendJournal(Entry{Kind: "B"})
			if err != nil || e.Seq != uint64(i+2) {
				t.Fatalf("append after reopen: %+v, %v", e, err)
			}
			return nil
		})
		if err := db.VerifyJournal(); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}
