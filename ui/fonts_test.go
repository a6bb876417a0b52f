package ui_test

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/screenshots"
)

// TestScreensSameWithSubsetFonts renders every screen in both languages
// at two sizes with the subset fonts the UI loads and with the
// whole fonts it loaded before (every Go font, the Noto CJK faces parsed
// whole), and checks that every pixel is the same. On a difference both
// images are kept in the test's output directory.
func TestScreensSameWithSubsetFonts(t *testing.T) {
	if _, err := os.Stat(ui.DefaultCJKFontPaths[0]); err != nil {
		t.Skip("no Noto CJK font installed (apt install fonts-noto-cjk)")
	}
	// The appliance's headless screen and the window's default size (the
	// text is drawn at other sizes at other scales; TestEveryScreen checks
	// every size's layout).
	sizes := []image.Point{{1024, 768}, {1280, 800}}
	if testing.Short() {
		sizes = sizes[:1]
	}
	render := func(sc ui.Screen, l i18n.Lang, sz image.Point, whole bool) *image.RGBA {
		t.Helper()
		b, st, err := screenshots.Scene(sc, l)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ui.NewRenderer(b, sz, st.Clock)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		if whole {
			r.UseWholeFontsForTest()
		}
		img, err := r.Render(st)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	for _, sz := range sizes {
		for _, sc := range ui.Screens {
			for _, l := range i18n.Langs {
				name := fmt.Sprintf("%s-%s-%dx%d", sc, l, sz.X, sz.Y)
				sub, whole := render(sc, l, sz, false), render(sc, l, sz, true)
				n := 0
				for i := range sub.Pix {
					if sub.Pix[i] != whole.Pix[i] {
						n++
					}
				}
				if n == 0 {
					continue
				}
				dir := t.ArtifactDir()
				for suffix, img := range map[string]*image.RGBA{"subset": sub, "whole": whole} {
					f, err := os.Create(filepath.Join(dir, name+"-"+suffix+".png"))
					if err != nil {
						t.Fatal(err)
					}
					png.Encode(f, img)
					f.Close()
				}
				t.Errorf("%s: %d bytes differ between subset and whole fonts (images in %s)", name, n, dir)
			}
		}
	}
}
