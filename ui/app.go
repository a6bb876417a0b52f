package ui

import (
	"errors"
	"log/slog"
	"strconv"
	"time"

	"gioui.org/io/event"
	"gioui.org/io/key"
	"gioui.org/io/pointer"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/text"
	"gioui.org/widget"
	"gioui.org/widget/material"

	"github.com/cardless-atm/cardless/ui/i18n"
)

// Screen identifies what the kiosk shows.
type Screen int

// The screens. Welcome, Language, Amount and CannotPay are navigated by the
// UI itself while the core is Idle; the others follow the core's Phase.
const (
	ScreenWelcome Screen = iota
	ScreenLanguage
	ScreenAmount
	ScreenCannotPay
	ScreenQR
	ScreenProcessing
	ScreenTakeCash
	ScreenComplete
	ScreenDeclined
	ScreenFailed
	ScreenOutOfService
	ScreenSupervisor
	ScreenWait          // a call to the core is taking a moment
	ScreenOperatorLogin // operator ID and PIN before the supervisor screen
	ScreenReplenish     // supervisor: remove, count and load cassettes
	ScreenInDoubt       // supervisor: settle the sessions in doubt
	ScreenBalance       // supervisor: the day's figures beside the host's
	ScreenJournal       // supervisor: a day's journal, by session
)

// Screens lists every screen, in flow order.
var Screens = []Screen{ScreenWelcome, ScreenLanguage, ScreenAmount, ScreenCannotPay, ScreenWait, ScreenQR,
	ScreenProcessing, ScreenTakeCash, ScreenComplete, ScreenDeclined, ScreenFailed,
	ScreenOutOfService, ScreenOperatorLogin, ScreenSupervisor, ScreenReplenish, ScreenInDoubt, ScreenBalance, ScreenJournal}

var screenNames = [...]string{"welcome", "language", "amount", "cannot-pay", "qr", "processing",
	"take-cash", "complete", "declined", "failed", "out-of-service", "supervisor", "wait", "operator-login",
	"replenish", "in-doubt", "balance", "journal"}

func (s Screen) String() string {
	if s >= 0 && int(s) < len(screenNames) {
		return screenNames[s]
	}
	return "screen(" + strconv.Itoa(int(s)) + ")"
}

// Options configure an App.
type Options struct {
	// Kiosk: full screen, no decorations, pointer hidden, no exit shortcuts.
	Kiosk bool
	// Lang is the language of the attract screen and the default choice.
	Lang i18n.Lang
	// Clock is the time source (time.Now when nil).
	Clock func() time.Time
	// Logger receives screen changes and font problems (slog.Default when nil).
	Logger *slog.Logger
	// SupervisorKey toggles the supervisor screen (key.NameF12 when empty).
	SupervisorKey key.Name
	// IdleTimeout ends customer input screens (Language, Amount, CannotPay)
	// without input (default 30 s); OutcomeTimeout ends the outcome screens
	// (default 20 s) without a prompt: nothing is pending there. Warn is how
	// long before the time-out of a screen that waits for the customer (QR,
	// take cash, the input screens) its warning banner appears (default
	// 10 s), but not before the middle of a phase the App saw start, so a
	// short phase does not open with it.
	IdleTimeout, OutcomeTimeout, Warn time.Duration
	// FontPaths are font files tried for Chinese (DefaultCJKFontPaths when nil).
	FontPaths []string
	// Speaker reads the customer screens aloud while the audio guidance
	// is on (speech.go). Nil: no audio guidance; the keys below do
	// nothing.
	Speaker Speaker
	// SpeechKey, when set, toggles the audio guidance at once (the key the
	// headphone jack's driver reports, or a dedicated key); the keypad's
	// 5 held down for SpeechHold (DefaultSpeechHold when 0) always does.
	SpeechKey  key.Name
	SpeechHold time.Duration
}

