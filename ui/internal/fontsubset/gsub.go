package fontsubset

import (
	"fmt"

	"github.com/go-text/typesetting/font/opentype/tables"
)

// closeOverGSUB adds to keep every glyph a GSUB substitution can produce
// from glyphs in keep, until nothing more is added. It takes every lookup
// of every feature, script and language, and ignores contexts: the
// closure holds at least the glyphs shaping can reach.
func closeOverGSUB(raw []byte, keep []bool) error {
	if len(raw) == 0 {
		return nil
	}
	layout, _, err := tables.ParseLayout(raw)
	if err != nil {
		return fmt.Errorf("%w: GSUB: %v", ErrMalformed, err)
	}
	var subtables []tables.GSUBLookup
	for _, lk := range layout.LookupList.Lookups {
		sts, err := lk.AsGSUBLookups()
		if err != nil {
			return fmt.Errorf("%w: GSUB: %v", ErrMalformed, err)
		}
		for _, st := range sts {
			if ext, ok := st.(tables.ExtensionSubs); ok {
				if st, err = ext.Resolve(); err != nil {
					return fmt.Errorf("%w: GSUB: %v", ErrMalformed, err)
				}
			}
			subtables = append(subtables, st)
		}
	}
	n := len(keep)
	var list []int // the glyphs in keep
	for g, k := range keep {
		if k {
			list = append(list, g)
		}
	}
	add := func(g tables.GlyphID) {
		if int(g) < n && !keep[g] {
			keep[g] = true
			list = append(list, int(g))
		}
	}
	has := func(g tables.GlyphID) bool { return int(g) < n && keep[g] }
	for {
		// Every subtable against every glyph kept so far; again while
		// that adds glyphs (a ligature may need a component added late).
		upto := len(list)
		for _, st := range subtables {
			cov := st.Cov()
			for _, g := range list[:upto] {
				idx, ok := cov.Index(tables.GlyphID(g))
				if !ok {
					continue
				}
				switch st := st.(type) {
				case tables.SingleSubs:
					switch d := st.Data.(type) {
					case tables.SingleSubstData1:
						add(tables.GlyphID(g + int(d.DeltaGlyphID)))
					case tables.SingleSubstData2:
						if idx < len(d.SubstituteGlyphIDs) {
							add(d.SubstituteGlyphIDs[idx])
						}
					}
				case tables.MultipleSubs:
					if idx < len(st.Sequences) {
						for _, s := range st.Sequences[idx].SubstituteGlyphIDs {
							add(s)
						}
					}
				case tables.AlternateSubs:
					if idx < len(st.AlternateSets) {
						for _, s := range st.AlternateSets[idx].AlternateGlyphIDs {
							add(s)
						}
					}
				case tables.LigatureSubs:
					if idx < len(st.LigatureSets) {
						for _, lig := range st.LigatureSets[idx].Ligatures {
							all := true
							for _, c := range lig.ComponentGlyphIDs {
								all = all && has(c)
							}
							if all {
								add(lig.LigatureGlyph)
							}
						}
					}
				case tables.ReverseChainSingleSubs:
					if idx < len(st.SubstituteGlyphIDs) {
						add(st.SubstituteGlyphIDs[idx])
					}
				}
				// Contextual lookups substitute only through the lookups
				// they name, which are in the list themselves.
			}
		}
		if len(list) == upto {
			return nil
		}
	}
}
