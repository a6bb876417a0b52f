package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
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

// walkScope is how much of the file a walk reads.
type walkScope struct {
	// journalTail > 0 (Open with Options.DeferFileCheck): the journal
	// bucket's leaves that hold only entries before the recorded
	// checkpoint and before the newest journalTail entries are not read;
	// their page numbers are checked (from the branch pages above them,
	// which are all read) and accounted for against the freelist. The walk
	// reports from which entry on it read the journal.
	journalTail uint64
}

// structVerifier walks a bbolt file's B+trees with bounds-checked plain
// reads. bbolt trusts the offsets, lengths and page numbers it finds on
// disk: on a damaged file it can fault, panic in a goroutine nobody can
// recover, or loop forever on a page cycle. This walk runs before bbolt
// reads those pages, so those cases become ErrCorrupt instead.
//
// A whole walk also does what bbolt's Tx.Check does, against the
// snapshot's own freelist: keys in order within each page and within the
// range their parent gives them, every page reached at most once, no page
// both reached and free, no page listed free twice, and every page below
// the high-water mark either reached or free. (bbolt's Tx.Check compares
// with the live freelist instead, which is why it cannot run beside
// writers; see DB.CheckFile.)
type structVerifier struct {
	r        io.ReaderAt
	meta     boltMeta
	pageSize int64
	reached  bitmap      // meta pages, freelist pages, tree pages
	free     []uint64    // the freelist's ids (free and pending pages, as bbolt writes it)
	bufs     [][]byte    // one page buffer per tree depth
	els      [][]element // one element list per tree depth
	// before, if set, is called before every page read; an error from it
	// stops the walk (DB.CheckFile pins its snapshot there).
	before func() error

	// Bounded walk (walkScope.journalTail).
	journalTail uint64
	metaRecords map[string][]byte // the meta bucket's records, read on the way
	journal     []byte            // the journal bucket's header, walked last
	journalFrom uint64            // journal leaves holding only entries before it are not read
	leafDepth   int               // the depth of the journal's leaves (0: none skipped)
	skipped     []uint64          // the journal leaves not read
}

// bucketCtx says which bucket a page belongs to: the root bucket (the
// top-level bucket names) or a top-level bucket's tree (or one nested in it).
type bucketCtx struct {
	root bool
	top  string
}

type bitmap []uint64

func (b bitmap) has(id uint64) bool { return b[id/64]&(1<<(id%64)) != 0 }
func (b bitmap) set(id uint64)      { b[id/64] |= 1 << (id % 64) }

// verifyStructure walks the file r whose current meta page is m. It
// returns the first journal entry whose pages were read (0: the whole
// file was read and accounted for).
func verifyStructure(r io.ReaderAt, m boltMeta, sc walkScope, before func() error) (journalFrom uint64, err error) {
	v := &structVerifier{r: r, meta: m, pageSize: int64(m.pageSize), reached: make(bitmap, m.pgid/64+1),
		before: before, journalTail: sc.journalTail}
	if m.freelist == noFreelist {
		// bbolt rebuilds a missing freelist by reading every page at open.
		v.journalTail = 0
	}
	if v.journalTail > 0 {
		v.metaRecords = map[string][]byte{}
	}
	v.reached.set(0)
	v.reached.set(1)
	if m.freelist != noFreelist {
		if err := v.freelist(); err != nil {
			return 0, err
		}
	}
	if _, err := v.tree(m.root, 0, bucketCtx{root: true}, nil, nil); err != nil {
		return 0, err
	}
	if v.journal != nil {
		v.journalFrom = v.skipBound()
		if v.journalFrom > 0 && len(v.journal) >= inBucketSize {
			// The journal's tree root is read at depth 2 (see below).
			if levels := v.branchLevels(binary.NativeEndian.Uint64(v.journal)); levels > 0 {
				v.leafDepth = 2 + levels
			}
		}
		if err := v.bucket(v.journal, m.root, 1, bucketCtx{top: string(bucketJournal)}); err != nil {
			return 0, err
		}
	}
	if err := v.account(); err != nil {
		return 0, err
	}
	if len(v.skipped) == 0 {
		return 0, nil
	}
	return v.journalFrom, nil
}

