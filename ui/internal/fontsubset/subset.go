package fontsubset

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/go-text/typesetting/font"
	"github.com/go-text/typesetting/font/opentype/tables"
)

// Font is a subset font.
type Font struct {
	// Data is the OpenType font (CFF outlines, sfnt version 'OTTO').
	Data []byte
	// Runes are the requested runes the face has a glyph for, in order;
	// the subset's cmap maps exactly these.
	Runes []rune
	// Missing are the requested runes the face has no glyph for, in order.
	Missing []rune
	// Glyphs is the number of glyphs whose outlines the subset keeps
	// (.notdef, the runes' glyphs and their GSUB closure); the others are
	// empty. NumGlyphs is the face's glyph count, which the subset keeps.
	Glyphs, NumGlyphs int
}

// dropped are tables the subset leaves out: vertical layout, which
// horizontal text never reads, and a signature the subset would break.
var dropped = map[string]bool{"vhea": true, "vmtx": true, "VORG": true, "DSIG": true}

// Subset builds a font with the glyphs of face index (0 for a single font)
// of the OpenType font or collection r (size bytes long) that runes need.
// It reads only the tables and glyphs it needs from r.
func Subset(r io.ReaderAt, size int64, index int, runes []rune) (*Font, error) {
	s, err := openFace(r, size, index)
	if err != nil {
		return nil, err
	}
	cffAt, ok := s.tables["CFF "]
	switch {
	case ok:
	case s.tables["CFF2"] != span{}:
		return nil, unsupported("CFF2 outlines")
	case s.tables["glyf"] != span{}:
		return nil, unsupported("TrueType outlines")
	default:
		return nil, unsupported("no CFF outlines")
	}
	maxp, err := s.table("maxp")
	if err != nil {
		return nil, err
	}
	if len(maxp) < 6 {
		return nil, malformed("maxp table missing or short")
	}
	numGlyphs := int(binary.BigEndian.Uint16(maxp[4:]))
	if numGlyphs == 0 {
		return nil, malformed("no glyphs")
	}

	cmap, err := readCmap(s)
	if err != nil {
		return nil, err
	}
	out := &Font{NumGlyphs: numGlyphs}
	keep := make([]bool, numGlyphs)
	keep[0] = true // .notdef
	var m []mapping
	sorted := slices.Clone(runes)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	for _, c := range sorted {
		g, ok := cmap.Lookup(c)
		if !ok || g == 0 || int(g) >= numGlyphs {
			out.Missing = append(out.Missing, c)
			continue
		}
		keep[g] = true
		m = append(m, mapping{c, uint16(g)})
		out.Runes = append(out.Runes, c)
	}
	gsub, err := s.table("GSUB")
	if err != nil {
		return nil, err
	}
	if err := closeOverGSUB(gsub, keep); err != nil {
		return nil, err
	}
	for _, k := range keep {
		if k {
			out.Glyphs++
		}
	}
	c, err := parseCFF(s, cffAt, numGlyphs)
	if err != nil {
		return nil, err
	}
	cff, err := c.subset(keep)
	if err != nil {
		return nil, err
	}
	ts := []table{{"CFF ", cff}, {"cmap", buildCmap(m)}}
	for tag := range s.tables {
		if tag == "CFF " || tag == "cmap" || dropped[tag] {
			continue
		}
		b, err := s.table(tag)
		if err != nil {
			return nil, err
		}
		ts = append(ts, table{tag, b})
	}
	out.Data = writeOTF(ts)
	return out, nil
}

// readCmap returns the face's character map as go-text reads it (the same
// subtable choice as when it loads the whole font).
func readCmap(s *source) (font.Cmap, error) {
	raw, err := s.table("cmap")
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, malformed("no cmap table")
	}
	os2, err := s.table("OS/2")
	if err != nil {
		return nil, err
	}
	return parseCmap(raw, os2)
}

// parseCmap reads a cmap table as go-text does, with the font page of the
// OS/2 table (for legacy symbol fonts; nil when there is none).
func parseCmap(raw, os2raw []byte) (font.Cmap, error) {
	cm, _, err := tables.ParseCmap(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: cmap: %v", ErrMalformed, err)
	}
	os2, _, _ := tables.ParseOs2(os2raw) // as go-text: no OS/2, no font page
	fc, _, err := font.ProcessCmap(cm, os2.FontPage())
	if err != nil {
		return nil, fmt.Errorf("%w: cmap: %v", ErrMalformed, err)
	}
	return fc, nil
}
