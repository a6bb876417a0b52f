package ui

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"gioui.org/font"
	"gioui.org/font/gofont"
	"gioui.org/font/opentype"
	fontapi "github.com/go-text/typesetting/font"
	ot "github.com/go-text/typesetting/font/opentype"
	"golang.org/x/image/font/gofont/gobold"

	"github.com/cardless-atm/cardless/ui/internal/fontsubset"
)

// DefaultCJKFontPaths are the system font files (fontconfig locations on
// Debian/Ubuntu and Fedora) tried, in order, for Chinese text.
var DefaultCJKFontPaths = []string{
	"/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
	"/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",
	"/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
	"/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
	"/usr/share/fonts/truetype/arphic/uming.ttc",
}

// fontRanges are the Unicode blocks every CJK subset holds whatever the
// catalogs say (the runes the font has of them): printable ASCII,
// Latin-1, general punctuation, currency signs, CJK symbols and
// punctuation, and the full-width forms, so that amounts, terminal data
// and device status always draw with the screens' font.
var fontRanges = [][2]rune{
	{0x20, 0x7E}, {0xA0, 0xFF}, {0x2000, 0x206F}, {0x20A0, 0x20C0},
	{0x3000, 0x303F}, {0xFF01, 0xFF5E}, {0xFFE0, 0xFFE6},
}

//go:generate go test -run ^TestSourceRunes$ -update-font-runes

type fontSet struct {
	faces    []font.FontFace
	typeface font.Typeface
	lacks    []faceLacks // per CJK face, the runes it was asked for and has no glyph for
}

// faceLacks are the runes a font face has no glyph for.
type faceLacks struct {
	path  string
	font  font.Font
	runes []rune // sorted
}

var (
	fontMu    sync.Mutex
	fontCache = map[string]fontSet{}
)

// fontText returns the texts b's screens show that the catalogs do not
// hold (the terminal and its location, from the configuration): the CJK
// subset must draw them too.
func fontText(b Backend) []string {
	s := b.Snapshot()
	return []string{s.TerminalID, s.Location, s.Currency}
}

// loadFonts returns the Go regular and bold fonts plus the first CJK font
// family found in paths, and the typeface to use as the theme default.
// Each CJK face is a subset (package ui/internal/fontsubset) holding the
// runes of the catalogs and of this package's literals (sourceRunes), of
// text, and of fontRanges; a rune of the catalogs or of text the font has
// no glyph for is logged. A font that cannot be subset (TrueType outlines)
// is loaded whole, one face of it. When no CJK font is found it logs a
// warning and falls back to the Go fonts, which cannot show Chinese. Each
// set (the same paths and runes) is built once per process.
func loadFonts(log *slog.Logger, paths []string, text ...string) fontSet {
	need := neededRunes(text)
	want := withRanges(need)
	fontMu.Lock()
	defer fontMu.Unlock()
	set := loadFontSet(log, paths, want)
	for _, l := range set.lacks {
		if m := intersect(l.runes, need); len(m) > 0 {
			log.Warn("ui: font has no glyph for some runes the screens show; they will not render as designed",
				"path", l.path, "typeface", string(l.font.Typeface), "weight", l.font.Weight.String(), "runes", runeList(m))
		}
	}
	return set
}

// loadFontSet returns the font set for paths and the runes want, from the
// cache or built. fontMu is held.
func loadFontSet(log *slog.Logger, paths []string, want []rune) fontSet {
	key := strings.Join(paths, "\x00") + "\x01" + string(want)
	if set, ok := fontCache[key]; ok {
		return set
	}
	set := fontSet{faces: goFaces(), typeface: "Go"}
	var family font.Typeface
	var loaded []string
	for _, p := range paths {
		faces, lacks, fam, err := loadCJK(log, p, family, want)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				log.Warn("ui: cannot load font", "path", p, "err", err)
			}
			continue
		}
		if len(faces) == 0 {
			continue
		}
		family = fam
		set.faces = append(set.faces, faces...)
		set.lacks = append(set.lacks, lacks...)
		loaded = append(loaded, p)
	}
	if family == "" {
		log.Warn("ui: no CJK font found, Chinese text will not render; install fonts-noto-cjk", "tried", paths)
	} else {
		set.typeface = family
		log.Info("ui: CJK font loaded", "typeface", string(family), "files", loaded, "runes", len(want))
	}
	fontCache[key] = set
	// Building the subsets reads and drops a few megabytes: hand them back
	// to the OS now rather than keep a peak the appliance never needs again.
	debug.FreeOSMemory()
	return set
}

