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
// EGL_PLATFORM=surfaceless). To drive the UI with input over several
// frames, use package ui/uitest.
func Render(b Backend, st State, size image.Point) (*image.RGBA, error) {
	w, err := offscreen.New(size, st.Clock)
	if err != nil {
		return nil, err
	}
	defer w.Release()
	a := New(b, Options{Lang: st.Lang, Clock: st.Clock})
	a.apply(st)
	if err := w.Frame(func(gtx layout.Context) { a.Layout(gtx) }); err != nil {
		return nil, err
	}
	return w.Screenshot()
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