// branchLevels returns how many levels of branch pages the tree at root
// has above its leaves, following its last children (0 when root is not
// a branch page or the path is not plausible: then nothing is skipped and
// the walk itself reports what is wrong). bbolt's trees are balanced, so
// every leaf lies that deep. The pages are read again by the walk.
func (v *structVerifier) branchLevels(root uint64) int {
	ne := binary.NativeEndian
	buf := make([]byte, v.pageSize)
	levels := 0
	for id := root; levels <= maxTreeDepth; levels++ {
		if id < 2 || id >= v.meta.pgid {
			return 0
		}
		if _, err := v.r.ReadAt(buf, int64(id)*v.pageSize); err != nil || ne.Uint64(buf) != id {
			return 0
		}
		flags, count := ne.Uint16(buf[8:]), int(ne.Uint16(buf[10:]))
		switch {
		case flags == leafPageFlag:
			return levels
		case flags != branchPageFlag || count == 0 || pageHeaderSize+count*elementSize > len(buf):
			return 0
		}
		id = ne.Uint64(buf[pageHeaderSize+(count-1)*elementSize+8:])
	}
	return 0
}

func (v *structVerifier) fail(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errStructure, fmt.Sprintf(format, args...))
}

// reach marks pages id..id+overflow as reached.
func (v *structVerifier) reach(id, overflow uint64) error {
	if id < 2 || id >= v.meta.pgid || id+overflow >= v.meta.pgid || id+overflow < id {
		return v.fail("page %d (+%d overflow) out of range [2,%d)", id, overflow, v.meta.pgid)
	}
	for i := id; i <= id+overflow; i++ {
		if v.reached.has(i) {
			return v.fail("page %d referenced twice", i)
		}
		v.reached.set(i)
	}
	return nil
}

// page reads page id (with its overflow pages) into the buffer of depth
// and checks its header.
func (v *structVerifier) page(id uint64, wantFlags uint16, depth int) ([]byte, error) {
	if id < 2 || id >= v.meta.pgid {
		return nil, v.fail("page %d out of range [2,%d)", id, v.meta.pgid)
	}
	if v.before != nil {
		if err := v.before(); err != nil {
			return nil, err
		}
	}
	for len(v.bufs) <= depth {
		v.bufs = append(v.bufs, make([]byte, v.pageSize))
	}
	buf := v.bufs[depth][:v.pageSize]
	if _, err := v.r.ReadAt(buf, int64(id)*v.pageSize); err != nil {
		return nil, v.fail("page %d unreadable: %v", id, err)
	}
	ne := binary.NativeEndian
	if got := ne.Uint64(buf[0:]); got != id {
		return nil, v.fail("page %d claims to be page %d", id, got)
	}
	// wantFlags 0: a tree page, branch or leaf.
	if flags := ne.Uint16(buf[8:]); wantFlags == 0 && flags != branchPageFlag && flags != leafPageFlag || wantFlags != 0 && flags != wantFlags {
		return nil, v.fail("page %d has type %#x", id, flags)
	}
	overflow := uint64(ne.Uint32(buf[12:]))
	if err := v.reach(id, overflow); err != nil {
		return nil, err
	}
	if overflow > 0 {
		size := int64(overflow+1) * v.pageSize
		if int64(cap(v.bufs[depth])) < size {
			v.bufs[depth] = append(make([]byte, 0, size), buf...)
		}
		buf = v.bufs[depth][:size]
		if _, err := v.r.ReadAt(buf[v.pageSize:], int64(id+1)*v.pageSize); err != nil {
			return nil, v.fail("page %d unreadable: %v", id, err)
		}
	}
	return buf, nil
}

func (v *structVerifier) freelist() error {
	buf, err := v.page(v.meta.freelist, freelistPageFlag, 0)
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
	v.free = make([]uint64, count)
	for i := range v.free {
		id := ne.Uint64(buf[start+8*uint64(i):])
		if id < 2 || id >= v.meta.pgid {
			return v.fail("freelist holds page %d, out of range", id)
		}
		v.free[i] = id
	}
	return nil
}

