package ui

import (
	"image"
	"image/color"
	"strconv"
	"strings"
	"time"

	"gioui.org/font"
	"gioui.org/io/semantic"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/text"
	"gioui.org/unit"
	"gioui.org/widget"
	"gioui.org/widget/material"
	"golang.org/x/image/math/fixed"

	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/internal/offscreen"
)

type (
	C = layout.Context
	D = layout.Dimensions
)

// High-contrast palette (text on background > 12:1).
var (
	colBg      = color.NRGBA{R: 0xFF, G: 0xFF, B: 0xFF, A: 0xFF}
	colText    = color.NRGBA{R: 0x11, G: 0x11, B: 0x11, A: 0xFF}
	colAccent  = color.NRGBA{R: 0x0A, G: 0x31, B: 0x61, A: 0xFF}
	colBadge   = color.NRGBA{R: 0xFF, G: 0xD2, B: 0x00, A: 0xFF}
	colKey     = color.NRGBA{R: 0xE3, G: 0xE7, B: 0xEE, A: 0xFF}
	colPrimary = color.NRGBA{R: 0x00, G: 0x5A, B: 0x2B, A: 0xFF}
	colDanger  = color.NRGBA{R: 0x8E, G: 0x10, B: 0x10, A: 0xFF}
	colErr     = color.NRGBA{R: 0xA4, G: 0x00, B: 0x0F, A: 0xFF}
	colPanel   = color.NRGBA{R: 0xF1, G: 0xF3, B: 0xF7, A: 0xFF}
)

// Text sizes: large for accessibility.
const (
	spHeader = unit.Sp(26)
	spTitle  = unit.Sp(44)
	spBody   = unit.Sp(28)
	spButton = unit.Sp(28)
	spKey    = unit.Sp(36)
	spBig    = unit.Sp(56)
	spSmall  = unit.Sp(20)
)

// descText and descButton tag the semantic nodes of the labels the screens
// draw, so tests (and screen readers) can find every text and its bounds.
const (
	descText   = offscreen.DescText
	descButton = offscreen.DescButton
)

// label lays out one line or paragraph of text and records it as a semantic
// node (label text + bounds in window coordinates). Lines break only
// between words (UAX #14 segments: at spaces, after dashes, between CJK
// characters), never inside one. Height is unbounded, so text that does
// not fit shows up as bounds outside its area rather than being silently
// cut; text wider or taller than its constraints marks the frame's current
// fit attempt as overflowing (see fit), which then retries smaller.
func (a *App) label(gtx C, size unit.Sp, txt string, col color.NRGBA, bold bool, align text.Alignment, desc string) D {
	l := material.Label(a.th, size, txt)
	l.Color = col
	l.Alignment = align
	l.WrapPolicy = text.WrapWords
	if bold {
		l.Font.Weight = font.Bold
	}
	maxW, maxH := max(gtx.Constraints.Max.X, 0), gtx.Constraints.Max.Y
	// A button label without spaces ("Cancel", "取消", "CNY 1,000.00" has
	// one but its words must stay together too) is one line: it shrinks
	// rather than wraps. Other text wraps between words.
	single := a.noWrap || strings.HasPrefix(desc, descButton) && !strings.Contains(txt, " ")
	// A one-line label is laid out at an unbounded width: its line, at
	// most that wide, is aligned within the larger of its width and
	// Min.X, which is at most maxW, so it is drawn just as at
	// max(maxW, its width).
	gtx.Constraints.Max = image.Pt(maxW, 1<<20)
	if single {
		gtx.Constraints.Max.X = 1 << 20
	}
	gtx.Constraints.Min.X = min(gtx.Constraints.Min.X, maxW)
	sh := a.shape(gtx, l)
	m := op.Record(gtx.Ops)
	dims := l.Layout(gtx)
	call := m.Stop()
	over := sh.width > maxW || dims.Size.Y > maxH
	if over {
		a.overflow = true
	}
	if a.trace {
		a.laid = append(a.laid, laidLabel{Text: txt, Desc: desc, Lines: sh.lines, Overflow: over})
	}
	cl := clip.Rect{Max: dims.Size}.Push(gtx.Ops)
	semantic.LabelOp(txt).Add(gtx.Ops)
	semantic.DescriptionOp(desc).Add(gtx.Ops)
	cl.Pop()
	call.Add(gtx.Ops)
	return dims
}

// laidLabel is what label recorded about one text when tracing (tests).
type laidLabel struct {
	Text, Desc string
	Lines      []string // the text as broken into lines
	Overflow   bool     // wider or taller than its constraints
}

type shaped struct {
	lines []string // only when tracing
	width int      // widest line, in pixels
}

