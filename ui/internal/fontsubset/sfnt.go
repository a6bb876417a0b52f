package fontsubset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Sentinel errors: ErrUnsupported for a valid font this package cannot
// subset, ErrMalformed for bytes that are not a valid font.
var (
	ErrUnsupported = errors.New("fontsubset: unsupported font")
	ErrMalformed   = errors.New("fontsubset: malformed font")
)

// maxTable bounds the size of any table or part read into memory.
const maxTable = 64 << 20

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
}

// source is one face of a font file: where each of its tables lies.
type source struct {
	r       io.ReaderAt
	size    int64
	version uint32
	tables  map[string]span
}

type span struct{ off, len int64 }

// read returns n bytes at off, which must lie within the file.
func (s *source) read(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || n > maxTable || off > s.size || n > s.size-off {
		return nil, malformed("range %d+%d outside the file (%d bytes)", off, n, s.size)
	}
	b := make([]byte, n)
	if _, err := s.r.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return nil, fmt.Errorf("fontsubset: read: %w", err)
	}
	return b, nil
}

// table returns a whole table, or nil if the face has none by that tag.
func (s *source) table(tag string) ([]byte, error) {
	t, ok := s.tables[tag]
	if !ok {
		return nil, nil
	}
	return s.read(t.off, t.len)
}

// openFace reads the table directory of face index of the font file r
// (index 0 for a single font).
func openFace(r io.ReaderAt, size int64, index int) (*source, error) {
	s := &source{r: r, size: size}
	head, err := s.read(0, 12)
	if err != nil {
		return nil, err
	}
	off := int64(0)
	if string(head[:4]) == "ttcf" {
		n := int(binary.BigEndian.Uint32(head[8:]))
		if n == 0 {
			return nil, malformed("empty collection")
		}
		if index < 0 || index >= n {
			return nil, fmt.Errorf("fontsubset: face %d of a collection of %d", index, n)
		}
		b, err := s.read(12+4*int64(index), 4)
		if err != nil {
			return nil, err
		}
		off = int64(binary.BigEndian.Uint32(b))
	} else if index != 0 {
		return nil, fmt.Errorf("fontsubset: face %d of a single font", index)
	}
	dir, err := s.read(off, 12)
	if err != nil {
		return nil, err
	}
	s.version = binary.BigEndian.Uint32(dir)
	n := int64(binary.BigEndian.Uint16(dir[4:]))
	recs, err := s.read(off+12, 16*n)
	if err != nil {
		return nil, err
	}
	s.tables = make(map[string]span, n)
	for i := int64(0); i < n; i++ {
		rec := recs[16*i:]
		t := span{int64(binary.BigEndian.Uint32(rec[8:])), int64(binary.BigEndian.Uint32(rec[12:]))}
		if t.off > size || t.len > size-t.off {
			return nil, malformed("table %q outside the file", rec[:4])
		}
		s.tables[string(rec[:4])] = t
	}
	return s, nil
}

// table is one table of a font being written.
type table struct {
	tag  string
	data []byte
}

// writeOTF assembles tables into an OpenType font with CFF outlines
// ('OTTO'), tables sorted by tag and 4-byte aligned, checksums and the head
// table's checkSumAdjustment set.
func writeOTF(tables []table) []byte {
	// Tags are four ASCII bytes: byte order is their numeric order.
	slices.SortFunc(tables, func(a, b table) int { return strings.Compare(a.tag, b.tag) })
	n := len(tables)
	entrySelector := 0
	for 1<<(entrySelector+1) <= n {
		entrySelector++
	}
	searchRange := (1 << entrySelector) * 16
	out := make([]byte, 12+16*n)
	copy(out, "OTTO")
	binary.BigEndian.PutUint16(out[4:], uint16(n))
	binary.BigEndian.PutUint16(out[6:], uint16(searchRange))
	binary.BigEndian.PutUint16(out[8:], uint16(entrySelector))
	binary.BigEndian.PutUint16(out[10:], uint16(n*16-searchRange))
	headAt := -1
	for i, t := range tables {
		rec := out[12+16*i:]
		copy(rec, t.tag)
		if t.tag == "head" && len(t.data) >= 12 {
			binary.BigEndian.PutUint32(t.data[8:], 0) // checkSumAdjustment, set below
			headAt = len(out)
		}
		binary.BigEndian.PutUint32(rec[4:], checksum(t.data))
		binary.BigEndian.PutUint32(rec[8:], uint32(len(out)))
		binary.BigEndian.PutUint32(rec[12:], uint32(len(t.data)))
		out = append(out, t.data...)
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
	}
	if headAt >= 0 {
		binary.BigEndian.PutUint32(out[headAt+8:], 0xB1B0AFBA-checksum(out))
	}
	return out
}

// checksum is the OpenType table checksum: the sum of big-endian uint32s,
// the last one zero-padded.
func checksum(b []byte) uint32 {
	var sum uint32
	for len(b) >= 4 {
		sum += binary.BigEndian.Uint32(b)
		b = b[4:]
	}
	if len(b) > 0 {
		var last [4]byte
		copy(last[:], b)
		sum += binary.BigEndian.Uint32(last[:])
	}
	return sum
}
