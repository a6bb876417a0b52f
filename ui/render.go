package ui

import (
	"fmt"
	"image"
	"os"
	"time"

	"gioui.org/gpu/headless"
	"gioui.org/io/input"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/unit"

	"github.com/cardless-atm/cardless/ui/i18n"
)

// State selects what Render shows beyond the Backend's snapshot, which
// decides the phase screens (QR, Processing, ...).
type State struct {
	// Lang is the display language.
	Lang i18n.Lang
	// Screen forces a UI-owned screen while the Backend is Idle: Welcome,
	// Language, Amount or CannotPay; ScreenSupervisor and ScreenMoreTime are
	// shown over any phase.
	Screen Screen
	// Entry is the keypad entry (whole currency units) on the Amount screen.
	Entry string
	// CannotPay is the refusal shown on the CannotPay screen.
	CannotPay *CannotPayError
	// Clock is the time used for countdowns (time.Now when nil).
	Clock func() time.Time
}

// Render draws one frame of the UI for b and st into an image of the given
// size, with software or GPU rendering through gioui.org/gpu/headless (set
// EGL_PLATFORM=surfaceless when there is no display).
func Render(b Backend, st State, size image.Point) (*image.RGBA, error) {
	h, err := newHeadless(b, st, size)
	if err != nil {
		return nil, err
	}
	defer h.release()
	if err := h.frame(); err != nil {
		return nil, err
	}
	return h.screenshot()
}

// headlessUI is an App wired to an input router and a headless window, as
// app.Window would wire it. Tests use it to deliver events and inspect the
// semantic tree.
type headlessUI struct {
	app  *App
	win  *headless.Window
	rt   *input.Router
	ops  op.Ops
	size image.Point
	now  func() time.Time
}

func newHeadless(b Backend, st State, size image.Point) (*headlessUI, error) {
	if os.Getenv("EGL_PLATFORM") == "" && os.Getenv("WAYLAND_DISPLAY") == "" && os.Getenv("DISPLAY") == "" {
		os.Setenv("EGL_PLATFORM", "surfaceless")
	}
	clock := st.Clock
	if clock == nil {
		clock = time.Now
	}
	a := New(b, Options{Lang: st.Lang, Clock: clock})
	a.apply(st)
	win, err := headless.NewWindow(size.X, size.Y)
	if err != nil {
		return nil, fmt.Errorf("ui: headless window: %w", err)
	}
	return &headlessUI{app: a, win: win, rt: new(input.Router), size: size, now: clock}, nil
}

// apply puts the App in the UI-owned part of st.
func (a *App) apply(st State) {
	a.lang = st.Lang
	a.inputAt = a.now()
	a.snap = a.b.Snapshot()
	a.lastPhase = a.snap.Phase
	a.outcomeAt = a.now()
	switch st.Screen {
	case ScreenLanguage, ScreenAmount, ScreenCannotPay:
		a.local = st.Screen
	case ScreenSupervisor:
		a.supervisor = true
	case ScreenMoreTime:
		a.forcePrompt = true
	}
	a.entry = st.Entry
	a.cannot = st.CannotPay
}

func (h *headlessUI) context() layout.Context {
	h.ops.Reset()
	return layout.Context{
		Ops:         &h.ops,
		Now:         h.now(),
		Metric:      unit.Metric{PxPerDp: 1, PxPerSp: 1},
		Constraints: layout.Exact(h.size),
		Source:      h.rt.Source(),
	}
}

// frame lays the App out once, hands the ops to the router (as a window
// does) and renders them.
func (h *headlessUI) frame() error {
	gtx := h.context()
	h.app.Layout(gtx)
	h.rt.Frame(gtx.Ops)
	return h.win.Frame(gtx.Ops)
}

func (h *headlessUI) screenshot() (*image.RGBA, error) {
	img := image.NewRGBA(image.Rectangle{Max: h.size})
	if err := h.win.Screenshot(img); err != nil {
		return nil, fmt.Errorf("ui: screenshot: %w", err)
	}
	return img, nil
}

func (h *headlessUI) release() { h.win.Release() }