// shape breaks l's text into lines as l.Layout will in gtx's constraints.
// It passes the shaper the parameters that shape text in l.Layout (size,
// font, wrap policy, locale, MinWidth and MaxWidth: its cache key), so the
// layout that follows finds the lines in the shaper's cache and the text is
// shaped once. It shapes with Start alignment, so that the glyph positions,
// and width, do not depend on the alignment or on MinWidth.
func (a *App) shape(gtx C, l material.LabelStyle) shaped {
	sh := a.th.Shaper
	sh.LayoutString(text.Parameters{
		Font:            l.Font,
		PxPerEm:         fixed.I(gtx.Sp(l.TextSize)),
		MaxLines:        l.MaxLines,
		Truncator:       l.Truncator,
		WrapPolicy:      l.WrapPolicy,
		MaxWidth:        gtx.Constraints.Max.X,
		MinWidth:        gtx.Constraints.Min.X,
		Locale:          gtx.Locale,
		LineHeight:      fixed.I(gtx.Sp(l.LineHeight)),
		LineHeightScale: l.LineHeightScale,
	}, l.Text)
	var out shaped
	var runes []rune
	if a.trace {
		runes = []rune(l.Text)
	}
	start, off := 0, 0
	for g, ok := sh.NextGlyph(); ok; g, ok = sh.NextGlyph() {
		off += int(g.Runes)
		out.width = max(out.width, (g.X + g.Advance).Ceil())
		if a.trace && g.Flags&text.FlagLineBreak != 0 {
			end := min(off, len(runes))
			out.lines = append(out.lines, string(runes[start:end]))
			start = end
		}
	}
	if start < len(runes) {
		out.lines = append(out.lines, string(runes[start:]))
	}
	return out
}

// fit lays w out at the context's scale and, while some text in it
// overflows its space, again at smaller scales (down to minScale), and
// keeps the first attempt that fits (or the smallest).
func (a *App) fit(gtx C, minScale float32, w layout.Widget) D {
	outer := a.overflow
	defer func() { a.overflow = outer }()
	n := len(a.laid)
	for f := float32(1); ; f -= 0.05 {
		g := gtx
		g.Metric.PxPerDp *= f
		g.Metric.PxPerSp *= f
		a.overflow = false
		a.laid = a.laid[:n]
		m := op.Record(gtx.Ops)
		dims := w(g)
		call := m.Stop()
		if !a.overflow || f-0.05 < minScale {
			outer = outer || a.overflow
			call.Add(gtx.Ops)
			return dims
		}
	}
}

// oneLine is fit for text that must not wrap: its labels keep to one line
// and shrink (down to minScale) to fit; if they still do not, the
// enclosing fit shrinks everything.
func (a *App) oneLine(gtx C, minScale float32, w layout.Widget) D {
	nw := a.noWrap
	a.noWrap = true
	defer func() { a.noWrap = nw }()
	return a.fit(gtx, minScale, w)
}

// scaleFor is the factor applied to every size (dp and sp) for a window of
// sz pixels: the screens are designed for 1100x800 dp and scale with the
// smaller ratio, so text grows on big displays and shrinks on small ones,
// never below 70 %.
func scaleFor(m unit.Metric, sz image.Point) float32 {
	px := m.PxPerDp
	if px <= 0 {
		px = 1
	}
	s := min(float32(sz.X)/px/1100, float32(sz.Y)/px/800)
	return max(0.7, min(s, 4))
}

func (a *App) txt(gtx C, size unit.Sp, s string) D {
	return a.label(gtx, size, s, colText, false, text.Start, descText)
}

func (a *App) txtC(gtx C, size unit.Sp, s string, col color.NRGBA, bold bool) D {
	return a.label(gtx, size, s, col, bold, text.Middle, descText)
}

func fill(gtx C, col color.NRGBA, sz image.Point, radius int) {
	paint.FillShape(gtx.Ops, col, clip.UniformRRect(image.Rectangle{Max: sz}, radius).Op(gtx.Ops))
}

// add registers a choice for this frame and returns it.
func (a *App) add(c choice) choice {
	if a.clicks[c.id] == nil {
		a.clicks[c.id] = new(widget.Clickable)
	}
	a.cur = append(a.cur, c)
	return c
}

