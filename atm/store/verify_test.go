package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// bboltCheck runs bbolt's own Tx.Check on the closed file at path and
// returns the first problem it reports.
func bboltCheck(path string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bbolt panicked: %v", r)
		}
	}()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		return err
	}
	defer bdb.Close()
	return bdb.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		return first
	})
}

// withFreePages returns a closed store file whose freelist holds pages:
// populated, then a few commits that rewrite pages.
func withFreePages(t *testing.T) string {
	t.Helper()
	path := populated(t)
	db := openAt(t, path, Options{})
	for i := range 5 {
		mustUpdate(t, db, func(tx *Tx) error {
			_, err := tx.AppendJournal(Entry{Kind: "NOTE", Text: fmt.Sprint(i)})
			return err
		})
	}
	db.Close()
	return path
}

// keyedWithFreePages is withFreePages with a journal key (schema 3):
// sealed session records and an open-session index of more than a page
// (a top-level bucket with a tree of its own, not inline).
func keyedWithFreePages(t *testing.T) string {
	t.Helper()
	path := tempPath(t)
	db := openAt(t, path, Options{JournalAuth: testAuth(3)})
	mustUpdate(t, db, func(tx *Tx) error {
		var open []string
		for i := range 300 {
			id := fmt.Sprintf("%032X", i)
			if err := tx.PutSession(id, []byte(`{"state":"Completed","amount":35000}`)); err != nil {
				return err
			}
			if _, err := tx.AppendJournal(Entry{Kind: "NOTE", SessionID: id}); err != nil {
				return err
			}
			if i%3 == 0 {
				open = append(open, id)
			}
		}
		return tx.IndexSessions(open)
	})
	for i := range 5 {
		mustUpdate(t, db, func(tx *Tx) error {
			return tx.PutSession(fmt.Sprintf("%032X", i*7), []byte(`{"state":"Recovered"}`))
		})
	}
	db.Close()
	return path
}

// currentMeta returns the file's current meta page.
func currentMeta(t *testing.T, data []byte) boltMeta {
	t.Helper()
	m0, err0 := parseMeta(data)
	m1, err1 := parseMeta(data[4096:])
	if err0 != nil || err1 != nil {
		t.Fatal(err0, err1)
	}
	if m1.txid > m0.txid {
		return m1
	}
	return m0
}

// freelist returns the offset of the file's freelist ids and the ids.
func freelist(t *testing.T, data []byte) (int, []uint64) {
	t.Helper()
	m := currentMeta(t, data)
	p := data[int(m.freelist)*4096:]
	ne := binary.NativeEndian
	start, count := pageHeaderSize, int(ne.Uint16(p[10:]))
	if count == 0xFFFF {
		count, start = int(ne.Uint64(p[16:])), start+8
	}
	ids := make([]uint64, count)
	for i := range ids {
		ids[i] = ne.Uint64(p[start+8*i:])
	}
	return int(m.freelist)*4096 + start, ids
}

// TestWalkAccountsForEveryPage: damage bbolt's Tx.Check finds in the
// freelist and in key order, the walk finds too, with these messages.
func TestWalkAccountsForEveryPage(t *testing.T) {
	ne := binary.NativeEndian
	for _, tc := range []struct {
		name        string
		damage      func(data []byte) (want, wantBbolt string)
		wantRefusal bool
	}{
		{"free page in use", func(data []byte) (string, string) {
			off, _ := freelist(t, data)
			root := currentMeta(t, data).root
			ne.PutUint64(data[off:], root)
			return fmt.Sprintf("page %d is in use and listed in the freelist", root), fmt.Sprintf("page %d: reachable freed", root)
		}, true},
		{"page leaked", func(data []byte) (string, string) {
			off, ids := freelist(t, data)
			// The first id replaced by the second: the first is then in
			// neither, the second listed twice. Instead drop the first by
			// shifting the others down and shortening the list.
			copy(data[off:], data[off+8:off+8*len(ids)])
			m := currentMeta(t, data)
			ne.PutUint16(data[int(m.freelist)*4096+10:], uint16(len(ids)-1))
			return fmt.Sprintf("page %d is neither in use nor in the freelist", ids[0]), fmt.Sprintf("page %d: unreachable unfreed", ids[0])
		}, true},
		{"page freed twice", func(data []byte) (string, string) {
			off, ids := freelist(t, data)
			ne.PutUint64(data[off+8:], ids[0])
			return fmt.Sprintf("page %d listed twice in the freelist", ids[0]), fmt.Sprintf("page %d: already freed", ids[0])
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := withFreePages(t)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, ids := freelist(t, data); len(ids) < 2 {
				t.Fatalf("freelist holds %d pages, want at least 2", len(ids))
			}
			want, wantBbolt := tc.damage(data)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = preflight(path, walkScope{})
			if w := "store: open " + path + ": store: database file is corrupt: bbolt structure damaged: " + want + ": invalid database"; err == nil || err.Error() != w {
				t.Errorf("walk: %v\nwant %s", err, w)
			}
			if err := bboltCheck(path); err == nil || err.Error() != wantBbolt {
				t.Errorf("bbolt's check: %v, want %s", err, wantBbolt)
			}
		})
	}
}

