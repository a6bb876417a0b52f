package ui

import (
	"os"
	"strings"
	"sync"

	"gioui.org/font"
	"gioui.org/font/gofont"
	"gioui.org/font/opentype"
	"gioui.org/text"
)

var (
	wholeOnce sync.Once
	wholeSet  fontSet
)

// wholeFonts returns the fonts as the UI loaded them before subsetting:
// every Go font, and every face of the first CJK family found parsed
// whole (the code of ui/fonts.go before issue 14, kept here to compare).
func wholeFonts() fontSet {
	wholeOnce.Do(func() {
		fs := fontSet{faces: gofont.Collection(), typeface: "Go"}
		var family font.Typeface
		for _, p := range DefaultCJKFontPaths {
			data, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			faces, err := opentype.ParseCollection(data)
			if err != nil {
				continue
			}
			var pick []font.FontFace
			for _, f := range faces {
				tf := string(f.Font.Typeface)
				if family != "" && f.Font.Typeface != family {
					continue
				}
				if family == "" && len(faces) > 1 && !strings.Contains(tf, " SC") && strings.Contains(tf, "CJK") {
					continue
				}
				pick = append(pick, f)
			}
			if len(pick) == 0 {
				continue
			}
			if family == "" {
				family = pick[0].Font.Typeface
			}
			fs.faces = append(fs.faces, pick...)
		}
		if family != "" {
			fs.typeface = family
		}
		wholeSet = fs
	})
	return wholeSet
}

// UseWholeFontsForTest makes the Renderer draw with the fonts loaded
// whole, as before subsetting.
func (r *Renderer) UseWholeFontsForTest() {
	fs := wholeFonts()
	r.a.th.Shaper = text.NewShaper(text.NoSystemFonts(), text.WithCollection(fs.faces))
	r.a.th.Face = fs.typeface
}