// button draws a choice: a filled rounded button with its function key
// badge ("F1") on the screen-edge side.
func (a *App) button(gtx C, c choice, badgeRight bool) D {
	cl := a.clicks[c.id]
	bg := colAccent
	switch {
	case c.primary:
		bg = colPrimary
	case c.esc:
		bg = colDanger
	}
	return cl.Layout(gtx, func(gtx C) D {
		h := gtx.Dp(84)
		sz := image.Pt(gtx.Constraints.Max.X, max(h, gtx.Constraints.Min.Y))
		fill(gtx, bg, sz, gtx.Dp(10))
		gtx.Constraints = layout.Exact(sz)
		badge := layout.Rigid(func(gtx C) D {
			if c.fkey == 0 {
				return D{}
			}
			return layout.UniformInset(10).Layout(gtx, func(gtx C) D {
				bs := image.Pt(gtx.Dp(56), sz.Y-gtx.Dp(20))
				fill(gtx, colBadge, bs, gtx.Dp(6))
				gtx.Constraints = layout.Exact(bs)
				return layout.Center.Layout(gtx, func(gtx C) D {
					gtx.Constraints.Min = image.Point{}
					return a.label(gtx, spSmall, i18n.T(a.lang, "fkey", c.fkey), colText, true, text.Start, descText)
				})
			})
		})
		lbl := layout.Flexed(1, func(gtx C) D {
			return layout.UniformInset(6).Layout(gtx, func(gtx C) D {
				// A narrow button first shrinks its label (to 75 %) on
				// one line, then wraps it between words, then shrinks
				// further; it never breaks a word.
				lay := func(gtx C) D {
					return layout.Center.Layout(gtx, func(gtx C) D {
						gtx.Constraints.Min = image.Point{}
						return a.label(gtx, spButton, c.label, colBg, true, text.Middle, descButton+c.id)
					})
				}
				outer, n := a.overflow, len(a.laid)
				a.overflow = false
				m := op.Record(gtx.Ops)
				dims := a.oneLine(gtx, 0.75, lay)
				call := m.Stop()
				fits := !a.overflow
				a.overflow = outer
				if fits {
					call.Add(gtx.Ops)
					return dims
				}
				a.laid = a.laid[:n]
				return a.fit(gtx, 0.45, lay)
			})
		})
		if badgeRight {
			return layout.Flex{}.Layout(gtx, lbl, badge)
		}
		return layout.Flex{}.Layout(gtx, badge, lbl)
	})
}

// keyButton draws a keypad key.
func (a *App) keyButton(gtx C, c choice) D {
	cl := a.clicks[c.id]
	return cl.Layout(gtx, func(gtx C) D {
		sz := gtx.Constraints.Max
		bg := colKey
		fg := colText
		if c.enter {
			bg, fg = colPrimary, colBg
		}
		fill(gtx, bg, sz, gtx.Dp(8))
		gtx.Constraints = layout.Exact(sz)
		return a.fit(gtx, 0.45, func(gtx C) D {
			return layout.Center.Layout(gtx, func(gtx C) D {
				gtx.Constraints.Min = image.Point{}
				return a.label(gtx, spKey, c.label, fg, true, text.Middle, descButton+c.id)
			})
		})
	})
}

// page is the frame every screen shares: a header bar, a title, and a body
// between two columns of function-key choices (F1–F4 left, F5–F8 right).
func (a *App) page(gtx C, title string, body layout.Widget) D {
	paint.Fill(gtx.Ops, colBg)
	var left, right [4]*choice
	for i := range a.cur {
		c := &a.cur[i]
		switch {
		case c.fkey >= 1 && c.fkey <= 4:
			left[c.fkey-1] = c
		case c.fkey >= 5 && c.fkey <= 8:
			right[c.fkey-5] = c
		}
	}
	// Both columns are about 300 dp wide, kept between 22 % and 30 % of
	// the window width.
	colW := max(gtx.Constraints.Max.X*22/100, min(gtx.Dp(300), gtx.Constraints.Max.X*30/100))
	empty := func(cs [4]*choice) bool {
		for _, c := range cs {
			if c != nil {
				return false
			}
		}
		return true
	}
	// A screen with choices on one side only keeps the other column's
	// width empty, so that the body is centred under the title on every
	// screen.
	none := empty(left) && empty(right)
	column := func(cs [4]*choice, badgeRight bool) layout.FlexChild {
		return layout.Rigid(func(gtx C) D {
			w := min(colW, gtx.Constraints.Max.X)
			if none {
				w = gtx.Dp(24)
			}
			if empty(cs) {
				return D{Size: image.Pt(w, 0)}
			}
			gtx.Constraints = layout.Exact(image.Pt(w, gtx.Constraints.Max.Y))
			rows := make([]layout.FlexChild, 4)
			for i, c := range cs {
				rows[i] = layout.Flexed(1, func(gtx C) D {
					if c == nil {
						return D{Size: gtx.Constraints.Min}
					}
					return layout.Inset{Left: 16, Right: 16, Top: 8, Bottom: 8}.Layout(gtx, func(gtx C) D {
						return layout.S.Layout(gtx, func(gtx C) D {
							gtx.Constraints.Min.Y = 0
							return a.button(gtx, *c, badgeRight)
						})
					})
				})
			}
			return layout.Flex{Axis: layout.Vertical}.Layout(gtx, rows...)
		})
	}
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(func(gtx C) D {
			sz := image.Pt(gtx.Constraints.Max.X, gtx.Dp(64))
			paint.FillShape(gtx.Ops, colAccent, clip.Rect{Max: sz}.Op())
			gtx.Constraints = layout.Exact(sz)
			return layout.Inset{Left: 24, Right: 24}.Layout(gtx, func(gtx C) D {
				return a.fit(gtx, 0.5, func(gtx C) D {
					return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
						layout.Flexed(1, func(gtx C) D {
							return layout.W.Layout(gtx, func(gtx C) D {
								gtx.Constraints.Min = image.Point{}
								return a.label(gtx, spHeader, a.t("app.title"), colBg, true, text.Start, descText)
							})
						}),
						layout.Rigid(func(gtx C) D {
							gtx.Constraints.Min = image.Point{}
							return a.label(gtx, spSmall, a.snap.TerminalID, colBg, false, text.End, descText)
						}),
					)
				})
			})
		}),
		layout.Rigid(func(gtx C) D {
			return layout.Inset{Top: 20, Bottom: 12, Left: 24, Right: 24}.Layout(gtx, func(gtx C) D {
				gtx.Constraints.Min.X = gtx.Constraints.Max.X
				gtx.Constraints.Max.Y = gtx.Dp(120)
				return a.fit(gtx, 0.6, func(gtx C) D {
					return a.txtC(gtx, spTitle, title, colAccent, true)
				})
			})
		}),
		layout.Flexed(1, func(gtx C) D {
			return layout.Inset{Bottom: 16}.Layout(gtx, func(gtx C) D {
				return layout.Flex{}.Layout(gtx,
					column(left, false),
					layout.Flexed(1, func(gtx C) D {
						return layout.Inset{Left: 8, Right: 8}.Layout(gtx, func(gtx C) D {
							if a.promptText == "" {
								return a.fit(gtx, 0.5, body)
							}
							return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
								layout.Flexed(1, func(gtx C) D { return a.fit(gtx, 0.5, body) }),
								layout.Rigid(a.banner))
						})
					}),
					column(right, true),
				)
			})
		}),
	)
}