// TestWalkChecksKeysAcrossPages: a branch key that cuts into the keys of
// the child before it (a key order bbolt's Tx.Check refuses) is refused.
func TestWalkChecksKeysAcrossPages(t *testing.T) {
	path := populated(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ne := binary.NativeEndian
	m := currentMeta(t, data)
	page := func(id uint64) []byte { return data[id*4096 : (id+1)*4096] }
	// The journal bucket's root page, through the root bucket's leaf.
	var journalRoot uint64
	rp := page(m.root)
	for i := 0; i < int(ne.Uint16(rp[10:])); i++ {
		el := rp[pageHeaderSize+i*elementSize:]
		pos, ksize := int(ne.Uint32(el[4:])), int(ne.Uint32(el[8:]))
		if string(el[pos:pos+ksize]) == "journal" {
			journalRoot = ne.Uint64(el[pos+ksize:])
		}
	}
	jp := page(journalRoot)
	if ne.Uint16(jp[8:]) != branchPageFlag || ne.Uint16(jp[10:]) < 2 {
		t.Fatalf("journal root %d is not a branch page of 2 or more", journalRoot)
	}
	el0, el1 := jp[pageHeaderSize:], jp[pageHeaderSize+elementSize:]
	child0 := ne.Uint64(el0[8:])
	// Element 1's key (the first key of child 1) becomes 2: child 0
	// holds entries 1, 2, ... so its entry 2 is beyond it.
	pos, ksize := int(ne.Uint32(el1[0:])), int(ne.Uint32(el1[4:]))
	if ksize != 8 {
		t.Fatalf("journal key of %d bytes", ksize)
	}
	binary.BigEndian.PutUint64(el1[pos:], 2)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = preflight(path, walkScope{})
	want := fmt.Sprintf("store: open %s: store: database file is corrupt: bbolt structure damaged: page %d element 1: key beyond its parent's range: invalid database", path, child0)
	if err == nil || err.Error() != want {
		t.Errorf("walk: %v\nwant %s", err, want)
	}
	if err := bboltCheck(path); err == nil {
		t.Error("bbolt's check passes the file")
	}
}

// TestWalkFindsWhatBboltCheckFinds: data pages damaged in many ways; a
// file the walk passes also passes bbolt's Tx.Check, so the walk on its
// own (DB.CheckFile, which cannot use Tx.Check beside writers) misses
// nothing Tx.Check would find.
func TestWalkFindsWhatBboltCheckFinds(t *testing.T) {
	t.Run("unkeyed", func(t *testing.T) { walkAgainstBbolt(t, withFreePages(t)) })
	t.Run("keyed", func(t *testing.T) { walkAgainstBbolt(t, keyedWithFreePages(t)) })
	// Schema 2, as the walk meets it before Open migrates it: the MACs
	// and the index in buckets nested in the sessions bucket.
	t.Run("schema 2", func(t *testing.T) {
		path := keyedWithFreePages(t)
		downgradeToSchema2(t, path)
		walkAgainstBbolt(t, path)
	})
}

func walkAgainstBbolt(t *testing.T, path string) {
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pages := int64(len(orig) / 4096)
	refused, bboltRefused := 0, 0
	for pg := int64(2); pg < pages; pg++ {
		for mode := range 5 {
			data := append([]byte(nil), orig...)
			r := rand.New(rand.NewPCG(uint64(pg), uint64(mode)))
			p := data[pg*4096 : (pg+1)*4096]
			switch mode {
			case 0: // garbage
				for i := range p {
					p[i] = byte(r.Uint32())
				}
			case 1: // zeroed
				clear(p)
			case 2: // a few flipped bytes
				for range 8 {
					p[r.IntN(len(p))] ^= byte(1 + r.IntN(255))
				}
			case 3: // a stale copy of another page, with this page's id
				other := 2 + r.Int64N(pages-2)
				copy(p[8:], orig[other*4096+8:(other+1)*4096])
			case 4: // the header's element count changed
				binary.NativeEndian.PutUint16(p[10:], binary.NativeEndian.Uint16(p[10:])+uint16(1+r.IntN(3)))
			}
			dp := tempPath(t)
			if err := os.WriteFile(dp, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := preflight(dp, walkScope{}); err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("page %d mode %d: %v", pg, mode, err)
				}
				refused++
				continue
			}
			if err := bboltCheck(dp); err != nil {
				bboltRefused++
				t.Errorf("page %d mode %d: the walk passes a file bbolt's check refuses: %v", pg, mode, err)
			}
			os.Remove(dp)
		}
	}
	if refused == 0 {
		t.Fatal("the walk refused nothing")
	}
	t.Logf("%d of %d damaged copies refused by the walk, %d passed by the walk but not by bbolt", refused, 5*(pages-2), bboltRefused)
}

