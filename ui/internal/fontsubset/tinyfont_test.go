package fontsubset

import "encoding/binary"

// Charstring bytes for the tiny font: n is a small integer operand.
func n(v int) byte { return byte(v + 139) }

const (
	rmoveto = 21
	rlineto = 5
)

// The tiny font's glyphs: 0 .notdef, 1 'A', 2 'B' (a local subroutine),
// 3 'C' (stem hints, a hint mask and a global subroutine), 4 the glyph
// GSUB substitutes for 'A' (no rune maps to it).
var (
	tinyGlyphs = [][]byte{
		{csEndchar},
		{n(10), n(0), rmoveto, n(50), n(100), rlineto, n(50), n(-100), rlineto, csEndchar},
		{n(-107), csCallsubr, csEndchar},
		// 9 stems (eight hstemhm pairs, one implied vstem before the
		// mask): two mask bytes.
		{n(0), n(10), n(5), n(10), n(5), n(10), n(5), n(10), n(5), n(10), n(5), n(10), n(5), n(10), n(5), n(10), csHstemhm,
			n(0), n(10), csHintmask, 0xFF, 0x00, n(0), n(0), rmoveto, n(-107), csCallgsubr, csEndchar},
		{n(0), n(0), rmoveto, n(30), n(30), rlineto, csEndchar},
	}
	tinyLocal  = [][]byte{{n(0), n(0), rmoveto, n(100), n(0), rlineto, n(0), n(100), rlineto, csReturn}}
	tinyGlobal = [][]byte{{n(10), n(20), rlineto, n(-5), n(7), rlineto, csReturn}}
)

// tinyFont returns a small, valid CID-keyed CFF OpenType font mapping A,
// B and C, with subroutines and a GSUB single substitution A -> glyph 4.
func tinyFont() []byte {
	be := binary.BigEndian
	u16 := func(vs ...int) []byte {
		var b []byte
		for _, v := range vs {
			b = be.AppendUint16(b, uint16(v))
		}
		return b
	}
	// CFF: header, Name, Top DICT, String, Global Subrs, charset,
	// FDSelect, CharStrings, FDArray, Private DICT, local Subrs.
	strs := buildIndex([][]byte{[]byte("Adobe"), []byte("Identity"), []byte("Tiny-FD")})
	names := buildIndex([][]byte{[]byte("Tiny")})
	top := func(charset, cs, fdSelect, fdArray int) []byte {
		b := appendOp(appendInt32(appendInt32(appendInt32(nil, 391), 392), 0), opROS) // Adobe-Identity-0
		b = appendOp(appendInt32(b, charset), opCharset)
		b = appendOp(appendInt32(b, cs), opCharStrings)
		b = appendOp(appendInt32(b, fdSelect), opFDSelect)
		return appendOp(appendInt32(b, fdArray), opFDArray)
	}
	global := buildIndex(tinyGlobal)
	charset := append([]byte{2}, u16(1, 3)...)        // CIDs 1.. for glyphs 1..4
	fdSelect := append([]byte{3}, u16(1, 0)...)       // one range
	fdSelect = append(append(fdSelect, 0), u16(5)...) // from glyph 0, FD 0; sentinel 5
	charstrings := buildIndex(tinyGlyphs)
	private := func(subrsAt int) []byte { return appendOp(appendInt32(nil, subrsAt), opSubrs) }
	privLen := len(private(0))
	fontDict := func(privAt int) []byte {
		b := appendOp(appendInt32(nil, 393), 1238) // FontName Tiny-FD
		b = appendInt32(b, privLen)
		return appendOp(appendInt32(b, privAt), opPrivate)
	}
	topLen := len(buildIndex([][]byte{top(0, 0, 0, 0)}))
	charsetAt := 4 + len(names) + topLen + len(strs) + len(global)
	fdSelectAt := charsetAt + len(charset)
	csAt := fdSelectAt + len(fdSelect)
	fdArrayAt := csAt + len(charstrings)
	privAt := fdArrayAt + len(buildIndex([][]byte{fontDict(0)}))
	cff := []byte{1, 0, 4, 4}
	cff = append(cff, names...)
	cff = append(cff, buildIndex([][]byte{top(charsetAt, csAt, fdSelectAt, fdArrayAt)})...)
	cff = append(cff, strs...)
	cff = append(cff, global...)
	cff = append(cff, charset...)
	cff = append(cff, fdSelect...)
	cff = append(cff, charstrings...)
	cff = append(cff, buildIndex([][]byte{fontDict(privAt)})...)
	cff = append(cff, private(privLen)...)
	cff = append(cff, buildIndex(tinyLocal)...)

	head := make([]byte, 54)
	be.PutUint32(head, 0x00010000)
	be.PutUint32(head[12:], 0x5F0F3CF5)
	be.PutUint16(head[18:], 1000) // unitsPerEm
	copy(head[36:], u16(0, 0xFFFF-199, 1000, 900))
	hhea := make([]byte, 36)
	be.PutUint32(hhea, 0x00010000)
	copy(hhea[4:], u16(800, 0xFFFF-199, 0, 600))
	be.PutUint16(hhea[34:], 5) // numberOfHMetrics
	hmtx := u16(500, 0, 600, 10, 610, 0, 620, 0, 630, 0)
	maxp := append(u16(0, 0x5000), u16(5)...)
	nameStr := u16('T', 'i', 'n', 'y')
	name := append(u16(0, 1, 6+12), u16(3, 1, 0x409, 1, len(nameStr), 0)...)
	name = append(name, nameStr...)
	post := make([]byte, 32)
	be.PutUint32(post, 0x00030000)
	// GSUB: no scripts or features, one lookup: single substitution
	// (format 2) of glyph 1 by glyph 4.
	gsub := u16(1, 0, 10, 12, 14, 0, 0, 1, 4, 1, 0, 1, 8, 2, 8, 1, 4, 1, 1, 1)
	cmap := buildCmap([]mapping{{'A', 1}, {'B', 2}, {'C', 3}})
	return writeOTF([]table{{"CFF ", cff}, {"head", head}, {"hhea", hhea}, {"hmtx", hmtx}, {"maxp", maxp},
		{"name", name}, {"post", post}, {"GSUB", gsub}, {"cmap", cmap}, {"vmtx", hmtx}})
}