// lines stacks ws from the top, each given the full width (so a para, whose
// text is aligned in the middle, shows centred) and 10 dp above and below.
func (a *App) lines(gtx C, ws ...layout.Widget) D {
	children := make([]layout.FlexChild, 0, len(ws))
	for _, w := range ws {
		children = append(children, layout.Rigid(func(gtx C) D {
			gtx.Constraints.Min.X = gtx.Constraints.Max.X
			return layout.Inset{Top: 10, Bottom: 10}.Layout(gtx, w)
		}))
	}
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx, children...)
}

func (a *App) para(size unit.Sp, s string, col color.NRGBA, bold bool) layout.Widget {
	return func(gtx C) D { return a.txtC(gtx, size, s, col, bold) }
}

func (a *App) layoutScreen(gtx C, sc Screen, now time.Time) D {
	a.promptText = ""
	if a.prompt {
		a.promptFor(sc, now)
	}
	switch sc {
	case ScreenWelcome:
		return a.welcome(gtx)
	case ScreenLanguage:
		a.add(choice{id: "lang.zh", label: i18n.T(i18n.Chinese, "lang.zh"), fkey: 4, act: func() { a.chooseLang(i18n.Chinese) }})
		a.add(choice{id: "lang.en", label: i18n.T(i18n.English, "lang.en"), fkey: 8, act: func() { a.chooseLang(i18n.English) }})
		// The customer may not read the current language: everything on
		// this screen is in both.
		o := a.lang.Other()
		a.add(choice{id: "cancel", label: a.t("btn.cancel") + " / " + i18n.T(o, "btn.cancel"), fkey: 7, esc: true, act: func() { a.goLocal(ScreenWelcome) }})
		return a.page(gtx, i18n.T(a.lang, "lang.title")+" / "+i18n.T(o, "lang.title"), func(gtx C) D {
			return a.lines(gtx, a.para(spBody, a.t("welcome.offer"), colText, false), a.para(spBody, i18n.T(o, "welcome.offer"), colText, false))
		})
	case ScreenAmount:
		return a.amount(gtx)
	case ScreenCannotPay:
		return a.cannotPay(gtx)
	case ScreenQR:
		return a.qrScreen(gtx, now)
	case ScreenProcessing:
		return a.page(gtx, a.t("processing.title"), func(gtx C) D {
			return a.lines(gtx,
				a.para(spBig, a.money(a.snap.Amount), colText, true),
				a.para(spBody, a.t("processing.body"), colText, false))
		})
	case ScreenTakeCash:
		return a.page(gtx, a.t("take.title"), func(gtx C) D {
			return a.lines(gtx,
				a.para(spBig, a.money(a.snap.Amount), colText, true),
				a.para(spBody, a.t("take.body"), colText, false),
				a.para(spBig, a.t("qr.time")+"  "+i18n.Countdown(a.secondsLeft(a.snap.Deadline, now)), colAccent, true))
		})
	case ScreenComplete:
		return a.complete(gtx)
	case ScreenDeclined, ScreenFailed:
		title := a.t("declined.title")
		if sc == ScreenFailed {
			title = a.t("failed.title")
		}
		ws := append([]layout.Widget{a.para(spBody, i18n.Reason(a.lang, a.snap.ReasonCode), colText, false)}, a.account()...)
		a.add(choice{id: "finish", label: a.t("btn.finish"), fkey: 8, enter: true, primary: true, act: a.finish})
		return a.page(gtx, title, func(gtx C) D { return a.lines(gtx, ws...) })
	case ScreenOutOfService:
		return a.page(gtx, a.t("oos.title"), func(gtx C) D {
			o := a.lang.Other()
			return a.lines(gtx,
				a.para(spBody, a.t("oos.body"), colText, false),
				a.para(spTitle, i18n.T(o, "oos.title"), colAccent, true),
				a.para(spBody, i18n.T(o, "oos.body"), colText, false))
		})
	case ScreenSupervisor:
		return a.supervisorScreen(gtx, now)
	case ScreenOperatorLogin:
		return a.loginScreen(gtx)
	case ScreenReplenish:
		return a.replenishScreen(gtx)
	case ScreenInDoubt:
		return a.inDoubtScreen(gtx)
	case ScreenBalance:
		return a.balanceScreen(gtx)
	case ScreenJournal:
		return a.journalScreen(gtx)
	case ScreenWait:
		return a.page(gtx, a.t("wait.title"), func(gtx C) D {
			return a.lines(gtx, a.para(spBody, a.t("wait.body"), colText, false))
		})
	}
	return D{}
}

