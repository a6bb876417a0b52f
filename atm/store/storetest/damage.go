package storetest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"testing"
)

// DamageJournalLeaf damages, in the closed store file at path, the B+tree
// leaf page that holds journal entry seq: the offset of its first
// element's key is set far past the page, as a torn write or a bad disk
// block could leave it. bbolt, which trusts that offset, would read
// outside its memory map; store.Open's page walk and store.DB.CheckFile
// report it as "page N element 0: key/value out of bounds". It returns N.
// The file is read with the bbolt page format the store uses (native byte
// order, meta pages 0 and 1).
func DamageJournalLeaf(t testing.TB, path string, seq uint64) uint64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	id, err := journalLeaf(data, seq)
	if err != nil {
		t.Fatalf("storetest: %s: %v", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pageSize := int64(binary.NativeEndian.Uint32(data[16+8:]))
	pos := make([]byte, 4)
	binary.NativeEndian.PutUint32(pos, 0x7fff0000)
	// Element 0 starts after the 16-byte page header: flags, pos, ksize, vsize.
	if _, err := f.WriteAt(pos, int64(id)*pageSize+16+4); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return id
}

// journalLeaf finds the leaf page holding journal entry seq by descending
// the file's trees from its current meta page.
func journalLeaf(data []byte, seq uint64) (uint64, error) {
	ne := binary.NativeEndian
	var root, txid uint64
	var pageSize int
	for _, off := range []int{0, int(ne.Uint32(data[16+8:]))} {
		m := data[off+16 : off+16+64]
		h := fnv.New64a()
		h.Write(m[:56])
		if ne.Uint32(m[0:]) != 0xED0CDAED || h.Sum64() != ne.Uint64(m[56:]) {
			continue
		}
		if t := ne.Uint64(m[48:]); root == 0 || t > txid {
			root, txid, pageSize = ne.Uint64(m[16:]), t, int(ne.Uint32(m[8:]))
		}
	}
	if root == 0 {
		return 0, fmt.Errorf("no valid meta page")
	}
	page := func(id uint64) []byte { return data[int(id)*pageSize : int(id+1)*pageSize] }
	key := make([]byte, 8)
	binary.BigEndian.PutUint64(key, seq)
	// find descends the tree at page id to the leaf for k and returns it.
	find := func(id uint64, k []byte) (uint64, []byte) {
		for {
			p := page(id)
			count := int(ne.Uint16(p[10:]))
			if ne.Uint16(p[8:]) != 0x01 { // a leaf
				return id, p
			}
			next := ne.Uint64(p[16+8:])
			for i := 0; i < count; i++ {
				el := p[16+i*16:]
				pos, ksize := int(ne.Uint32(el[0:])), int(ne.Uint32(el[4:]))
				if bytes.Compare(el[pos:pos+ksize], k) > 0 {
					break
				}
				next = ne.Uint64(el[8:])
			}
			id = next
		}
	}
	value := func(p []byte, k []byte) []byte {
		for i := 0; i < int(ne.Uint16(p[10:])); i++ {
			el := p[16+i*16:]
			pos, ksize, vsize := int(ne.Uint32(el[4:])), int(ne.Uint32(el[8:])), int(ne.Uint32(el[12:]))
			if bytes.Equal(el[pos:pos+ksize], k) {
				return el[pos+ksize : pos+ksize+vsize]
			}
		}
		return nil
	}
	_, rp := find(root, []byte("journal"))
	hdr := value(rp, []byte("journal"))
	if len(hdr) < 16 || ne.Uint64(hdr) == 0 {
		return 0, fmt.Errorf("the journal bucket has no page of its own (too few entries)")
	}
	id, leaf := find(ne.Uint64(hdr), key)
	if value(leaf, key) == nil {
		return 0, fmt.Errorf("journal entry %d not found", seq)
	}
	return id, nil
}
