package fontsubset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/go-text/typesetting/di"
	"github.com/go-text/typesetting/font"
	ot "github.com/go-text/typesetting/font/opentype"
	"github.com/go-text/typesetting/language"
	"github.com/go-text/typesetting/shaping"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/math/fixed"
)

// parse loads face index of data with go-text, as Gio does.
func parse(t testing.TB, data []byte, index int) *font.Face {
	t.Helper()
	lds, err := ot.NewLoaders(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	ft, err := font.NewFont(lds[index])
	if err != nil {
		t.Fatal(err)
	}
	return font.NewFace(ft)
}

func outline(t testing.TB, f *font.Face, g font.GID) font.GlyphOutline {
	t.Helper()
	o, ok := f.GlyphDataOutline(g)
	if !ok {
		t.Fatalf("glyph %d: no outline", g)
	}
	return o
}

// TestSubsetTinyFont subsets a small font with subroutines, hint masks
// and a GSUB substitution, and checks the result glyph by glyph.
func TestSubsetTinyFont(t *testing.T) {
	src := tinyFont()
	orig := parse(t, src, 0)
	sub, err := Subset(bytes.NewReader(src), int64(len(src)), 0, []rune("CAZA"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sub.Runes, []rune("AC")) || !slices.Equal(sub.Missing, []rune("Z")) {
		t.Errorf("runes %q missing %q, want AC and Z", string(sub.Runes), string(sub.Missing))
	}
	// .notdef, A, C, and glyph 4 that GSUB puts for A; not B.
	if sub.Glyphs != 4 || sub.NumGlyphs != 5 {
		t.Errorf("%d of %d glyphs kept, want 4 of 5", sub.Glyphs, sub.NumGlyphs)
	}
	f := parse(t, sub.Data, 0)
	for _, r := range "AC" {
		g, ok := f.NominalGlyph(r)
		if want, _ := orig.NominalGlyph(r); !ok || g != want {
			t.Errorf("%c: glyph %d %v, want %d", r, g, ok, want)
		}
	}
	if g, ok := f.NominalGlyph('B'); ok {
		t.Errorf("B maps to %d in the subset", g)
	}
	for g := font.GID(0); g < 5; g++ {
		got, want := outline(t, f, g), outline(t, orig, g)
		if g == 2 {
			want = font.GlyphOutline{} // B is not kept
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("glyph %d: outline\n got %v\nwant %v", g, got, want)
		}
		if a, b := f.HorizontalAdvance(g), orig.HorizontalAdvance(g); a != b {
			t.Errorf("glyph %d: advance %v, want %v", g, a, b)
		}
	}
	// Segments: the move, the lines, and the line closing the contour.
	if len(outline(t, f, 3).Segments) != 4 || len(outline(t, f, 4).Segments) != 3 {
		t.Errorf("glyphs 3 and 4 have %d and %d segments, want 4 and 3 (a subroutine lost?)",
			len(outline(t, f, 3).Segments), len(outline(t, f, 4).Segments))
	}
	if f.Describe() != orig.Describe() {
		t.Errorf("describes itself as %v, want %v", f.Describe(), orig.Describe())
	}

	// B alone: its outline comes from the inlined local subroutine.
	subB, err := Subset(bytes.NewReader(src), int64(len(src)), 0, []rune("B"))
	if err != nil {
		t.Fatal(err)
	}
	fb := parse(t, subB.Data, 0)
	if got, want := outline(t, fb, 2), outline(t, orig, 2); !reflect.DeepEqual(got, want) || len(got.Segments) != 4 {
		t.Errorf("B: outline\n got %v\nwant %v", got, want)
	}
}

// TestSubsetLeavesNoSubroutines checks the CFF of a subset: no global or
// local subroutines, the exact inlined charstrings, glyph IDs kept.
func TestSubsetLeavesNoSubroutines(t *testing.T) {
	src := tinyFont()
	sub, err := Subset(bytes.NewReader(src), int64(len(src)), 0, []rune("ABC"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := openFace(bytes.NewReader(sub.Data), int64(len(sub.Data)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.tables["vmtx"]; ok {
		t.Error("the subset keeps vmtx")
	}
	c, err := parseCFF(s, s.tables["CFF "], 5)
	if err != nil {
		t.Fatal(err)
	}
	if c.global.count() != 0 || len(c.fds) != 1 || c.fds[0].subrs != nil {
		t.Errorf("%d global subroutines, %d font DICTs, local subroutines %v; want none, 1, none", c.global.count(), len(c.fds), c.fds[0].subrs)
	}
	want := [][]byte{
		{csEndchar},
		tinyGlyphs[1],
		{n(0), n(0), rmoveto, n(100), n(0), rlineto, n(0), n(100), rlineto, csEndchar},
		{n(0), n(10), n(5), n(10), n(5), n(10), n(5), n(10), n(5), n(10), n(5), n(10), n(5), n(10), n(5), n(10), csHstemhm,
			n(0), n(10), csHintmask, 0xFF, 0x00, n(0), n(0), rmoveto, n(10), n(20), rlineto, n(-5), n(7), rlineto, csEndchar},
		tinyGlyphs[4],
	}
	for g, w := range want {
		got, err := c.charstrings.item(g)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, w) {
			t.Errorf("glyph %d: charstring %v, want %v", g, got, w)
		}
	}
}

// TestWriteOTFChecksums checks the table checksums and the head table's
// checkSumAdjustment of a written font.
func TestWriteOTFChecksums(t *testing.T) {
	data := tinyFont()
	if got := checksum(data); got != 0xB1B0AFBA {
		t.Errorf("whole-font checksum %#x, want 0xB1B0AFBA", got)
	}
	s, err := openFace(bytes.NewReader(data), int64(len(data)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.version != 0x4F54544F {
		t.Errorf("sfnt version %#x, want OTTO", s.version)
	}
	n := int(binary.BigEndian.Uint16(data[4:]))
	for i := range n {
		rec := data[12+16*i:]
		tag := string(rec[:4])
		b, _ := s.table(tag)
		if tag == "head" {
			b = slices.Clone(b)
			binary.BigEndian.PutUint32(b[8:], 0)
		}
		if got, want := binary.BigEndian.Uint32(rec[4:]), checksum(b); got != want {
			t.Errorf("%s: checksum %#x, want %#x", tag, got, want)
		}
	}
}

func TestFlattenErrors(t *testing.T) {
	none := &subrs{offsets: []uint32{0}}
	self := &subrs{data: []byte{n(-107), csCallsubr, csReturn}, offsets: []uint32{0, 3}}
	for _, tc := range []struct {
		name   string
		cs     []byte
		local  *subrs
		target error
	}{
		{"no endchar", []byte{n(1), n(2), rmoveto}, none, ErrMalformed},
		{"missing subroutine", []byte{n(-107), csCallsubr, csEndchar}, none, ErrMalformed},
		{"call without number", []byte{csCallsubr, csEndchar}, none, ErrMalformed},
		{"recursion", []byte{n(-107), csCallsubr, csEndchar}, self, ErrMalformed},
		{"arithmetic", []byte{n(1), n(2), csEscape, 10, csEndchar}, none, ErrUnsupported},
		{"reserved operator", []byte{n(1), 2, csEndchar}, none, ErrMalformed},
		{"truncated mask", []byte{n(0), n(10), csHstemhm, csHintmask}, none, ErrMalformed},
		{"truncated number", []byte{28, 1}, none, ErrMalformed},
	} {
		if _, err := flatten(tc.cs, none, tc.local); !errors.Is(err, tc.target) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.target)
		}
	}
}

// TestBuildCmap checks the written cmap against go-text's reading of it,
// with runes beyond the BMP and too many for a format 4 subtable.
func TestBuildCmap(t *testing.T) {
	small := []mapping{{'A', 3}, {'B', 4}, {'C', 9}, {'中', 7}, {0x1F3E7, 11}}
	var big []mapping
	for i := range 9000 {
		big = append(big, mapping{rune(0x4E00 + 2*i), uint16(60000 - 3*i)})
	}
	for _, m := range [][]mapping{small, big} {
		cm, err := parseCmap(buildCmap(m), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range m {
			if g, ok := cm.Lookup(e.r); !ok || g != font.GID(e.g) {
				t.Errorf("U+%04X: glyph %d %v, want %d", e.r, g, ok, e.g)
			}
		}
		if g, ok := cm.Lookup('Z'); ok {
			t.Errorf("Z maps to %d", g)
		}
	}
}

// TestSubsetRefuses checks the errors for fonts Subset does not handle
// and for bytes that are not a font or are cut short.
func TestSubsetRefuses(t *testing.T) {
	if _, err := Subset(bytes.NewReader(gomono.TTF), int64(len(gomono.TTF)), 0, []rune("A")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("TrueType font: %v, want ErrUnsupported", err)
	}
	junk := []byte("this is not a font at all, not even close")
	if _, err := Subset(bytes.NewReader(junk), int64(len(junk)), 0, []rune("A")); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
		t.Errorf("junk: %v, want ErrMalformed or ErrUnsupported", err)
	}
	tiny := tinyFont()
	if _, err := Subset(bytes.NewReader(tiny), int64(len(tiny)), 1, []rune("A")); err == nil {
		t.Error("face 1 of a single font: no error")
	}
	for cut := 0; cut < len(tiny); cut += 7 {
		if _, err := Subset(bytes.NewReader(tiny[:cut]), int64(cut), 0, []rune("ABC")); err == nil {
			t.Errorf("cut at %d of %d bytes: no error", cut, len(tiny))
		}
	}
}

// notoSC returns the Noto Sans CJK SC face index in path, or skips.
func notoSC(t testing.TB, path string) ([]byte, int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("%s: %v (apt install fonts-noto-cjk)", path, err)
	}
	lds, err := ot.NewLoaders(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for i, ld := range lds {
		if d, _ := font.Describe(ld, nil); d.Family == "Noto Sans CJK SC" {
			return data, i
		}
	}
	t.Fatalf("%s has no Noto Sans CJK SC face", path)
	return nil, 0
}

// TestSubsetNotoMatchesWholeFont subsets Noto Sans CJK SC (regular and
// bold) and checks it against the whole face: same glyph for every rune
// kept, same outline for every glyph kept, same advances, and the same
// shaping output (GSUB, GPOS) for texts of the screens' kinds.
func TestSubsetNotoMatchesWholeFont(t *testing.T) {
	texts := []string{
		"AVATAR To Ye Wa, office flow: “fine” — 1,000.00 CNY…",
		"请用手机银行扫描二维码。金额：500.00元（人民币）「取款」",
		"Withdraw cash with your phone — no card needed • F8",
		"¥€£ ½ ° ±×÷ ÀÉÎÕÜ çñ",
	}
	var runes []rune
	for _, s := range texts {
		runes = append(runes, []rune(s)...)
	}
	runes = append(runes, 0x1F3E7) // no glyph in Noto CJK
	for _, path := range []string{"/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"} {
		data, idx := notoSC(t, path)
		whole := parse(t, data, idx)
		sub, err := Subset(bytes.NewReader(data), int64(len(data)), idx, runes)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sub.Missing, []rune{0x1F3E7}) {
			t.Errorf("%s: missing %q, want U+1F3E7", path, string(sub.Missing))
		}
		if len(sub.Data) > 2<<20 || sub.Glyphs > 2000 {
			t.Errorf("%s: %d bytes, %d glyphs: not much of a subset", path, len(sub.Data), sub.Glyphs)
		}
		f := parse(t, sub.Data, 0)
		if f.Describe() != whole.Describe() || f.Upem() != whole.Upem() {
			t.Errorf("%s: %v upem %d, want %v upem %d", path, f.Describe(), f.Upem(), whole.Describe(), whole.Upem())
		}
		got, ok1 := f.FontHExtents()
		want, ok2 := whole.FontHExtents()
		if got != want || ok1 != ok2 {
			t.Errorf("%s: extents %v, want %v", path, got, want)
		}
		for _, r := range sub.Runes {
			g, ok := f.NominalGlyph(r)
			if w, _ := whole.NominalGlyph(r); !ok || g != w {
				t.Errorf("%s: %q: glyph %d, want %d", path, r, g, w)
			}
		}
		kept := 0
		for g := range sub.NumGlyphs {
			o := outline(t, f, font.GID(g))
			if len(o.Segments) == 0 {
				continue
			}
			kept++
			if w := outline(t, whole, font.GID(g)); !reflect.DeepEqual(o, w) {
				t.Errorf("%s: glyph %d: outline differs from the whole font's", path, g)
			}
			if a, b := f.HorizontalAdvance(font.GID(g)), whole.HorizontalAdvance(font.GID(g)); a != b {
				t.Errorf("%s: glyph %d: advance %v, want %v", path, g, a, b)
			}
		}
		if kept < sub.Glyphs-10 || kept > sub.Glyphs {
			t.Errorf("%s: %d glyphs with an outline, %d kept", path, kept, sub.Glyphs)
		}
		var hb shaping.HarfbuzzShaper
		for _, s := range texts {
			for _, lang := range []string{"en", "zh"} {
				in := shaping.Input{Text: []rune(s), RunEnd: len([]rune(s)), Direction: di.DirectionLTR,
					Size: fixed.I(40), Language: language.NewLanguage(lang)}
				in.Face = whole
				want := hb.Shape(in).Glyphs
				in.Face = f
				got := hb.Shape(in).Glyphs
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: %q (%s) shapes differently", path, s, lang)
				}
				for _, g := range got {
					if o := outline(t, f, font.GID(g.GlyphID)); len(o.Segments) == 0 && len(outline(t, whole, font.GID(g.GlyphID)).Segments) > 0 {
						t.Errorf("%s: %q shapes to glyph %d, empty in the subset", path, s, g.GlyphID)
					}
				}
			}
		}
	}
}

func FuzzSubset(f *testing.F) {
	f.Add(tinyFont())
	f.Fuzz(func(t *testing.T, data []byte) {
		sub, err := Subset(bytes.NewReader(data), int64(len(data)), 0, []rune("ABC中"))
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error of no kind: %v", err)
			}
			return
		}
		if len(sub.Runes)+len(sub.Missing) != 4 {
			t.Fatalf("runes %q missing %q", string(sub.Runes), string(sub.Missing))
		}
		if _, err := ot.NewLoader(bytes.NewReader(sub.Data)); err != nil {
			t.Fatalf("the subset does not load: %v", err)
		}
	})
}

// BenchmarkSubsetNoto builds the subset the screens need (printable ASCII,
// Latin-1 and about 250 Chinese characters) from Noto Sans CJK SC: what
// the appliance pays at start-up per weight.
func BenchmarkSubsetNoto(b *testing.B) {
	path := "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
	_, idx := notoSC(b, path)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	var runes []rune
	for r := rune(0x20); r <= 0xFF; r++ {
		runes = append(runes, r)
	}
	for r := rune(0x4E00); len(runes) < 0xE0+250; r += 80 {
		runes = append(runes, r)
	}
	b.ReportAllocs()
	var sub *Font
	for b.Loop() {
		if sub, err = Subset(f, st.Size(), idx, runes); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(sub.Data)), "subset-bytes")
	b.ReportMetric(float64(sub.Glyphs), "glyphs")
}