func (a *App) welcome(gtx C) D {
	a.add(choice{id: "start", label: a.t("welcome.start"), fkey: 8, enter: true, primary: true, act: a.start})
	o := a.lang.Other()
	return a.tapWelcome.Layout(gtx, func(gtx C) D {
		return a.page(gtx, a.t("welcome.title")+" / "+i18n.T(o, "welcome.title"), func(gtx C) D {
			return layout.Center.Layout(gtx, func(gtx C) D {
				gtx.Constraints.Min = image.Point{}
				return a.lines(gtx, a.tapNotice(o,
					a.para(spBig, a.t("welcome.start"), colAccent, true),
					a.para(spBody, a.t("welcome.offer"), colText, false),
					a.para(spTitle, i18n.T(o, "welcome.start"), colAccent, true),
					a.para(spBody, i18n.T(o, "welcome.offer"), colText, false),
					a.para(spBody, a.t("welcome.touch"), colText, true),
					a.para(spBody, i18n.T(o, "welcome.touch"), colText, true))...)
			})
		})
	})
}

func (a *App) amount(gtx C) D {
	s := a.snap
	for i, p := range s.Presets {
		if i >= 6 {
			break
		}
		amt := p
		a.add(choice{id: "preset" + strconv.Itoa(i), label: a.money(amt), fkey: i + 1, act: func() { a.request(amt) }})
	}
	a.add(choice{id: "cancel", label: a.t("btn.cancel"), fkey: 7, esc: true, act: func() { a.goLocal(ScreenWelcome) }})
	var keys []choice
	for _, k := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "enter"} {
		c := choice{id: "key." + k, label: k}
		switch k {
		case "clear":
			c.label, c.act = a.t("key.clear"), a.clear
		case "enter":
			c.label, c.act, c.enter = a.t("key.enter"), a.confirmEntry, true
		default:
			d := k[0]
			c.act = func() { a.digit(d) }
		}
		keys = append(keys, a.add(c))
	}
	entry := "—"
	if amt, ok := a.entryAmount(); ok {
		entry = a.money(amt)
	}
	msg, msgCol := a.t("amount.rules", a.money(s.MinAmount), a.money(s.MaxAmount), a.money(s.Multiple)), colText
	if a.errKey != "" {
		msg, msgCol = a.t(a.errKey, a.errArgs...), colErr
	}
	return a.page(gtx, a.t("amount.title"), func(gtx C) D {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx C) D {
				gtx.Constraints.Min.X = gtx.Constraints.Max.X
				return a.txtC(gtx, spSmall, a.t("amount.other"), colText, false)
			}),
			layout.Rigid(func(gtx C) D {
				return layout.Inset{Top: 6, Bottom: 6}.Layout(gtx, func(gtx C) D {
					sz := image.Pt(gtx.Constraints.Max.X, gtx.Dp(72))
					fill(gtx, colPanel, sz, gtx.Dp(8))
					gtx.Constraints = layout.Exact(sz)
					return layout.Center.Layout(gtx, func(gtx C) D {
						gtx.Constraints.Min = image.Point{}
						return a.txtC(gtx, spKey, entry, colText, true)
					})
				})
			}),
			layout.Rigid(func(gtx C) D {
				gtx.Constraints.Min.X = gtx.Constraints.Max.X
				return layout.Inset{Bottom: 8}.Layout(gtx, func(gtx C) D {
					return a.txtC(gtx, spSmall, msg, msgCol, a.errKey != "")
				})
			}),
			layout.Flexed(1, func(gtx C) D {
				w := min(gtx.Constraints.Max.X, gtx.Dp(420))
				return layout.N.Layout(gtx, func(gtx C) D {
					gtx.Constraints = layout.Exact(image.Pt(w, gtx.Constraints.Max.Y))
					rows := make([]layout.FlexChild, 4)
					for r := range 4 {
						rows[r] = layout.Flexed(1, func(gtx C) D {
							cols := make([]layout.FlexChild, 3)
							for c := range 3 {
								k := keys[r*3+c]
								cols[c] = layout.Flexed(1, func(gtx C) D {
									return layout.UniformInset(5).Layout(gtx, func(gtx C) D {
										return a.keyButton(gtx, k)
									})
								})
							}
							return layout.Flex{}.Layout(gtx, cols...)
						})
					}
					return layout.Flex{Axis: layout.Vertical}.Layout(gtx, rows...)
				})
			}),
		)
	})
}

