package ui

import (
	"image"
	"image/color"
	"math"

	"gioui.org/f32"
	"gioui.org/layout"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/text"

	"github.com/cardless-atm/cardless/ui/i18n"
)

// TapState is what the contactless reader last did with the phone held to
// it (docs/nfc.md); the QR screen says it beside "scan or tap", the idle
// screen says TapNoSession.
type TapState int

// The tap states the screens put in words.
const (
	TapNone      TapState = iota // no tap (yet) for this screen
	TapDetected                  // the session reached the phone: continue there
	TapNoApp                     // the phone did not answer the SELECT of the bank's app
	TapRefused                   // the app refused the session
	TapRemoved                   // the phone was taken away mid-exchange
	TapFailed                    // the reader failed
	TapNoSession                 // a tap with no withdrawal on the screen
)

var tapNames = [...]string{"None", "Detected", "NoApp", "Refused", "Removed", "Failed", "NoSession"}

func (t TapState) String() string {
	if t >= 0 && int(t) < len(tapNames) {
		return tapNames[t]
	}
	return "TapState(?)"
}

// tapKeys are the catalog texts of the tap states.
var tapKeys = map[TapState]i18n.Key{
	TapNone: "tap.hint", TapDetected: "tap.detected", TapNoApp: "tap.noapp", TapRefused: "tap.refused",
	TapRemoved: "tap.removed", TapFailed: "tap.failed", TapNoSession: "tap.nosession",
}

// tapLine is the QR screen's contactless line: the contactless symbol and
// what the last tap did (or how to tap).
func (a *App) tapLine(gtx C) D {
	col := colText
	switch a.snap.Tap {
	case TapDetected:
		col = colAccent
	case TapNone:
	default:
		col = colErr
	}
	return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
		layout.Rigid(func(gtx C) D { return contactlessSymbol(gtx, gtx.Dp(48), col) }),
		layout.Flexed(1, func(gtx C) D {
			return layout.Inset{Left: 12}.Layout(gtx, func(gtx C) D {
				return a.label(gtx, spBody, a.t(tapKeys[a.snap.Tap]), col, a.snap.Tap != TapNone, text.Start, descText)
			})
		}))
}

// contactlessSymbol draws the EMVCo contactless indicator: four arcs
// widening to the right, in a side×side square.
func contactlessSymbol(gtx C, side int, col color.NRGBA) D {
	s := float32(side)
	w := s / 14
	for i := range 4 {
		r := s * (0.2 + 0.22*float32(i))
		cx, cy := s*0.05, s/2
		var p clip.Path
		p.Begin(gtx.Ops)
		const half = 0.75 // radians either side of the axis
		p.MoveTo(f32.Pt(cx+r*float32(math.Cos(-half)), cy+r*float32(math.Sin(-half))))
		p.ArcTo(f32.Pt(cx, cy), f32.Pt(cx, cy), 2*half)
		paint.FillShape(gtx.Ops, col, clip.Stroke{Path: p.End(), Width: w}.Op())
	}
	return D{Size: image.Pt(side, side)}
}

// tapNotice appends to the welcome screen's lines the one for a tap with
// no withdrawal on the screen (or a failed reader), in both languages.
func (a *App) tapNotice(o i18n.Lang, ws ...layout.Widget) []layout.Widget {
	if a.snap.Tap != TapNoSession && a.snap.Tap != TapFailed {
		return ws
	}
	k := tapKeys[a.snap.Tap]
	return append(ws, a.para(spBody, a.t(k)+" / "+i18n.T(o, k), colErr, true))
}
