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
	// Language, Amount or CannotPay; ScreenSupervisor, ScreenOperatorLogin
	// and ScreenWait are shown over any phase.
	Screen Screen
	// MoreTime shows the time-out banner of a screen that has one (QR, take
	// cash, the input screens) whatever the time.
	MoreTime bool
	// Entry is the keypad entry (whole currency units) on the Amount
	// screen, the number typed on the Replenish and InDoubt screens.
	Entry string
	// Operator is the operator logged in on the supervisor screens; Step
	// the replenishment's step (0 counting, 1 loading, 2 the report).
	Operator string
	Step     int
	// CannotPay is the refusal shown on the CannotPay screen, Asked the
	// amount it refused (minor units).
	CannotPay *CannotPayError
	Asked     int64
	// Speech turns the audio guidance on: the customer screens are dark
	// (but for the QR) and App.Spoken says what they say.
	Speech bool
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
// than drawing a frame. It also keeps one App, so that its fonts, shaped
// texts and QR symbol serve every frame and a screen change is logged once.
// It is not safe for concurrent use.
type Renderer struct {
	w *offscreen.Window
	a *App
}

// NewRenderer sets up an offscreen window of the given size; clock is the
// window's time source (time.Now when nil).
func NewRenderer(b Backend, size image.Point, clock func() time.Time) (*Renderer, error) {
	return NewRendererWith(b, size, Options{Clock: clock})
}

// NewRendererWith is NewRenderer with the App's options: opts.Clock is
// the window's time source, opts.Logger receives the App's lines (a
// second copy of the screens beside a window logs only its problems).
func NewRendererWith(b Backend, size image.Point, opts Options) (*Renderer, error) {
	w, err := offscreen.New(size, opts.Clock)
	if err != nil {
		return nil, err
	}
	return &Renderer{w: w, a: New(b, opts)}, nil
}

// Render draws one frame showing st (see State) and returns it. Each frame
// shows st whatever the frames before showed, except that, as in the
// kiosk's window, the "Do you need more time?" prompt of a deadline first
// seen after the Renderer's first frame waits for the middle of its phase
// (see Options.Warn), and that text drawn again may land up to a fraction
// of a pixel apart (the GPU renderer reuses a text's outline).
func (r *Renderer) Render(st State) (*image.RGBA, error) {
	r.prepare(st)
	if err := r.w.Frame(func(gtx layout.Context) { r.a.Layout(gtx) }); err != nil {
		return nil, err
	}
	return r.w.Screenshot()
}

// prepare puts the kept App in st, as New and apply put a new one.
func (r *Renderer) prepare(st State) {
	a := r.a
	a.opts.Lang, a.opts.Clock = st.Lang, st.Clock
	if a.opts.Clock == nil {
		a.opts.Clock = time.Now
	}
	a.apply(st)
}

// Release frees the offscreen window.
func (r *Renderer) Release() { r.w.Release() }

// apply puts the App in the UI-owned part of st, resetting every part that
// st does not set as New leaves it, so that a kept App shows st as a new
// one would.
func (a *App) apply(st State) {
	a.lang = st.Lang
	a.inputAt = a.now()
	a.snap = a.b.Snapshot()
	a.lastPhase = a.snap.Phase
	a.outcomeAt = a.now()
	a.dismissed = time.Time{}
	a.local = ScreenWelcome
	a.supervisor, a.forcePrompt = false, false
	a.calls = calls{}
	a.login, a.operator = loginState{}, ""
	a.op = superState{}
	switch st.Screen {
	case ScreenLanguage, ScreenAmount, ScreenCannotPay:
		a.local = st.Screen
	case ScreenSupervisor, ScreenReplenish, ScreenInDoubt, ScreenBalance, ScreenJournal:
		// One frame cannot wait for a call: Render reads the supervisor
		// information on the caller's goroutine (the kiosk never does).
		a.supervisor, a.operator = true, st.Operator
		a.sup, a.supAt, a.supOK = a.b.Supervisor(), a.now(), true
		a.applySupervisor(st)
	case ScreenWait:
		a.call = sessionCall{name: "render", since: a.now().Add(-waitDelay), wait: true}
	case ScreenOperatorLogin:
		a.login = loginState{on: true}
	}
	a.forcePrompt = st.MoreTime
	a.entry = st.Entry
	a.setErr("")
	a.cannot, a.asked = st.CannotPay, st.Asked
	a.receipt = receiptAsk
	a.speech = speechState{on: st.Speech, saidScreen: -1}
}

// applySupervisor puts a supervisor work screen in st, reading what it
// shows from the Backend's Operations on the caller's goroutine.
func (a *App) applySupervisor(st State) {
	o, ok := a.ops()
	if !ok {
		return
	}
	switch st.Screen {
	case ScreenReplenish:
		a.op = superState{mode: supReplenish, units: a.sup.Units, counted: map[string]int{}, step: st.Step}
		for _, u := range a.sup.Units {
			a.op.loads = append(a.op.loads, UnitLoad{ID: u.ID, Currency: u.Currency, Denom: u.Denom})
		}
		if st.Step == stepReport {
			var removed []UnitCount
			for i, u := range a.sup.Units {
				removed = append(removed, UnitCount{ID: u.ID, Notes: u.Count - i})
				a.op.loads[i].Notes = 2000
			}
			if err := o.SetInService(st.Operator, false); err != nil {
				a.op.err = err.Error()
			}
			r, err := o.Replenish(st.Operator, removed, a.op.loads)
			a.op.report = &r
			a.opErr("replenish", err)
		}
	case ScreenInDoubt:
		list, err := o.InDoubt()
		a.op = superState{mode: supInDoubt, inDoubt: list}
		a.opErr("in-doubt", err)
	case ScreenBalance:
		r, err := o.Balance(st.Operator, "")
		a.op = superState{mode: supBalance, balance: &r, day: r.Day}
		a.opErr("balance", err)
	case ScreenJournal:
		list, err := o.Journal("", "", journalLines)
		a.op = superState{mode: supJournal, journal: list, sel: max(len(list)-1, 0)}
		a.opErr("journal", err)
	}
	a.op.entry = st.Entry
}