func (o *Options) defaults() {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SupervisorKey == "" {
		o.SupervisorKey = key.NameF12
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Second
	}
	if o.OutcomeTimeout <= 0 {
		o.OutcomeTimeout = 20 * time.Second
	}
	if o.Warn <= 0 {
		o.Warn = 10 * time.Second
	}
	if o.FontPaths == nil {
		o.FontPaths = DefaultCJKFontPaths
	}
	if o.SpeechHold <= 0 {
		o.SpeechHold = DefaultSpeechHold
	}
}

// The receipt question on the Complete screen.
const (
	receiptAsk      = iota // asking
	receiptPrinting        // "yes": printing or printed
	receiptNo              // "no"
	receiptFailed          // the printer failed
)

// maxEntryDigits bounds keypad entry (whole currency units).
const maxEntryDigits = 7

// choice is one actionable button of the current screen.
type choice struct {
	id      string
	label   string
	fkey    int  // 1..8 = function display key, 0 = none
	enter   bool // Enter activates it
	esc     bool // Esc activates it
	primary bool
	act     func()
}

// App holds the kiosk UI state and lays it out into a layout.Context. It is
// not safe for concurrent use: one goroutine (the window loop or a test)
// calls Layout.
type App struct {
	b    Backend
	opts Options
	log  *slog.Logger
	th   *material.Theme

	lang         i18n.Lang
	local        Screen // Welcome, Language, Amount or CannotPay
	supervisor   bool
	operator     string     // the operator logged in to the supervisor screen
	login        loginState // operator login in progress (login.go)
	op           superState // the supervisor mode\'s work screens (supervise.go)
	entry        string
	errKey       i18n.Key // message under the keypad entry ("" none)
	errArgs      []any    // its arguments; set with errKey by setErr
	cannot       *CannotPayError
	inputAt      time.Time // last customer input on a local screen
	outcomeAt    time.Time // when an outcome phase was first shown
	dismissed    time.Time // deadline for which "more time" was refused
	warnDL       time.Time // the deadline warnAt last saw
	warnSince    time.Time // when warnAt first saw warnDL (the phase's start); zero if in the App's first frame
	laidOut      bool      // a frame has been laid out
	receipt      int       // receiptAsk, receiptPrinting, receiptNo, receiptFailed
	forcePrompt  bool
	prompt       bool // the current frame shows the time-out banner
	promptText   string
	promptChoice choice      // the banner's own button (input screens); id "" none
	asked        int64       // the amount the cannot-pay screen refused
	speech       speechState // the audio guidance (speech.go)

	keyFilters []event.Filter // the keys handleInput reads, built once

	calls // backend calls in flight (async.go)
	pipe  // their results on the way back

	lastPhase  Phase
	lastScreen Screen
	snap       Snapshot
	qr         *qrMatrix
	shown      []choice // choices laid out in the previous frame
	cur        []choice // choices of the frame being laid out
	clicks     map[string]*widget.Clickable
	tapWelcome widget.Clickable

	overflow bool        // some text of the current fit attempt does not fit
	noWrap   bool        // labels laid out now keep to one line
	trace    bool        // record laid (tests)
	laid     []laidLabel // texts of the frame being laid out, when tracing
}

// New returns an App showing the Welcome screen.
func New(b Backend, opts Options) *App {
	opts.defaults()
	fs := loadFonts(opts.Logger, opts.FontPaths, fontText(b)...)
	th := material.NewTheme()
	th.Shaper = text.NewShaper(text.NoSystemFonts(), text.WithCollection(fs.faces))
	th.Face = fs.typeface
	th.Palette = material.Palette{Bg: colBg, Fg: colText, ContrastBg: colAccent, ContrastFg: colBg}
	if _, ok := b.(OperatorLogin); !ok {
		opts.Logger.Warn("ui: the backend has no operator login; the supervisor key opens the supervisor screen without one")
	}
	a := &App{
		b: b, opts: opts, log: opts.Logger, th: th,
		lang:       opts.Lang,
		local:      ScreenWelcome,
		clicks:     map[string]*widget.Clickable{},
		lastPhase:  Idle,
		lastScreen: -1,
		keyFilters: keyFilters(opts.SupervisorKey, opts.SpeechKey),
		pipe:       newPipe(),
		speech:     speechState{saidScreen: -1},
	}
	return a
}