// account checks the freelist against the pages reached: no page listed
// twice or both reached and free and, when the whole file was walked, no
// page neither.
func (v *structVerifier) account() error {
	if v.meta.freelist == noFreelist {
		return nil // bbolt derives the freelist from the pages reached
	}
	listed := make(bitmap, len(v.reached))
	for _, id := range v.free {
		if listed.has(id) {
			return v.fail("page %d listed twice in the freelist", id)
		}
		listed.set(id)
		if v.reached.has(id) {
			return v.fail("page %d is in use and listed in the freelist", id)
		}
	}
	if len(v.skipped) > 0 {
		return v.accountSkipped()
	}
	for id := uint64(2); id < v.meta.pgid; id++ {
		if !v.reached.has(id) && !listed.has(id) {
			return v.fail("page %d is neither in use nor in the freelist", id)
		}
	}
	return nil
}

// accountSkipped is account's last step when journal leaves were not
// read: their page numbers are checked against the freelist, but not the
// overflow pages of a leaf holding an entry larger than a page. For every
// free page, the header of the nearest unread leaf below it says whether
// its overflow reaches that page (in a sound tree no other page lies
// inside a leaf's overflow, so the nearest is the only candidate).
func (v *structVerifier) accountSkipped() error {
	slices.Sort(v.skipped)
	hdr := make([]byte, pageHeaderSize)
	for _, id := range v.free {
		i, _ := slices.BinarySearch(v.skipped, id)
		if i == 0 {
			continue
		}
		leaf := v.skipped[i-1]
		if _, err := v.r.ReadAt(hdr, int64(leaf)*v.pageSize); err != nil {
			return v.fail("page %d unreadable: %v", leaf, err)
		}
		if overflow := uint64(binary.NativeEndian.Uint32(hdr[12:])); leaf+overflow >= id {
			return v.fail("page %d is in use (overflow of page %d) and listed in the freelist", id, leaf)
		}
	}
	return nil
}

// skipBound returns the journal entry from which on the bounded walk
// reads the journal: the recorded checkpoint, or the newest journalTail
// entries if they reach further back (0: the whole journal).
func (v *structVerifier) skipBound() uint64 {
	cp, head := v.metaRecords[string(keyJournalCheckpoint)], v.metaRecords[string(keyJournalSeq)]
	if len(cp) < 8 || len(head) != 8 {
		return 0
	}
	cpSeq, headSeq := binary.BigEndian.Uint64(cp), binary.BigEndian.Uint64(head)
	if headSeq <= v.journalTail {
		return 0
	}
	return min(cpSeq, headSeq-v.journalTail)
}

// tree checks the B+tree rooted at page id, whose keys must lie in
// [lo, hi) (nil: unbounded), and returns its largest key.
func (v *structVerifier) tree(id uint64, depth int, ctx bucketCtx, lo, hi []byte) ([]byte, error) {
	if depth > maxTreeDepth {
		return nil, v.fail("tree deeper than %d at page %d", maxTreeDepth, id)
	}
	buf, err := v.page(id, 0, depth)
	if err != nil {
		return nil, err
	}
	return v.nodes(buf, id, depth, ctx, lo, hi)
}

// element is one parsed page element.
type element struct {
	flags uint32
	key   []byte
	val   []byte // leaf
	child uint64 // branch
}

