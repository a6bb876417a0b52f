package fontsubset

import (
	"encoding/binary"
	"sort"
)

// cffFont is the parsed skeleton of a CID-keyed CFF table: where its parts
// are, not its glyphs.
type cffFont struct {
	s           *source
	base, end   int64 // the table in the file
	name        []byte
	top         []dictOp
	strings     []byte
	global      *cffIndex
	charstrings *cffIndex
	charset     []byte // the custom charset, nil when predefined
	fdSelect    []byte
	ranges      []fdRange // fdSelect decoded
	fds         []fontDict
}

type fontDict struct {
	ops     []dictOp
	private []dictOp
	subrs   *cffIndex // nil: no local subroutines
}

// fdRange: glyphs from first (up to the next range's first) use font DICT fd.
type fdRange struct {
	first int
	fd    int
}

func parseCFF(s *source, t span, numGlyphs int) (*cffFont, error) {
	c := &cffFont{s: s, base: t.off, end: t.off + t.len}
	hdr, err := s.read(c.base, 4)
	if err != nil {
		return nil, err
	}
	if hdr[0] != 1 {
		return nil, unsupported("CFF version %d", hdr[0])
	}
	name, err := readIndex(s, c.base+int64(hdr[2]), c.end)
	if err != nil {
		return nil, err
	}
	if name.count() != 1 {
		return nil, malformed("CFF with %d fonts", name.count())
	}
	if c.name, err = name.raw(); err != nil {
		return nil, err
	}
	topIdx, err := readIndex(s, name.end, c.end)
	if err != nil {
		return nil, err
	}
	if topIdx.count() != 1 {
		return nil, malformed("CFF with %d top DICTs", topIdx.count())
	}
	top, err := topIdx.item(0)
	if err != nil {
		return nil, err
	}
	if c.top, err = parseDict(top); err != nil {
		return nil, err
	}
	if _, ok := find(c.top, opROS); !ok {
		return nil, unsupported("CFF font is not CID-keyed")
	}
	if o, ok := find(c.top, opCharstringType); ok {
		if v, err := intArgs(o, 1); err != nil || v[0] != 2 {
			return nil, unsupported("CFF charstring type %v", o.args)
		}
	}
	strIdx, err := readIndex(s, topIdx.end, c.end)
	if err != nil {
		return nil, err
	}
	if c.strings, err = strIdx.raw(); err != nil {
		return nil, err
	}
	if c.global, err = readIndex(s, strIdx.end, c.end); err != nil {
		return nil, err
	}
	off, err := c.offset(opCharStrings, true)
	if err != nil {
		return nil, err
	}
	if c.charstrings, err = readIndex(s, off, c.end); err != nil {
		return nil, err
	}
	if c.charstrings.count() != numGlyphs || numGlyphs == 0 {
		return nil, malformed("CFF has %d glyphs, maxp %d", c.charstrings.count(), numGlyphs)
	}
	if err := c.readCharset(numGlyphs); err != nil {
		return nil, err
	}
	if err := c.readFDSelect(numGlyphs); err != nil {
		return nil, err
	}
	if err := c.readFDArray(); err != nil {
		return nil, err
	}
	return c, nil
}

// offset returns the file offset an offset operator of the Top DICT gives.
func (c *cffFont) offset(op int, required bool) (int64, error) {
	o, ok := find(c.top, op)
	if !ok {
		if required {
			return 0, malformed("CFF top DICT without operator %d", op)
		}
		return -1, nil
	}
	v, err := intArgs(o, 1)
	if err != nil {
		return 0, err
	}
	if v[0] < 0 || v[0] >= c.end-c.base {
		return 0, malformed("CFF operator %d offset %d outside the table", op, v[0])
	}
	return c.base + v[0], nil
}

