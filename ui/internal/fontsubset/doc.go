// Package fontsubset builds a small OpenType font holding only the glyphs
// some text needs, from one face of a CFF-flavoured OpenType font or
// collection (.otf, .ttc), such as Noto Sans CJK.
//
// A Noto CJK collection is about 19 MB; parsing it with
// github.com/go-text/typesetting copies its 15 MB CFF table once per face
// (ten faces) and keeps the picked face's copy for the life of the
// process. A subset for the few hundred characters the kiosk screens use
// is well under a megabyte, and building it reads only the parts of the
// file it needs.
//
// The subset keeps glyph IDs: every glyph keeps its number and its
// metrics, the glyphs not needed get an empty outline, so the layout
// tables (GSUB, GPOS, GDEF) and the horizontal metrics are copied
// unchanged and text shapes exactly as with the whole font. What changes:
//
//   - cmap maps only the requested runes the face has (Font.Missing lists
//     the others);
//   - CFF keeps the outlines of those runes' glyphs and of every glyph GSUB
//     can substitute for them (closure over all lookups), with the
//     subroutines inlined (no global or local Subrs remain);
//   - the vertical-layout tables (vhea, vmtx, VORG) and DSIG are dropped;
//     everything else is copied.
//
// Only CID-keyed CFF fonts are subset (ErrUnsupported otherwise: TrueType
// outlines, CFF2, non-CID CFF); a malformed font gives ErrMalformed.
package fontsubset
