package ui

import (
	"image"
	"time"

	"gioui.org/layout"

	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/internal/offscreen"
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
// size, with software or GPU rendering through gioui.org/gpu/headless
// (without a display and without EGL_PLATFORM, it sets
// EGL_PLATFORM=surfaceless). It sets up and releases an offscreen window
// for the one frame; to draw many, keep a Renderer. To drive the UI with
// input over several frames, use package ui/uitest.
func Render(b Backend, st State, size image.Point) (*image.RGBA, error) {
	r, err := NewRenderer(b, size, st.Clock)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	return r.Render(st)
}

// Renderer draws frames of the UI for one Backend into one offscreen
// window that it keeps between frames: setting a window up costs far more
// than drawing a frame. It is not safe for concurrent use.
type Renderer struct {
	b Backend
	w *offscreen.Window
}

// NewRenderer sets up an offscreen window of the given size; clock is the
// window's time source (time.Now when nil).
func NewRenderer(b Backend, size image.Point, clock func() time.Time) (*Renderer, error) {
	w, err := offscreen.New(size, clock)
	if err != nil {
		return nil, err
	}
	return &Renderer{b: b, w: w}, nil
}

// Render draws one frame showing st (see State) and returns it.
func (r *Renderer) Render(st State) (*image.RGBA, error) {
	a := New(r.b, Options{Lang: st.Lang, Clock: st.Clock})
	a.apply(st)
	if err := r.w.Frame(func(gtx layout.Context) { a.Layout(gtx) }); err != nil {
		return nil, err
	}
	return r.w.Screenshot()
}

// Release frees the offscreen window.
func (r *Renderer) Release() { r.w.Release() }

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