func (c *cffFont) readCharset(n int) error {
	o, ok := find(c.top, opCharset)
	if !ok {
		return nil // predefined ISOAdobe
	}
	v, err := intArgs(o, 1)
	if err != nil {
		return err
	}
	if v[0] <= 2 {
		return nil // predefined
	}
	off, err := c.offset(opCharset, true)
	if err != nil {
		return err
	}
	// The longest a charset of n glyphs can be: format 2 with one range
	// per glyph.
	b, err := c.s.read(off, min(1+4*int64(n), c.end-off))
	if err != nil {
		return err
	}
	length := 0
	switch b[0] {
	case 0:
		length = 1 + 2*(n-1)
	case 1, 2:
		size := 3 + int(b[0]-1) // first, then nLeft as Card8 or Card16
		p, covered := 1, 0
		for covered < n-1 {
			if p+size > len(b) {
				return malformed("CFF charset truncated")
			}
			left := int(b[p+2])
			if size == 4 {
				left = int(binary.BigEndian.Uint16(b[p+2:]))
			}
			covered += left + 1
			p += size
		}
		length = p
	default:
		return malformed("CFF charset format %d", b[0])
	}
	if length > len(b) {
		return malformed("CFF charset truncated")
	}
	c.charset = b[:length]
	return nil
}

func (c *cffFont) readFDSelect(n int) error {
	off, err := c.offset(opFDSelect, true)
	if err != nil {
		return err
	}
	f, err := c.s.read(off, min(1+int64(n), c.end-off))
	if err != nil {
		return err
	}
	switch f[0] {
	case 0:
		if len(f) < 1+n {
			return malformed("CFF FDSelect truncated")
		}
		c.fdSelect = f[:1+n]
		for g, fd := range f[1 : 1+n] {
			if g == 0 || int(fd) != c.ranges[len(c.ranges)-1].fd {
				c.ranges = append(c.ranges, fdRange{g, int(fd)})
			}
		}
	case 3:
		h, err := c.s.read(off, min(3, c.end-off))
		if err != nil || len(h) < 3 {
			return malformed("CFF FDSelect truncated")
		}
		nr := int64(binary.BigEndian.Uint16(h[1:]))
		if nr == 0 || off+5+3*nr > c.end {
			return malformed("CFF FDSelect truncated")
		}
		if c.fdSelect, err = c.s.read(off, 5+3*nr); err != nil {
			return err
		}
		for i := range int(nr) {
			r := c.fdSelect[3+3*i:]
			first := int(binary.BigEndian.Uint16(r))
			if (i == 0 && first != 0) || (i > 0 && first <= c.ranges[i-1].first) {
				return malformed("CFF FDSelect ranges out of order")
			}
			c.ranges = append(c.ranges, fdRange{first, int(r[2])})
		}
		if sentinel := int(binary.BigEndian.Uint16(c.fdSelect[3+3*nr:])); sentinel != n {
			return malformed("CFF FDSelect sentinel %d, %d glyphs", sentinel, n)
		}
	default:
		return unsupported("CFF FDSelect format %d", f[0])
	}
	return nil
}

func (c *cffFont) readFDArray() error {
	off, err := c.offset(opFDArray, true)
	if err != nil {
		return err
	}
	x, err := readIndex(c.s, off, c.end)
	if err != nil {
		return err
	}
	if x.count() == 0 || x.count() > 256 {
		return malformed("CFF with %d font DICTs", x.count())
	}
	for i := range x.count() {
		b, err := x.item(i)
		if err != nil {
			return err
		}
		var fd fontDict
		if fd.ops, err = parseDict(b); err != nil {
			return err
		}
		p, ok := find(fd.ops, opPrivate)
		if !ok {
			return malformed("CFF font DICT %d without a Private DICT", i)
		}
		v, err := intArgs(p, 2)
		if err != nil {
			return err
		}
		size, at := v[0], v[1]
		if size < 0 || at < 0 || at+size > c.end-c.base {
			return malformed("CFF Private DICT %d outside the table", i)
		}
		pb, err := c.s.read(c.base+at, size)
		if err != nil {
			return err
		}
		if fd.private, err = parseDict(pb); err != nil {
			return err
		}
		if sub, ok := find(fd.private, opSubrs); ok {
			sv, err := intArgs(sub, 1)
			if err != nil {
				return err
			}
			if fd.subrs, err = readIndex(c.s, c.base+at+sv[0], c.end); err != nil {
				return err
			}
		}
		c.fds = append(c.fds, fd)
	}
	for _, r := range c.ranges {
		if r.fd >= len(c.fds) {
			return malformed("CFF FDSelect names font DICT %d of %d", r.fd, len(c.fds))
		}
	}
	return nil
}