// loadCJK loads the faces of the font file at path that belong to family
// or, when family is empty, to the first family found (in a collection of
// CJK families, the Simplified Chinese one: Noto CJK holds JP, KR, SC, TC
// and HK faces, sans and mono). It returns them, the runes of want each
// lacks, and the family.
func loadCJK(log *slog.Logger, path string, family font.Typeface, want []rune) ([]font.FontFace, []faceLacks, font.Typeface, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, family, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, family, err
	}
	lds, err := ot.NewLoaders(f)
	if err != nil {
		return nil, nil, family, err
	}
	var faces []font.FontFace
	var lacks []faceLacks
	for i, ld := range lds {
		d, _ := fontapi.Describe(ld, nil)
		md := opentype.DescriptionToFont(d)
		if family == "" {
			tf := string(md.Typeface)
			if len(lds) > 1 && strings.Contains(tf, "CJK") && !strings.Contains(tf, " SC") {
				continue
			}
			family = md.Typeface
		}
		if md.Typeface != family {
			continue
		}
		ff, missing, err := loadFace(log, f, st.Size(), i, ld, md, want)
		if err != nil {
			return nil, nil, family, fmt.Errorf("face %d (%s): %w", i, md.Typeface, err)
		}
		faces = append(faces, ff)
		lacks = append(lacks, faceLacks{path, md, missing})
	}
	return faces, lacks, family, nil
}

// loadFace loads face i of the font file f (size bytes) as a subset for
// want, or whole when it cannot be subset. It returns the runes of want
// the face has no glyph for.
func loadFace(log *slog.Logger, f *os.File, size int64, i int, ld *ot.Loader, md font.Font, want []rune) (font.FontFace, []rune, error) {
	sub, err := fontsubset.Subset(f, size, i, want)
	if err == nil {
		face, err := opentype.Parse(sub.Data)
		if err != nil {
			return font.FontFace{}, nil, fmt.Errorf("subset: %w", err)
		}
		if face.Font() != md {
			return font.FontFace{}, nil, fmt.Errorf("subset describes itself as %v, the font as %v", face.Font(), md)
		}
		log.Debug("ui: font subset", "path", f.Name(), "face", i, "typeface", string(md.Typeface), "weight", md.Weight.String(),
			"runes", len(sub.Runes), "glyphs", sub.Glyphs, "of", sub.NumGlyphs, "bytes", len(sub.Data))
		return font.FontFace{Font: md, Face: face}, sub.Missing, nil
	}
	if !errors.Is(err, fontsubset.ErrUnsupported) {
		return font.FontFace{}, nil, err
	}
	log.Info("ui: font loaded whole, not subset", "path", f.Name(), "face", i, "typeface", string(md.Typeface), "reason", err.Error())
	whole, err := fontapi.NewFont(ld)
	if err != nil {
		return font.FontFace{}, nil, err
	}
	var missing []rune
	for _, r := range want {
		if _, ok := whole.Cmap.Lookup(r); !ok {
			missing = append(missing, r)
		}
	}
	return font.FontFace{Font: md, Face: wholeFace{whole}}, missing, nil
}

// wholeFace is a font loaded whole as a Gio font face.
type wholeFace struct{ f *fontapi.Font }

func (w wholeFace) Face() *fontapi.Face { return fontapi.NewFace(w.f) }

var (
	goOnce sync.Once
	goSet  []font.FontFace
)

// goFaces returns the Go regular and bold faces, the two weights the
// screens use, for what the CJK font lacks (and, first in the collection,
// the face Gio gives an empty text).
func goFaces() []font.FontFace {
	goOnce.Do(func() {
		bold, err := opentype.ParseCollection(gobold.TTF)
		if err != nil {
			panic(fmt.Errorf("ui: Go bold font: %w", err))
		}
		goSet = append(slices.Clip(gofont.Regular()), bold...)
	})
	return slices.Clip(goSet)
}

// neededRunes are the runes the screens show: those of the catalogs and
// literals (sourceRunes) and those of text, sorted, without duplicates
// and control characters.
func neededRunes(text []string) []rune {
	rs := []rune(sourceRunes)
	for _, t := range text {
		rs = append(rs, []rune(t)...)
	}
	rs = slices.DeleteFunc(rs, func(r rune) bool { return r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) })
	slices.Sort(rs)
	return slices.Compact(rs)
}

// withRanges adds the runes of fontRanges to rs.
func withRanges(rs []rune) []rune {
	out := slices.Clone(rs)
	for _, rg := range fontRanges {
		for r := rg[0]; r <= rg[1]; r++ {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// intersect returns the runes of a (sorted) that are in b (sorted).
func intersect(a, b []rune) []rune {
	var out []rune
	for _, r := range a {
		if _, ok := slices.BinarySearch(b, r); ok {
			out = append(out, r)
		}
	}
	return out
}

// runeList writes runes as "U+1F600 U+4E2D".
func runeList(rs []rune) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("U+%04X", r)
	}
	return strings.Join(parts, " ")
}