// keyFilters are the keys the App reads: Enter, Esc, Backspace, the
// supervisor key, the digits and F1-F8, plus a catch-all that swallows
// every other key so that no shortcut reaches anything else.
func keyFilters(supervisor, speech key.Name) []event.Filter {
	fs := []event.Filter{
		key.Filter{Name: key.NameReturn}, key.Filter{Name: key.NameEnter}, key.Filter{Name: key.NameEscape},
		key.Filter{Name: key.NameDeleteBackward}, key.Filter{Name: supervisor},
		key.Filter{Name: "", Optional: key.ModCtrl | key.ModAlt | key.ModShift | key.ModSuper | key.ModCommand},
	}
	for d := '0'; d <= '9'; d++ {
		fs = append(fs, key.Filter{Name: key.Name(string(d))})
	}
	for f := 1; f <= 8; f++ {
		fs = append(fs, key.Filter{Name: key.Name("F" + strconv.Itoa(f))})
	}
	if speech != "" {
		fs = append(fs, key.Filter{Name: speech})
	}
	return fs
}

// Screen returns the screen the last Layout showed (-1 before the first).
func (a *App) Screen() Screen { return a.lastScreen }

// Prompt reports whether the last Layout showed the time-out banner.
func (a *App) Prompt() bool { return a.prompt }

// Lang returns the current display language.
func (a *App) Lang() i18n.Lang { return a.lang }

func (a *App) now() time.Time { return a.opts.Clock() }

func (a *App) t(k i18n.Key, args ...any) string { return i18n.T(a.lang, k, args...) }

func (a *App) money(v int64) string {
	return i18n.Amount(a.lang, v, a.snap.Currency, a.snap.Exponent)
}

// baseScreen is the screen of snapshot s's phase (the UI-owned screen
// while Idle), before the supervisor screen and the waits.
func (a *App) baseScreen(s Snapshot) Screen {
	switch s.Phase {
	case OutOfService:
		return ScreenOutOfService
	case AwaitingPhone:
		return ScreenQR
	case Processing:
		return ScreenProcessing
	case TakeCash:
		return ScreenTakeCash
	case Complete:
		return ScreenComplete
	case Declined:
		return ScreenDeclined
	case Failed:
		return ScreenFailed
	}
	return a.local
}

// screenFor is the screen the App shows for snapshot s at time now.
func (a *App) screenFor(s Snapshot, now time.Time) Screen {
	if a.supervisor {
		return a.supScreen()
	}
	if a.login.on {
		return ScreenOperatorLogin
	}
	if a.waiting(now) {
		return ScreenWait
	}
	return a.baseScreen(s)
}

// prompting reports whether screen sc shows its time-out banner at now:
// only screens that wait for the customer have one, from warnAt on, until
// the customer asks for more time (dismissed) or acts.
func (a *App) prompting(sc Screen, now time.Time) bool {
	switch sc {
	case ScreenQR, ScreenTakeCash, ScreenLanguage, ScreenAmount, ScreenCannotPay:
	default:
		return false
	}
	dl, ok := a.deadline(sc, a.snap)
	return ok && (a.forcePrompt || (now.After(a.warnAt(dl, now)) && !dl.Equal(a.dismissed)))
}

// warnAt is when the time-out banner appears for the
// deadline dl: Options.Warn before it, but not before the middle of the
// phase (counted from when the App first saw dl), so that a short time-out,
// such as a take-cash time configured at a few seconds, does not open with
// the prompt hiding the screen it is about. A deadline already running in
// the App's first frame (the App started mid-phase) has no known start and
// gets the plain Options.Warn.
func (a *App) warnAt(dl, now time.Time) time.Time {
	if !dl.Equal(a.warnDL) {
		a.warnDL, a.warnSince = dl, now
		if !a.laidOut {
			a.warnSince = time.Time{}
		}
	}
	at := dl.Add(-a.opts.Warn)
	if a.warnSince.IsZero() {
		return at
	}
	if mid := a.warnSince.Add(dl.Sub(a.warnSince) / 2); at.Before(mid) {
		at = mid
	}
	return at
}