// fdOf returns the font DICT of glyph g.
func (c *cffFont) fdOf(g int) int {
	i := sort.Search(len(c.ranges), func(i int) bool { return c.ranges[i].first > g })
	return c.ranges[i-1].fd
}

// subset returns the CFF table with the outlines of the glyphs keep marks,
// their subroutines inlined, and an empty outline for every other glyph;
// glyph IDs, the charset, FDSelect and the font DICTs are unchanged.
func (c *cffFont) subset(keep []bool) ([]byte, error) {
	global, err := loadSubrs(c.global)
	if err != nil {
		return nil, err
	}
	local := make([]*subrs, len(c.fds))
	empty := []byte{csEndchar}
	glyphs := make([][]byte, c.charstrings.count())
	for g := range glyphs {
		glyphs[g] = empty
		if !keep[g] {
			continue
		}
		fd := c.fdOf(g)
		if local[fd] == nil {
			if local[fd], err = loadSubrs(c.fds[fd].subrs); err != nil {
				return nil, err
			}
		}
		cs, err := c.charstrings.item(g)
		if err != nil {
			return nil, err
		}
		if glyphs[g], err = flatten(cs, global, local[fd]); err != nil {
			return nil, err
		}
	}
	charstrings := buildIndex(glyphs)

	// Layout: header, Name, Top DICT, String and (empty) Global Subr
	// INDEXes, charset, FDSelect, CharStrings, FDArray, Private DICTs. The
	// DICTs encode offsets in fixed-size integers, so their sizes are
	// known before the offsets are.
	topDict := func(charset, charstrings, fdSelect, fdArray int) []byte {
		b := without(c.top, opCharset, opEncoding, opCharStrings, opPrivate, opFDArray, opFDSelect)
		if c.charset != nil {
			b = appendOp(appendInt32(b, charset), opCharset)
		} else if o, ok := find(c.top, opCharset); ok {
			b = append(b, o.raw...)
		}
		b = appendOp(appendInt32(b, charstrings), opCharStrings)
		b = appendOp(appendInt32(b, fdSelect), opFDSelect)
		return appendOp(appendInt32(b, fdArray), opFDArray)
	}
	privates := make([][]byte, len(c.fds))
	for i, fd := range c.fds {
		privates[i] = without(fd.private, opSubrs)
	}
	fdArray := func(privateAt int) []byte {
		dicts := make([][]byte, len(c.fds))
		for i, fd := range c.fds {
			b := without(fd.ops, opPrivate)
			b = appendInt32(b, len(privates[i]))
			b = appendOp(appendInt32(b, privateAt), opPrivate)
			dicts[i] = b
			privateAt += len(privates[i])
		}
		return buildIndex(dicts)
	}
	topLen := len(buildIndex([][]byte{topDict(0, 0, 0, 0)}))
	charsetAt := 4 + len(c.name) + topLen + len(c.strings) + 2
	fdSelectAt := charsetAt + len(c.charset)
	charstringsAt := fdSelectAt + len(c.fdSelect)
	fdArrayAt := charstringsAt + len(charstrings)
	privateAt := fdArrayAt + len(fdArray(0))

	out := []byte{1, 0, 4, 4}
	out = append(out, c.name...)
	out = append(out, buildIndex([][]byte{topDict(charsetAt, charstringsAt, fdSelectAt, fdArrayAt)})...)
	out = append(out, c.strings...)
	out = append(out, 0, 0) // no global subroutines
	out = append(out, c.charset...)
	out = append(out, c.fdSelect...)
	out = append(out, charstrings...)
	out = append(out, fdArray(privateAt)...)
	for _, p := range privates {
		out = append(out, p...)
	}
	return out, nil
}
