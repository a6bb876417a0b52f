package fontsubset

import "encoding/binary"

// mapping is one rune and its glyph.
type mapping struct {
	r rune
	g uint16
}

// buildCmap returns a cmap table with a Windows Unicode BMP subtable
// (format 4; left out when the runes need more segments than it can hold)
// and a Windows Unicode full repertoire subtable (format 12) for m, which
// is sorted by rune.
func buildCmap(m []mapping) []byte {
	subtables := [][]byte{cmap12(m)}
	encodings := []uint16{10}
	if f4 := cmap4(m); len(f4) <= 0xFFFF {
		subtables = [][]byte{f4, subtables[0]}
		encodings = []uint16{1, 10}
	}
	out := make([]byte, 4+8*len(subtables))
	binary.BigEndian.PutUint16(out[2:], uint16(len(subtables)))
	for i, st := range subtables {
		rec := out[4+8*i:]
		binary.BigEndian.PutUint16(rec, 3) // platform Windows
		binary.BigEndian.PutUint16(rec[2:], encodings[i])
		binary.BigEndian.PutUint32(rec[4:], uint32(len(out)))
		out = append(out, st...)
	}
	return out
}

// cmap4 encodes the BMP runes of m as segments of consecutive runes with
// consecutive glyphs (idDelta), ending with the 0xFFFF segment.
func cmap4(m []mapping) []byte {
	type seg struct {
		start, end rune
		delta      uint16
	}
	var segs []seg
	for _, e := range m {
		if e.r > 0xFFFE {
			break
		}
		delta := e.g - uint16(e.r)
		if n := len(segs); n > 0 && segs[n-1].end == e.r-1 && segs[n-1].delta == delta {
			segs[n-1].end = e.r
			continue
		}
		segs = append(segs, seg{e.r, e.r, delta})
	}
	segs = append(segs, seg{0xFFFF, 0xFFFF, 1})
	n := len(segs)
	entrySelector := 0
	for 1<<(entrySelector+1) <= n {
		entrySelector++
	}
	searchRange := 2 * (1 << entrySelector)
	out := make([]byte, 16+8*n)
	be := binary.BigEndian
	be.PutUint16(out, 4)
	be.PutUint16(out[2:], uint16(min(len(out), 0xFFFF))) // too long: buildCmap leaves it out
	be.PutUint16(out[6:], uint16(2*n))
	be.PutUint16(out[8:], uint16(searchRange))
	be.PutUint16(out[10:], uint16(entrySelector))
	be.PutUint16(out[12:], uint16(2*n-searchRange))
	ends, starts := 14, 16+2*n
	deltas, rangeOffsets := starts+2*n, starts+4*n
	for i, s := range segs {
		be.PutUint16(out[ends+2*i:], uint16(s.end))
		be.PutUint16(out[starts+2*i:], uint16(s.start))
		be.PutUint16(out[deltas+2*i:], s.delta)
		be.PutUint16(out[rangeOffsets+2*i:], 0)
	}
	return out
}

// cmap12 encodes m as groups of consecutive runes with consecutive glyphs.
func cmap12(m []mapping) []byte {
	type group struct {
		start, end rune
		g          uint16
	}
	var groups []group
	for _, e := range m {
		if n := len(groups); n > 0 {
			last := &groups[n-1]
			if last.end == e.r-1 && uint32(last.g)+uint32(e.r-last.start) == uint32(e.g) {
				last.end = e.r
				continue
			}
		}
		groups = append(groups, group{e.r, e.r, e.g})
	}
	out := make([]byte, 16, 16+12*len(groups))
	be := binary.BigEndian
	be.PutUint16(out, 12)
	be.PutUint32(out[4:], uint32(16+12*len(groups)))
	be.PutUint32(out[12:], uint32(len(groups)))
	for _, g := range groups {
		out = be.AppendUint32(out, uint32(g.start))
		out = be.AppendUint32(out, uint32(g.end))
		out = be.AppendUint32(out, uint32(g.g))
	}
	return out
}
