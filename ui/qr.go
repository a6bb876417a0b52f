package ui

import (
	"fmt"
	"image"
	"image/color"

	"gioui.org/layout"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"github.com/skip2/go-qrcode"
)

// quietZone is the number of light modules around the symbol (ISO/IEC 18004
// requires 4).
const quietZone = 4

// qrMatrix is an encoded QR symbol without its quiet zone.
type qrMatrix struct {
	payload string
	dark    [][]bool
}

func encodeQR(payload string) (*qrMatrix, error) {
	q, err := qrcode.New(payload, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("ui: encode QR: %w", err)
	}
	q.DisableBorder = true
	return &qrMatrix{payload: payload, dark: q.Bitmap()}, nil
}

// layout draws the symbol, with its quiet zone, as the largest square that
// fits the constraints using a whole number of pixels per module, so every
// module edge falls on a pixel boundary and the code is crisp at any size.
// Dark modules are painted as one pixel-aligned rectangle per horizontal
// run, which the GPU renderer draws without path stenciling.
func (m *qrMatrix) layout(gtx layout.Context) layout.Dimensions {
	n := len(m.dark)
	total := n + 2*quietZone
	side := min(gtx.Constraints.Max.X, gtx.Constraints.Max.Y)
	mod := max(side/total, 1)
	size := mod * total
	sz := image.Pt(size, size)
	paint.FillShape(gtx.Ops, color.NRGBA{R: 255, G: 255, B: 255, A: 255}, clip.Rect{Max: sz}.Op())
	black := color.NRGBA{A: 255}
	off := quietZone * mod
	for y, row := range m.dark {
		for x := 0; x < n; {
			if !row[x] {
				x++
				continue
			}
			start := x
			for x < n && row[x] {
				x++
			}
			r := image.Rect(off+start*mod, off+y*mod, off+x*mod, off+(y+1)*mod)
			paint.FillShape(gtx.Ops, black, clip.Rect(r).Op())
		}
	}
	return layout.Dimensions{Size: sz}
}