// nodes checks the elements of a branch or leaf page held in buf (a whole
// page, or an inline bucket's page inside a value) and returns its
// largest key (a copy).
func (v *structVerifier) nodes(buf []byte, id uint64, depth int, ctx bucketCtx, lo, hi []byte) ([]byte, error) {
	ne := binary.NativeEndian
	flags, count := ne.Uint16(buf[8:]), int(ne.Uint16(buf[10:]))
	if flags != branchPageFlag && flags != leafPageFlag {
		return nil, v.fail("page %d has type %#x", id, flags)
	}
	if flags == branchPageFlag && count == 0 {
		return nil, v.fail("page %d: empty branch page", id)
	}
	if pageHeaderSize+count*elementSize > len(buf) {
		return nil, v.fail("page %d: %d elements do not fit", id, count)
	}
	for len(v.els) <= depth {
		v.els = append(v.els, nil)
	}
	els := slices.Grow(v.els[depth][:0], count)[:count]
	v.els[depth] = els
	for i := range els {
		off := pageHeaderSize + i*elementSize
		el := buf[off : off+elementSize]
		switch flags {
		case branchPageFlag:
			pos, ksize := int(ne.Uint32(el[0:])), int(ne.Uint32(el[4:]))
			if pos < 0 || ksize < 0 || off+pos+ksize > len(buf) || off+pos+ksize < off {
				return nil, v.fail("page %d element %d: key out of bounds", id, i)
			}
			els[i] = element{key: buf[off+pos : off+pos+ksize], child: ne.Uint64(el[8:])}
		case leafPageFlag:
			pos, ksize, vsize := int(ne.Uint32(el[4:])), int(ne.Uint32(el[8:])), int(ne.Uint32(el[12:]))
			end := off + pos + ksize + vsize
			if pos < 0 || ksize < 0 || vsize < 0 || end > len(buf) || end < off {
				return nil, v.fail("page %d element %d: key/value out of bounds", id, i)
			}
			els[i] = element{flags: ne.Uint32(el[0:]), key: buf[off+pos : off+pos+ksize], val: buf[off+pos+ksize : end]}
		default:
			return nil, v.fail("page %d has type %#x", id, flags)
		}
		key := els[i].key
		switch {
		case i == 0 && lo != nil && bytes.Compare(key, lo) < 0:
			return nil, v.fail("page %d element 0: key below its parent's range", id)
		case i > 0 && bytes.Compare(els[i-1].key, key) >= 0:
			return nil, v.fail("page %d element %d: keys out of order", id, i)
		case hi != nil && bytes.Compare(key, hi) >= 0:
			return nil, v.fail("page %d element %d: key beyond its parent's range", id, i)
		}
	}
	var last []byte
	if count > 0 {
		last = bytes.Clone(els[count-1].key)
	}
	if flags == branchPageFlag {
		var bound []byte // the bounded walk's first journal key, on the leaves' parents
		if !ctx.root && ctx.top == string(bucketJournal) && v.leafDepth > 0 && depth+1 == v.leafDepth {
			bound = u64(v.journalFrom)
		}
		for i, el := range els {
			next := hi
			if i+1 < count {
				next = els[i+1].key
			}
			if bound != nil && i+1 < count && bytes.Compare(next, bound) <= 0 {
				// Every entry in this leaf comes before the bound: not
				// read, only its page number is accounted for.
				if err := v.reach(el.child, 0); err != nil {
					return nil, err
				}
				v.skipped = append(v.skipped, el.child)
				continue
			}
			// The child's keys must lie in [el.key, next).
			childMax, err := v.tree(el.child, depth+1, ctx, el.key, next)
			if err != nil {
				return nil, err
			}
			if i+1 == count && childMax != nil {
				last = childMax
			}
		}
		return last, nil
	}
	for _, el := range els {
		if el.flags&bucketLeafFlag == 0 {
			if ctx.top == string(bucketMeta) && !ctx.root && v.metaRecords != nil {
				v.metaRecords[string(el.key)] = bytes.Clone(el.val)
			}
			continue
		}
		child := bucketCtx{top: ctx.top}
		if ctx.root {
			child.top = string(el.key)
			if child.top == string(bucketJournal) && v.journalTail > 0 && v.journal == nil {
				v.journal = bytes.Clone(el.val) // walked last, when the checkpoint is known
				continue
			}
		}
		if err := v.bucket(el.val, id, depth, child); err != nil {
			return nil, err
		}
	}
	return last, nil
}

// bucket checks a nested bucket whose header (and inline page) is val,
// found on page id at depth.
func (v *structVerifier) bucket(val []byte, id uint64, depth int, ctx bucketCtx) error {
	ne := binary.NativeEndian
	if len(val) < inBucketSize {
		return v.fail("page %d: bucket header truncated", id)
	}
	if root := ne.Uint64(val[0:]); root != 0 {
		_, err := v.tree(root, depth+1, ctx, nil, nil)
		return err
	}
	inline := val[inBucketSize:]
	// bbolt writes an inline page with id 0 and takes a non-zero id for
	// a real page to free when the bucket next changes (it then panics
	// on the mismatch).
	if len(inline) < pageHeaderSize || ne.Uint64(inline[0:]) != 0 || ne.Uint16(inline[8:]) != leafPageFlag {
		return v.fail("page %d: inline bucket damaged", id)
	}
	if depth+1 > maxTreeDepth {
		return v.fail("buckets nested deeper than %d", maxTreeDepth)
	}
	_, err := v.nodes(inline, id, depth+1, ctx, nil, nil)
	return err
}