// deadline is when screen sc times out (zero, false when it does not).
func (a *App) deadline(sc Screen, s Snapshot) (time.Time, bool) {
	switch sc {
	case ScreenLanguage, ScreenAmount, ScreenCannotPay:
		return a.inputAt.Add(a.opts.IdleTimeout), true
	case ScreenQR, ScreenTakeCash:
		return s.Deadline, !s.Deadline.IsZero()
	case ScreenComplete, ScreenDeclined, ScreenFailed:
		return a.outcomeAt.Add(a.opts.OutcomeTimeout), true
	}
	return time.Time{}, false
}

func (a *App) goLocal(s Screen) {
	a.local = s
	a.inputAt = a.now()
	a.dismissed = time.Time{}
	if s == ScreenWelcome {
		a.entry, a.cannot = "", nil
		a.setErr("")
		a.lang = a.opts.Lang
	}
}

// Layout handles the pending input events and lays out the current screen.
func (a *App) Layout(gtx layout.Context) layout.Dimensions {
	a.collect()
	a.handleInput(gtx)
	a.awaitQuick()
	now := a.now()
	a.checkHold(now)
	a.snap = a.b.Snapshot()
	a.track(now)
	sc := a.screenFor(a.snap, now)
	a.prompt = a.prompting(sc, now)
	defer func() { a.laidOut = true }()
	if sc != a.lastScreen {
		a.log.Info("ui screen", "screen", sc.String(), "phase", a.snap.Phase.String(), "lang", a.lang.String())
		a.lastScreen = sc
	}
	if a.opts.Kiosk {
		pointer.CursorNone.Add(gtx.Ops)
	}
	a.cur = a.cur[:0]
	a.laid = a.laid[:0]
	a.overflow = false
	s := scaleFor(gtx.Metric, gtx.Constraints.Max)
	gtx.Metric.PxPerDp *= s
	gtx.Metric.PxPerSp *= s
	dims := a.layoutSpoken(gtx, sc, now)
	a.shown = append(a.shown[:0], a.cur...)
	if next, ok := a.nextWake(sc, now); ok {
		gtx.Execute(op.InvalidateCmd{At: gtx.Now.Add(next.Sub(now))})
	}
	if next, ok := a.holdWake(); ok { // the earlier wake-up counts
		gtx.Execute(op.InvalidateCmd{At: gtx.Now.Add(next.Sub(now))})
	}
	return dims
}

// track reacts to phase changes and to time-outs.
func (a *App) track(now time.Time) {
	p := a.snap.Phase
	if p != a.lastPhase {
		a.dismissed = time.Time{}
		a.forcePrompt = false
		switch p {
		case Idle:
			a.goLocal(ScreenWelcome)
			a.speechOff() // the session is over
		case Complete, Declined, Failed:
			a.outcomeAt = now
			a.receipt = receiptAsk
		}
		a.lastPhase = p
	}
	if a.supervisor || a.call.name != "" {
		return // time-outs wait for the call in flight
	}
	sc := a.baseScreen(a.snap)
	dl, ok := a.deadline(sc, a.snap)
	if !ok || now.Before(dl) || a.forcePrompt {
		return
	}
	switch sc {
	case ScreenLanguage, ScreenAmount, ScreenCannotPay:
		a.goLocal(ScreenWelcome)
		a.speechOff() // the customer has gone
	case ScreenComplete, ScreenDeclined, ScreenFailed:
		a.finish()
	}
	// QR and take-cash time-outs belong to the core.
}