func (a *App) cannotPay(gtx C) D {
	cp := a.cannot
	if cp == nil {
		cp = &CannotPayError{Reason: "unknown"}
	}
	for i, n := range cp.Nearest {
		if i >= 4 {
			break
		}
		amt := n
		a.add(choice{id: "nearest" + strconv.Itoa(i), label: a.money(amt), fkey: i + 1, act: func() { a.request(amt) }})
	}
	a.add(choice{id: "cancel", label: a.t("btn.cancel"), fkey: 7, esc: true, act: func() { a.goLocal(ScreenWelcome) }})
	a.add(choice{id: "other", label: a.t("btn.other"), fkey: 8, primary: true, enter: true, act: func() {
		a.local = ScreenAmount
		a.entry = ""
		a.touch()
	}})
	var ws []layout.Widget
	if a.asked > 0 {
		ws = append(ws, a.para(spBody, a.t("cannot.asked", a.money(a.asked)), colText, true))
	}
	ws = append(ws, a.para(spBody, i18n.CannotPayReason(a.lang, cp.Reason), colText, false))
	if len(cp.Nearest) > 0 {
		ws = append(ws, a.para(spBody, a.t("cannot.choose"), colText, true))
	} else {
		ws = append(ws, a.para(spBody, a.t("cannot.ended"), colText, true))
	}
	return a.page(gtx, a.t("cannot.title"), func(gtx C) D { return a.lines(gtx, ws...) })
}

func (a *App) qrScreen(gtx C, now time.Time) D {
	a.add(choice{id: "cancel", label: a.t("btn.cancel"), fkey: 7, esc: true, act: a.cancel})
	// Encode each payload once; one that fails to encode is remembered
	// (as a symbol without modules) so that it is logged once, not on
	// every frame.
	if p := a.snap.QRPayload; a.qr == nil || a.qr.payload != p {
		a.qr = &qrMatrix{payload: p}
		if p != "" {
			if m, err := encodeQR(p); err != nil {
				a.log.Error("ui QR", "err", err)
			} else {
				a.qr = m
			}
		}
	}
	secs := a.secondsLeft(a.snap.Deadline, now)
	title := a.t("qr.title")
	if a.snap.Contactless {
		title = a.t("qr.title.tap") // and the tap line below (tap.go)
	}
	return a.page(gtx, title, func(gtx C) D {
		return layout.Flex{Spacing: layout.SpaceAround}.Layout(gtx,
			layout.Rigid(func(gtx C) D {
				// As large as the height allows, leaving 40 % of the
				// width to the details.
				side := min(gtx.Constraints.Max.Y, gtx.Constraints.Max.X*60/100)
				gtx.Constraints = layout.Exact(image.Pt(side, side))
				if a.qr == nil || len(a.qr.dark) == 0 {
					return D{Size: gtx.Constraints.Min}
				}
				return layout.N.Layout(gtx, func(gtx C) D {
					gtx.Constraints.Min = image.Point{}
					return a.qr.layout(gtx)
				})
			}),
			layout.Flexed(1, func(gtx C) D {
				return layout.Inset{Left: 24}.Layout(gtx, func(gtx C) D {
					item := func(k i18n.Key, v string, size unit.Sp) layout.Widget {
						return func(gtx C) D {
							return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
								layout.Rigid(func(gtx C) D { return a.txt(gtx, spSmall, a.t(k)) }),
								layout.Rigid(func(gtx C) D {
									lay := func(gtx C) D {
										return a.label(gtx, size, v, colText, true, text.Start, descText)
									}
									if size != spBig {
										return lay(gtx)
									}
									// The amount and the countdown keep to one
									// line ("CNY 500.00"), shrinking alone first.
									return a.oneLine(gtx, 0.6, lay)
								}))
						}
					}
					children := []layout.Widget{
						item("qr.amount", a.money(a.snap.Amount), spBig),
						item("qr.terminal", a.snap.TerminalID, spBody),
						item("qr.location", a.snap.Location, spBody),
						item("qr.time", i18n.Countdown(secs), spBig),
						func(gtx C) D { return a.txt(gtx, spSmall, a.t("qr.steps")) },
					}
					if a.snap.Contactless {
						children = append(children, a.tapLine)
					}
					fc := make([]layout.FlexChild, len(children))
					for i, w := range children {
						fc[i] = layout.Rigid(func(gtx C) D {
							return layout.Inset{Bottom: 14}.Layout(gtx, w)
						})
					}
					return layout.Flex{Axis: layout.Vertical}.Layout(gtx, fc...)
				})
			}),
		)
	})
}