// agedKeyed returns a closed keyed store of n journal entries, the first
// larger than a page, a few pages free and the checkpoint at the head.
func agedKeyed(t *testing.T, n int) string {
	t.Helper()
	path := tempPath(t)
	db := openAt(t, path, Options{JournalAuth: testAuth(5)})
	for w := 0; w < n; w += 500 {
		mustUpdate(t, db, func(tx *Tx) error {
			for i := w + 1; i <= w+500 && i <= n; i++ {
				text := fmt.Sprintf("withdrawal %d, amount 350.00 CNY", i)
				if i == 1 {
					text = string(make([]byte, 6000))
				}
				if _, err := tx.AppendJournal(Entry{Kind: "NOTE", Text: text}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	head, err := db.VerifyJournalSince()
	if err == nil {
		err = db.SetCheckpoint(head)
	}
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	return path
}

// journalLeafID returns the page of the journal leaf holding entry seq.
func journalLeafID(t *testing.T, data []byte, seq uint64) uint64 {
	t.Helper()
	ne := binary.NativeEndian
	m := currentMeta(t, data)
	page := func(id uint64) []byte { return data[id*4096 : (id+1)*4096] }
	find := func(p []byte, key []byte) (val []byte, child uint64) {
		for i := 0; i < int(ne.Uint16(p[10:])); i++ {
			el := p[pageHeaderSize+i*elementSize:]
			if ne.Uint16(p[8:]) == branchPageFlag {
				pos, ksize := int(ne.Uint32(el[0:])), int(ne.Uint32(el[4:]))
				if string(el[pos:pos+ksize]) > string(key) {
					break
				}
				child = ne.Uint64(el[8:])
				continue
			}
			pos, ksize, vsize := int(ne.Uint32(el[4:])), int(ne.Uint32(el[8:])), int(ne.Uint32(el[12:]))
			if string(el[pos:pos+ksize]) == string(key) {
				return el[pos+ksize : pos+ksize+vsize], 0
			}
		}
		return nil, child
	}
	hdr, _ := find(page(m.root), bucketJournal)
	id := ne.Uint64(hdr)
	for ne.Uint16(page(id)[8:]) == branchPageFlag {
		_, id = find(page(id), u64(seq))
	}
	if v, _ := find(page(id), u64(seq)); v == nil {
		t.Fatalf("entry %d not on page %d", seq, id)
	}
	return id
}

// TestDeferredOpenChecksFreelistAgainstOldLeaves: the bounded open does
// not read the old journal leaves, but it knows their page numbers (from
// the pages above them) and, for a free page right after one, that leaf's
// overflow: a freelist that would let the next commit overwrite an old
// leaf is refused at Open, before anything is written.
func TestDeferredOpenChecksFreelistAgainstOldLeaves(t *testing.T) {
	for _, tc := range []struct {
		name string
		page func(leaf uint64) uint64
		want string
	}{
		{"leaf", func(leaf uint64) uint64 { return leaf }, "page %[1]d is in use and listed in the freelist"},
		{"overflow", func(leaf uint64) uint64 { return leaf + 1 }, "page %[2]d is in use (overflow of page %[1]d) and listed in the freelist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := agedKeyed(t, 3000)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			leaf := journalLeafID(t, data, 1)
			if ov := binary.NativeEndian.Uint32(data[leaf*4096+12:]); ov == 0 {
				t.Fatalf("entry 1's leaf %d has no overflow page", leaf)
			}
			off, ids := freelist(t, data)
			if len(ids) == 0 {
				t.Fatal("no free page")
			}
			binary.NativeEndian.PutUint64(data[off:], tc.page(leaf))
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = Open(path, Options{JournalAuth: testAuth(5), DeferFileCheck: true})
			want := "store: open " + path + ": store: database file is corrupt: bbolt structure damaged: " + fmt.Sprintf(tc.want, leaf, leaf+1) + ": invalid database"
			if err == nil || err.Error() != want {
				t.Fatalf("deferred Open = %v\nwant %s", err, want)
			}
		})
	}
}