// nextWake is the next moment the display changes by itself: the next
// countdown second, the prompt appearing, or a time-out.
func (a *App) nextWake(sc Screen, now time.Time) (time.Time, bool) {
	switch {
	case sc == ScreenSupervisor:
		return a.supAt.Add(supervisorRefresh), !a.supAt.IsZero()
	case sc == ScreenWait:
		return time.Time{}, false // the call's end wakes the window
	case a.call.name != "" && a.call.wait:
		return a.call.since.Add(waitDelay), true
	}
	dl, ok := a.deadline(sc, a.snap) // none on the supervisor screen
	if !ok {
		return time.Time{}, false
	}
	warnAt := a.warnAt(dl, now)
	if a.prompt || sc == ScreenQR || sc == ScreenTakeCash {
		// A countdown is visible: wake when the shown second changes.
		rem := dl.Sub(now)
		if rem <= 0 {
			return now.Add(time.Second), true
		}
		step := rem % time.Second
		if step == 0 {
			step = time.Second
		}
		return now.Add(step), true
	}
	if now.Before(warnAt) {
		return warnAt, true
	}
	return dl, true
}

func (a *App) secondsLeft(dl, now time.Time) int {
	rem := dl.Sub(now)
	if rem <= 0 {
		return 0
	}
	return int((rem + time.Second - 1) / time.Second)
}

// finish ends an outcome screen: the core forgets the finished session
// and the UI goes back to Welcome.
func (a *App) finish() {
	a.cancel()
	a.goLocal(ScreenWelcome)
}

// cancel asks the core to cancel the session (or to forget a finished one).
func (a *App) cancel() {
	a.session("cancel", true, func() error { a.b.Cancel(); return nil }, nil)
}

// handleInput runs the actions of the keys pressed and the buttons clicked
// since the previous frame, against the choices that frame showed.
func (a *App) handleInput(gtx layout.Context) {
	var acts []func()
	for _, c := range a.shown {
		if cl := a.clicks[c.id]; cl != nil && cl.Clicked(gtx) {
			acts = append(acts, c.act)
		}
	}
	if a.tapWelcome.Clicked(gtx) && a.lastScreen == ScreenWelcome {
		acts = append(acts, a.start)
	}
	for {
		ev, ok := gtx.Event(a.keyFilters...)
		if !ok {
			break
		}
		ke, ok := ev.(key.Event)
		if ok && a.speechInput(ke) {
			continue
		}
		if !ok || ke.State != key.Press {
			continue
		}
		switch a.lastScreen {
		case ScreenLanguage, ScreenAmount, ScreenCannotPay:
			a.touch() // any key shows the customer is still there
		}
		if act := a.keyAction(ke.Name); act != nil {
			acts = append(acts, act)
		}
	}
	for _, act := range acts {
		act()
	}
}

func (a *App) keyAction(n key.Name) func() {
	if n == a.opts.SupervisorKey {
		return a.supervisorKey
	}
	for _, c := range a.shown {
		switch {
		case (n == key.NameReturn || n == key.NameEnter) && c.enter,
			n == key.NameEscape && c.esc,
			c.fkey > 0 && string(n) == "F"+strconv.Itoa(c.fkey):
			return c.act
		}
	}
	if a.lastScreen == ScreenReplenish || a.lastScreen == ScreenInDoubt {
		switch {
		case len(n) == 1 && n[0] >= '0' && n[0] <= '9':
			return func() { a.supDigit(n[0]) }
		case n == key.NameDeleteBackward:
			return a.supClear
		}
	}
	if a.lastScreen == ScreenOperatorLogin {
		switch {
		case len(n) == 1 && n[0] >= '0' && n[0] <= '9':
			return func() { a.loginDigit(n[0]) }
		case n == key.NameDeleteBackward:
			return a.loginClear
		}
	}
	if a.lastScreen == ScreenAmount {
		switch {
		case len(n) == 1 && n[0] >= '0' && n[0] <= '9':
			return func() { a.digit(n[0]) }
		case n == key.NameDeleteBackward:
			return a.clear
		}
	}
	return nil
}