func (a *App) complete(gtx C) D {
	_, canPrint := a.b.(ReceiptPrinter)
	ws := append([]layout.Widget{
		a.para(spBig, a.money(a.snap.Amount), colText, true),
		a.para(spBody, a.t("complete.body"), colText, false),
	}, a.account()...)
	switch {
	case a.snap.Receipt && canPrint && a.receipt == receiptAsk:
		ws = append(ws, a.para(spBody, a.t("complete.receipt"), colAccent, true))
		a.add(choice{id: "receipt.yes", label: a.t("btn.yes"), fkey: 8, enter: true, primary: true, act: a.printReceipt})
		a.add(choice{id: "receipt.no", label: a.t("btn.no"), fkey: 7, act: func() {
			a.receipt = receiptNo
			a.finish()
		}})
	case a.receipt == receiptPrinting:
		ws = append(ws, a.para(spBody, a.t("complete.printing"), colText, false))
		a.add(choice{id: "finish", label: a.t("btn.finish"), fkey: 8, enter: true, primary: true, act: a.finish})
	case a.receipt == receiptFailed:
		ws = append(ws, a.para(spBody, a.t("complete.printfailed"), colText, false))
		a.add(choice{id: "finish", label: a.t("btn.finish"), fkey: 8, enter: true, primary: true, act: a.finish})
	default:
		if !a.snap.Receipt {
			ws = append(ws, a.para(spSmall, a.t("complete.noprinter"), colText, false))
		}
		a.add(choice{id: "finish", label: a.t("btn.finish"), fkey: 8, enter: true, primary: true, act: a.finish})
	}
	return a.page(gtx, a.t("complete.title"), func(gtx C) D { return a.lines(gtx, ws...) })
}

// account is what an outcome screen says about the customer's account,
// and the reference to quote.
func (a *App) account() []layout.Widget {
	var ws []layout.Widget
	switch a.snap.Account {
	case AccountCharged:
		ws = append(ws, a.para(spBody, a.t("account.charged", a.money(a.snap.Amount)), colText, true))
	case AccountNotCharged, AccountReversed, AccountChecking:
		ws = append(ws, a.para(spBody, a.t(i18n.Key("account."+a.snap.Account.String())), colText, true))
	}
	switch {
	case a.snap.RRN != "":
		ws = append(ws, a.para(spBody, a.t("ref.rrn", a.snap.RRN), colAccent, false))
	case a.snap.SessionRef != "":
		ws = append(ws, a.para(spBody, a.t("ref.session", a.snap.SessionRef), colAccent, false))
	}
	return ws
}

// promptFor sets the time-out banner of screen sc: its words, and the
// choice that answers it (F8 and Enter on the QR and take-cash screens,
// where the core gives more time; a touch or any key on an input screen).
func (a *App) promptFor(sc Screen, now time.Time) {
	dl, _ := a.deadline(sc, a.snap)
	left := i18n.Countdown(a.secondsLeft(dl, now))
	switch sc {
	case ScreenQR:
		a.promptText = a.t("more.qr", left)
	case ScreenTakeCash:
		a.promptText = a.t("more.take", left)
	default:
		a.promptText = a.t("more.input", left)
		a.promptChoice = a.add(choice{id: "more.yes", label: a.t("btn.continue"), primary: true, act: a.moreTime})
		return
	}
	a.promptChoice = choice{}
	if a.snap.CanExtend {
		a.add(choice{id: "more.yes", label: a.t("btn.more"), fkey: 8, enter: true, primary: true, act: a.moreTime})
	}
}

// banner draws the time-out warning under a screen's body, so that what
// the customer is looking at (the QR, the cash) stays in view.
func (a *App) banner(gtx C) D {
	return layout.Inset{Top: 8}.Layout(gtx, func(gtx C) D {
		m := op.Record(gtx.Ops)
		dims := layout.UniformInset(12).Layout(gtx, func(gtx C) D {
			return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
				layout.Flexed(1, func(gtx C) D {
					gtx.Constraints.Min.X = gtx.Constraints.Max.X
					return a.label(gtx, spBody, a.promptText, colText, true, text.Middle, descText)
				}),
				layout.Rigid(func(gtx C) D {
					if a.promptChoice.id == "" {
						return D{}
					}
					gtx.Constraints.Max.X = min(gtx.Constraints.Max.X/3, gtx.Dp(240))
					gtx.Constraints.Min.X = gtx.Constraints.Max.X
					return layout.Inset{Left: 12}.Layout(gtx, func(gtx C) D { return a.button(gtx, a.promptChoice, true) })
				}))
		})
		call := m.Stop()
		fill(gtx, colBadge, dims.Size, gtx.Dp(10))
		call.Add(gtx.Ops)
		return dims
	})
}

