package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// bbolt page layout constants (file format version 2).
const (
	branchPageFlag = 0x01
	leafPageFlag   = 0x02
	bucketLeafFlag = 0x01
	elementSize    = 16 // both branch and leaf page elements
	inBucketSize   = 16 // root pgid + sequence
	maxTreeDepth   = 64
)

// errStructure is a bbolt structural fault found by verifyStructure.
var errStructure = errors.New("bbolt structure damaged")

// structVerifier walks a bbolt file's B+trees with bounds-checked plain
// reads. bbolt trusts the offsets, lengths and page numbers it finds on
// disk: on a damaged file it can fault, panic in a goroutine nobody can
// recover, or loop forever on a page cycle. This walk runs before bbolt
// touches the file, so those cases become ErrCorrupt instead. Semantic
// checks (key order across pages, free/reachable accounting) are left to
// bbolt's own tx.Check, which runs afterwards on a structurally sound file.
type structVerifier struct {
	f        *os.File
	meta     boltMeta
	pageSize int64
	visited  map[uint64]bool
}

func verifyStructure(f *os.File, m boltMeta) error {
	v := &structVerifier{f: f, meta: m, pageSize: int64(m.pageSize), visited: map[uint64]bool{0: true, 1: true}}
	if m.freelist != noFreelist {
		if err := v.freelist(); err != nil {
			return err
		}
	}
	return v.tree(m.root, 0)
}

func (v *structVerifier) fail(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errStructure, fmt.Sprintf(format, args...))
}

// page reads page id (with its overflow pages) and checks its header.
func (v *structVerifier) page(id uint64, wantFlags uint16) ([]byte, error) {
	if id < 2 || id >= v.meta.pgid {
		return nil, v.fail("page %d out of range [2,%d)", id, v.meta.pgid)
	}
	hdr := make([]byte, pageHeaderSize)
	if _, err := v.f.ReadAt(hdr, int64(id)*v.pageSize); err != nil {
		return nil, v.fail("page %d unreadable: %v", id, err)
	}
	ne := binary.NativeEndian
	if got := ne.Uint64(hdr[0:]); got != id {
		return nil, v.fail("page %d claims to be page %d", id, got)
	}
	if flags := ne.Uint16(hdr[8:]); flags != wantFlags && !(wantFlags == 0 && (flags == branchPageFlag || flags == leafPageFlag)) {
		return nil, v.fail("page %d has type %#x", id, flags)
	}
	overflow := uint64(ne.Uint32(hdr[12:]))
	if id+overflow >= v.meta.pgid {
		return nil, v.fail("page %d overflows past the high-water mark", id)
	}
	for i := id; i <= id+overflow; i++ {
		if v.visited[i] {
			return nil, v.fail("page %d referenced twice", i)
		}
		v.visited[i] = true
	}
	buf := make([]byte, int64(overflow+1)*v.pageSize)
	if _, err := v.f.ReadAt(buf, int64(id)*v.pageSize); err != nil {
		return nil, v.fail("page %d unreadable: %v", id, err)
	}
	return buf, nil
}

func (v *structVerifier) freelist() error {
	buf, err := v.page(v.meta.freelist, freelistPageFlag)
	if err != nil {
		return err
	}
	ne := binary.NativeEndian
	start, count := uint64(pageHeaderSize), uint64(ne.Uint16(buf[10:]))
	if count == 0xFFFF {
		count = ne.Uint64(buf[pageHeaderSize:])
		start += 8
	}
	if count > uint64(len(buf)-int(start))/8 {
		return v.fail("freelist page %d claims %d ids", v.meta.freelist, count)
	}
	for i := uint64(0); i < count; i++ {
		if id := ne.Uint64(buf[start+8*i:]); id < 2 || id >= v.meta.pgid {
			return v.fail("freelist holds page %d, out of range", id)
		}
	}
	return nil
}

// tree checks the B+tree rooted at page id.
func (v *structVerifier) tree(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return v.fail("tree deeper than %d at page %d", maxTreeDepth, id)
	}
	buf, err := v.page(id, 0)
	if err != nil {
		return err
	}
	return v.nodes(buf, id, depth)
}

// nodes checks the elements of a branch or leaf page held in buf (a whole
// page, or an inline bucket's page inside a value).
func (v *structVerifier) nodes(buf []byte, id uint64, depth int) error {
	ne := binary.NativeEndian
	flags, count := ne.Uint16(buf[8:]), int(ne.Uint16(buf[10:]))
	if flags == branchPageFlag && count == 0 {
		return v.fail("page %d: empty branch page", id)
	}
	if pageHeaderSize+count*elementSize > len(buf) {
		return v.fail("page %d: %d elements do not fit", id, count)
	}
	var prev []byte
	for i := 0; i < count; i++ {
		off := pageHeaderSize + i*elementSize
		el := buf[off : off+elementSize]
		var key, val []byte
		switch flags {
		case branchPageFlag:
			pos, ksize := int(ne.Uint32(el[0:])), int(ne.Uint32(el[4:]))
			if pos < 0 || ksize < 0 || off+pos+ksize > len(buf) || off+pos+ksize < off {
				return v.fail("page %d element %d: key out of bounds", id, i)
			}
			key = buf[off+pos : off+pos+ksize]
		case leafPageFlag:
			pos, ksize, vsize := int(ne.Uint32(el[4:])), int(ne.Uint32(el[8:])), int(ne.Uint32(el[12:]))
			end := off + pos + ksize + vsize
			if pos < 0 || ksize < 0 || vsize < 0 || end > len(buf) || end < off {
				return v.fail("page %d element %d: key/value out of bounds", id, i)
			}
			key = buf[off+pos : off+pos+ksize]
			val = buf[off+pos+ksize : end]
		default:
			return v.fail("page %d has type %#x", id, flags)
		}
		if prev != nil && bytes.Compare(prev, key) >= 0 {
			return v.fail("page %d element %d: keys out of order", id, i)
		}
		prev = key
		if flags == branchPageFlag {
			if err := v.tree(ne.Uint64(el[8:]), depth+1); err != nil {
				return err
			}
			continue
		}
		if ne.Uint32(el[0:])&bucketLeafFlag == 0 {
			continue
		}
		// A nested bucket: a root page, or an inline page inside the value.
		if len(val) < inBucketSize {
			return v.fail("page %d element %d: bucket header truncated", id, i)
		}
		root := ne.Uint64(val[0:])
		if root != 0 {
			if err := v.tree(root, depth+1); err != nil {
				return err
			}
			continue
		}
		inline := val[inBucketSize:]
		// bbolt writes an inline page with id 0 and takes a non-zero id for
		// a real page to free when the bucket next changes (it then panics
		// on the mismatch).
		if len(inline) < pageHeaderSize || ne.Uint64(inline[0:]) != 0 || ne.Uint16(inline[8:]) != leafPageFlag {
			return v.fail("page %d element %d: inline bucket damaged", id, i)
		}
		if depth+1 > maxTreeDepth {
			return v.fail("buckets nested deeper than %d", maxTreeDepth)
		}
		if err := v.nodes(inline, id, depth+1); err != nil {
			return err
		}
	}
	return nil
}