func (a *App) touch() { a.inputAt = a.now() }

func (a *App) start() {
	a.goLocal(ScreenLanguage)
}

func (a *App) chooseLang(l i18n.Lang) {
	a.lang = l
	a.local = ScreenAmount
	a.touch()
}

// setErr sets the message under the keypad entry and its arguments
// together ("" clears it).
func (a *App) setErr(k i18n.Key, args ...any) {
	a.errKey, a.errArgs = k, args
}

func (a *App) digit(d byte) {
	a.touch()
	a.setErr("")
	if len(a.entry) >= maxEntryDigits || (a.entry == "" && d == '0') {
		return
	}
	a.entry += string(d)
}

func (a *App) clear() {
	a.touch()
	a.entry = ""
	a.setErr("")
}

func pow10(n int) int64 {
	v := int64(1)
	for range n {
		v *= 10
	}
	return v
}

// entryAmount is the keypad entry (whole currency units) in minor units;
// false when there is none.
func (a *App) entryAmount() (int64, bool) {
	if a.entry == "" {
		return 0, false
	}
	units, err := strconv.ParseInt(a.entry, 10, 64)
	if err != nil {
		return 0, false
	}
	return units * pow10(a.snap.Exponent), true
}

// confirmEntry validates the keypad entry against the limits and requests
// the withdrawal.
func (a *App) confirmEntry() {
	a.touch()
	amt, ok := a.entryAmount()
	if !ok {
		a.setErr("amount.err.empty")
		return
	}
	s := a.snap
	switch {
	case s.MinAmount > 0 && amt < s.MinAmount:
		a.setErr("amount.err.min", a.money(s.MinAmount))
	case s.MaxAmount > 0 && amt > s.MaxAmount:
		a.setErr("amount.err.max", a.money(s.MaxAmount))
	case s.Multiple > 0 && amt%s.Multiple != 0:
		a.setErr("amount.err.multiple", a.money(s.Multiple))
	default:
		a.request(amt)
	}
}

// request asks the core for a session; a refusal shows the cannot-pay
// screen, a failure a message under the entry.
func (a *App) request(amt int64) {
	a.touch()
	a.setErr("")
	a.session("request", true, func() error { return a.b.RequestWithdrawal(amt) }, func(err error) {
		a.touch()
		var cp *CannotPayError
		switch {
		case err == nil:
			a.entry = ""
		case errors.As(err, &cp):
			a.cannot, a.asked = cp, amt
			a.local = ScreenCannotPay
			a.log.Info("ui amount cannot be paid", "reason", cp.Reason, "nearest", len(cp.Nearest))
		default:
			a.setErr("amount.err.request")
			a.log.Warn("ui withdrawal request failed", "err", err)
		}
	})
}

// moreTime answers the time-out banner: on the QR and take-cash screens
// the core moves the deadline (the banner closes at once and the countdown
// goes on; it comes back before the new deadline), on an input screen the
// customer's touch restarts the idle time.
func (a *App) moreTime() {
	a.forcePrompt = false
	switch sc := a.baseScreen(a.snap); sc {
	case ScreenQR, ScreenTakeCash:
		if a.session("more-time", false, func() error { a.b.MoreTime(); return nil }, nil) {
			a.dismissed = a.snap.Deadline
		}
	default:
		a.touch()
	}
}

// printReceipt prints on its own goroutine: the customer may finish (and
// the next one start) while the printer works.
func (a *App) printReceipt() {
	a.outcomeAt = a.now()
	rp, ok := a.b.(ReceiptPrinter)
	if !ok || a.printing {
		return
	}
	a.printing, a.receipt = true, receiptPrinting
	lang := a.lang.String()
	a.background(func() func() {
		err := rp.PrintReceipt(lang)
		return func() {
			a.printing = false
			if err != nil {
				a.log.Warn("ui receipt print failed", "err", err)
				if a.receipt == receiptPrinting {
					a.receipt = receiptFailed
				}
			}
		}
	})
}