func (a *App) supervisorScreen(gtx C, now time.Time) D {
	a.refreshSupervisor(now)
	info := a.sup
	a.add(choice{id: "super.exit", label: a.t("super.exit"), fkey: 7, esc: true, act: a.supervisorKey})
	if _, ok := a.ops(); ok && a.supOK { // the work screens start from the status read
		a.add(choice{id: "sup.replenish", label: a.t("sup.replenish"), fkey: 1, act: a.startReplenish})
		a.add(choice{id: "sup.indoubt", label: a.t("sup.indoubt"), fkey: 2, act: func() { a.supGo(supInDoubt) }})
		a.add(choice{id: "sup.balance", label: a.t("sup.balance"), fkey: 3, act: func() { a.supGo(supBalance) }})
		a.add(choice{id: "sup.journal", label: a.t("sup.journal"), fkey: 4, act: func() { a.supGo(supJournal) }})
		a.add(choice{id: "sup.test", label: a.t("sup.test"), fkey: 6, act: a.testDevices})
		if info.InService {
			a.add(choice{id: "sup.outofservice", label: a.t("sup.outofservice"), fkey: 5, act: func() { a.setService(false, nil) }})
		} else {
			a.add(choice{id: "sup.inservice", label: a.t("sup.inservice"), fkey: 5, act: func() { a.setService(true, nil) }})
		}
	}
	var ws []layout.Widget
	head := func(k i18n.Key) layout.Widget {
		return func(gtx C) D { return a.label(gtx, spBody, a.t(k), colAccent, true, text.Start, descText) }
	}
	line := func(s string) layout.Widget {
		return func(gtx C) D { return a.txt(gtx, spSmall, s) }
	}
	ws = append(ws, head("super.status"))
	if !a.supOK {
		ws = append(ws, line(a.t("super.loading")))
	} else if info.InService {
		ws = append(ws, line(a.t("super.inservice")))
	} else {
		ws = append(ws, line(a.t("super.outofservice", i18n.OutOfServiceReason(a.lang, info.Reason))))
	}
	for _, d := range info.Devices {
		name, state := i18n.Device(a.lang, d.Name, d.State)
		ws = append(ws, line(name+": "+state))
	}
	for _, d := range a.op.tests {
		name, _ := i18n.Device(a.lang, d.Name, "")
		res := a.t("sup.testok")
		if d.State != "ok" {
			res = a.t("sup.testfailed", d.State)
		}
		ws = append(ws, line(a.t("sup.testline", name, res)))
	}
	if a.op.busy {
		ws = append(ws, line(a.t("super.loading")))
	}
	for _, al := range info.Alarms {
		ws = append(ws, func(gtx C) D {
			return a.label(gtx, spSmall, a.t("super.alarm", i18n.Alarm(a.lang, al)), colErr, true, text.Start, descText)
		})
	}
	if info.StoreErr != "" {
		ws = append(ws, line(a.t("super.store", info.StoreErr)))
	}
	if a.supOK {
		ws = append(ws, line(a.t("super.saf", info.Queued)))
	}
	ws = append(ws, head("super.units"))
	for _, u := range info.Units {
		ws = append(ws, line(a.t("super.unitline", u.ID, i18n.Amount(a.lang, u.Denom, u.Currency, a.snap.Exponent), u.Count, u.Dispensed, u.Rejected, u.Retracted)))
	}
	ws = append(ws, head("super.journal"))
	j := info.Journal
	if len(j) > 8 {
		j = j[len(j)-8:]
	}
	for _, e := range j {
		l := e.Time.Format("15:04:05") + "  " + i18n.JournalKind(a.lang, e.Kind)
		if e.Session != "" {
			l += "  " + e.Session
		}
		ws = append(ws, line(l))
	}
	if a.op.err != "" {
		ws = append(ws, func(gtx C) D {
			return a.label(gtx, spSmall, a.t("sup.error", a.op.err), colErr, true, text.Start, descText)
		})
	}
	return a.page(gtx, a.t("super.title"), func(gtx C) D {
		fc := make([]layout.FlexChild, len(ws))
		for i, w := range ws {
			fc[i] = layout.Rigid(func(gtx C) D {
				return layout.Inset{Bottom: 4, Left: 16}.Layout(gtx, w)
			})
		}
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx, fc...)
	})
}
