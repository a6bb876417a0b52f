package printersim

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"os"

	"github.com/skip2/go-qrcode"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// cjkFonts are where Debian and others keep a CJK font (the first found
// renders Chinese receipts; without one, non-ASCII text shows as boxes).
var cjkFonts = []string{
	"/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
}

// face returns a font face for receipt text.
func face() font.Face {
	for _, path := range cjkFonts {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		coll, err := opentype.ParseCollection(data)
		if err != nil || coll.NumFonts() == 0 {
			continue
		}
		f, err := coll.Font(0)
		if err != nil {
			continue
		}
		if fc, err := opentype.NewFace(f, &opentype.FaceOptions{Size: 20, DPI: 72, Hinting: font.HintingFull}); err == nil {
			return fc
		}
	}
	return basicfont.Face7x13
}

// paperWidth is a 58 mm roll at 203 dpi (384 dots).
const paperWidth = 384

// RenderPNG draws a printed receipt as the paper would look: its lines,
// then each QR code, on a 384-dot-wide roll.
func RenderPNG(p Printed, w io.Writer) error {
	fc := face()
	lineH := fc.Metrics().Height.Ceil() + 4
	var qrs []image.Image
	height := 16 + len(p.Lines)*lineH
	for _, data := range p.QR {
		q, err := qrcode.New(data, qrcode.Medium)
		if err != nil {
			return fmt.Errorf("printersim: QR %q: %w", data, err)
		}
		img := q.Image(200)
		qrs = append(qrs, img)
		height += img.Bounds().Dy() + 8
	}
	img := image.NewRGBA(image.Rect(0, 0, paperWidth, height+16))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.NewUniform(color.Black), Face: fc}
	y := 16
	for _, line := range p.Lines {
		y += lineH
		d.Dot = fixed.P(8, y-4)
		d.DrawString(line)
	}
	for _, q := range qrs {
		y += 8
		x := (paperWidth - q.Bounds().Dx()) / 2
		draw.Draw(img, q.Bounds().Add(image.Pt(x, y)), q, q.Bounds().Min, draw.Src)
		y += q.Bounds().Dy()
	}
	return png.Encode(w, img)
}
