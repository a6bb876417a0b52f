package ui

import (
	"context"
	"image"
	"image/color"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/paint"
	"gioui.org/text"

	"github.com/cardless-atm/cardless/ui/i18n"
)

// Speaker reads texts aloud: the kiosk's audio guidance (ADA 2010 §707,
// WCAG 2.2.1). Say speaks text in lang and returns when it has been
// spoken, or at once with ctx's error when ctx is cancelled (it then stops
// speaking). The App calls Say on a goroutine of its own, one text at a
// time: a new utterance cancels the one being spoken and waits for its
// Say to return before it starts.
type Speaker interface {
	Say(ctx context.Context, lang i18n.Lang, text string) error
}

// Utterance is one text spoken in one language.
type Utterance struct {
	Lang i18n.Lang
	Text string
}

// DefaultSpeechHold is how long the keypad's 5 is held down to turn the
// audio guidance on or off (Options.SpeechHold).
const DefaultSpeechHold = 2 * time.Second

// speechKey is the keypad key that, held down, toggles the audio guidance.
const speechKey key.Name = "5"

// colDark is the background of the screen blanked while speech is on.
var colDark = color.NRGBA{R: 0x08, G: 0x08, B: 0x0C, A: 0xFF}

// speechPart is one part of what a screen says: the whole screen is said
// when it appears, then only the parts whose id or stable text changed
// (the keypad entry, an error, the time-out warning, the receipt answer).
type speechPart struct {
	id     string
	stable string // compared between frames (the text without its countdown)
	say    Utterance
}

// speechState is the audio guidance of an App.
type speechState struct {
	on        bool
	held      time.Time // when the keypad's 5 went down (zero: not down)
	heldEntry string    // the keypad entry before that press
	heldDone  bool      // this hold already toggled speech
	announce  i18n.Key  // "say.on" or "say.off" to say before the next screen ("" none)

	parts      []speechPart // what the last frame's screen says
	saidScreen Screen       // the screen and language parts were said for
	saidLang   i18n.Lang
	said       []speechPart

	cancel context.CancelFunc // stops the utterances being spoken
	done   chan struct{}      // closed when they have stopped
	last   []Utterance        // the last utterances sent to the Speaker
}

// SpeechOn reports whether the audio guidance is on.
func (a *App) SpeechOn() bool { return a.speech.on }

// speaks reports whether screen sc is spoken (and blanked) now: the
// customer screens while speech is on, never the operator's.
func (a *App) speaks(sc Screen) bool {
	if !a.speech.on {
		return false
	}
	switch sc {
	case ScreenOperatorLogin, ScreenSupervisor, ScreenReplenish, ScreenInDoubt, ScreenBalance, ScreenJournal:
		return false
	}
	return true
}

// speechInput handles the keys of the audio guidance before the screen's
// own: the configured Options.SpeechKey toggles it; the keypad's 5 held
// down for Options.SpeechHold does too (the 5 it typed on the Amount
// screen is then taken back). Without a Speaker there is no audio
// guidance to turn on. It reports whether ke is consumed: the key's
// auto-repeat while held, and the speech key.
func (a *App) speechInput(ke key.Event) bool {
	if a.opts.Speaker == nil {
		return false // no audio guidance: 5 is only a digit
	}
	if a.opts.SpeechKey != "" && ke.Name == a.opts.SpeechKey {
		if ke.State == key.Press {
			a.toggleSpeech()
		}
		return true
	}
	if ke.Name != speechKey {
		return false
	}
	switch a.lastScreen {
	case ScreenOperatorLogin, ScreenSupervisor, ScreenReplenish, ScreenInDoubt, ScreenBalance, ScreenJournal:
		return false // a PIN or count digit
	}
	now := a.now()
	switch ke.State {
	case key.Press:
		if !a.speech.held.IsZero() {
			return true // auto-repeat of the key held down
		}
		a.speech.held, a.speech.heldEntry, a.speech.heldDone = now, a.entry, false
	case key.Release:
		a.checkHold(now)
		a.speech.held = time.Time{}
	}
	return false
}

// checkHold toggles speech once the keypad's 5 has been held long enough.
func (a *App) checkHold(now time.Time) {
	s := &a.speech
	if s.held.IsZero() || s.heldDone || now.Sub(s.held) < a.opts.SpeechHold {
		return
	}
	s.heldDone = true
	if a.local == ScreenAmount {
		a.entry = s.heldEntry
	}
	a.toggleSpeech()
}

// holdWake is when a key held down toggles speech, if one is down.
func (a *App) holdWake() (time.Time, bool) {
	s := a.speech
	if s.held.IsZero() || s.heldDone {
		return time.Time{}, false
	}
	return s.held.Add(a.opts.SpeechHold), true
}

func (a *App) toggleSpeech() {
	a.speech.on = !a.speech.on
	a.speech.said, a.speech.saidScreen = nil, -1
	if a.speech.on {
		a.speech.announce = "say.on"
		a.log.Info("ui audio guidance on")
		return
	}
	a.speech.announce = ""
	a.log.Info("ui audio guidance off")
	a.say([]Utterance{{a.lang, a.t("say.off")}})
}

// speechOff turns the guidance off at the end of a customer's visit, so
// that the next customer does not find a dark screen.
func (a *App) speechOff() {
	if a.speech.on {
		a.toggleSpeech()
	}
}

// layoutSpoken lays out screen sc: as usual, or, while speech is on, dark
// but for a line saying so (and the QR, which the phone must see),
// speaking what the screen shows. The screen's own layout still runs, so
// that its choices answer their keys, but draws nothing.
func (a *App) layoutSpoken(gtx C, sc Screen, now time.Time) D {
	if !a.speaks(sc) {
		a.speech.parts = a.speech.parts[:0]
		if a.speech.announce == "" {
			a.speech.said = nil
		}
		return a.layoutScreen(gtx, sc, now)
	}
	trace := a.trace
	a.trace = false
	m := op.Record(gtx.Ops)
	a.layoutScreen(gtx, sc, now)
	m.Stop() // not drawn: the screen is dark
	a.trace = trace
	a.speech.parts = a.speechParts(sc, now)
	a.speakChanges(sc)
	return a.blank(gtx, sc)
}

// speakChanges says the parts of the current screen the customer has not
// heard: all of them when the screen or language changed.
func (a *App) speakChanges(sc Screen) {
	s := &a.speech
	var us []Utterance
	if s.announce != "" {
		us = append(us, Utterance{a.lang, a.t(s.announce)})
		s.announce = ""
	}
	fresh := sc != s.saidScreen || a.lang != s.saidLang
	for _, p := range s.parts {
		if fresh || !slices.ContainsFunc(s.said, func(q speechPart) bool { return q.id == p.id && q.stable == p.stable }) {
			us = append(us, p.say)
		}
	}
	s.said = append(s.said[:0], s.parts...)
	s.saidScreen, s.saidLang = sc, a.lang
	if len(us) > 0 {
		a.say(us)
	}
}

// say hands us to the Speaker on a goroutine of its own, after stopping
// what it was saying; the window's goroutine never waits for speech.
func (a *App) say(us []Utterance) {
	s := &a.speech
	s.last = us
	sp := a.opts.Speaker
	if sp == nil {
		return
	}
	if s.cancel != nil {
		s.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	prev, done := s.done, make(chan struct{})
	s.cancel, s.done = cancel, done
	log := a.log
	go func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		for _, u := range us {
			if ctx.Err() != nil {
				return
			}
			if err := sp.Say(ctx, u.Lang, u.Text); err != nil && ctx.Err() == nil {
				log.Warn("ui audio guidance cannot speak", "lang", u.Lang.String(), "err", err)
				return
			}
		}
	}()
}

// StopSpeech stops the speech in progress and waits until the Speaker has
// returned (the window's end).
func (a *App) StopSpeech() {
	if a.speech.cancel != nil {
		a.speech.cancel()
		<-a.speech.done
	}
}

// Spoken returns what the last frame's screen says while speech is on,
// in order (empty while it is off or on the operator's screens). The QR's
// content and the customer's account are never part of it.
func (a *App) Spoken() []Utterance {
	var us []Utterance
	for _, p := range a.speech.parts {
		us = append(us, p.say)
	}
	return us
}

// blank draws the dark screen of the audio guidance.
func (a *App) blank(gtx C, sc Screen) D {
	paint.Fill(gtx.Ops, colDark)
	line := func(gtx C) D {
		return layout.UniformInset(24).Layout(gtx, func(gtx C) D {
			gtx.Constraints.Min.X = gtx.Constraints.Max.X
			return a.label(gtx, spBody, a.t("say.blank"), colBg, true, text.Middle, descText)
		})
	}
	if sc != ScreenQR || a.qr == nil || len(a.qr.dark) == 0 {
		return layout.Center.Layout(gtx, func(gtx C) D {
			gtx.Constraints.Min = image.Point{}
			return line(gtx)
		})
	}
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Flexed(1, func(gtx C) D {
			return layout.UniformInset(24).Layout(gtx, func(gtx C) D {
				return layout.Center.Layout(gtx, func(gtx C) D {
					gtx.Constraints.Min = image.Point{}
					return a.qr.layout(gtx)
				})
			})
		}),
		layout.Rigid(line))
}

// speechParts is what screen sc says in the App's state: one text per
// screen from the message catalogs, its choices with their keys, the
// amount, the time-out warning and the outcome.
func (a *App) speechParts(sc Screen, now time.Time) []speechPart {
	l := a.lang
	amt := func(v int64) string { return i18n.SpokenAmount(l, v, a.snap.Currency, a.snap.Exponent) }
	var ps []speechPart
	add := func(id string, lang i18n.Lang, texts ...string) {
		t := sentences(lang, texts...)
		if t != "" {
			ps = append(ps, speechPart{id: id, stable: t, say: Utterance{lang, t}})
		}
	}
	choices := func() { add("choices", l, a.sayChoices(l)...) }
	switch sc {
	case ScreenWelcome:
		for _, lg := range []i18n.Lang{l, l.Other()} {
			add("welcome."+lg.String(), lg, i18n.T(lg, "say.welcome"), a.sayChoice(lg, "start", i18n.T(lg, "welcome.start")))
		}
		if a.snap.Tap == TapNoSession || a.snap.Tap == TapFailed { // as tapNotice shows
			add("tap", l, a.t(tapKeys[a.snap.Tap]))
		}
	case ScreenLanguage:
		for _, lg := range []i18n.Lang{l, l.Other()} {
			add("lang."+lg.String(), lg, i18n.T(lg, "say.lang", a.fkeyOf("lang."+lg.String())), i18n.T(lg, "say.lang.cancel", a.fkeyOf("cancel")))
		}
	case ScreenAmount:
		s := a.snap
		add("title", l, a.t("say.amount"))
		choices()
		add("keypad", l, a.t("say.amount.keypad", amt(s.MinAmount), amt(s.MaxAmount), amt(s.Multiple)))
		if v, ok := a.entryAmount(); ok {
			add("entry", l, a.t("say.entry", amt(v)))
		} else {
			add("entry", l, a.t("say.entry.none"))
		}
		switch a.errKey {
		case "":
		case "amount.err.min":
			add("error", l, a.t(a.errKey, amt(s.MinAmount)))
		case "amount.err.max":
			add("error", l, a.t(a.errKey, amt(s.MaxAmount)))
		case "amount.err.multiple":
			add("error", l, a.t(a.errKey, amt(s.Multiple)))
		default:
			add("error", l, a.t(a.errKey))
		}
	case ScreenCannotPay:
		reason, next := "unknown", "cannot.ended"
		if a.cannot != nil {
			reason = a.cannot.Reason
			if len(a.cannot.Nearest) > 0 {
				next = "cannot.choose"
			}
		}
		add("title", l, a.t("say.cannot", amt(a.asked)), i18n.CannotPayReason(l, reason), a.t(i18n.Key(next)))
		choices()
	case ScreenQR:
		add("title", l, a.t("say.qr", amt(a.snap.Amount)))
		if a.snap.Contactless {
			// Tapping is the easier way without the screen: say it, and
			// what the last tap did.
			add("tap", l, a.t(tapKeys[a.snap.Tap]))
		}
		choices()
	case ScreenProcessing:
		add("title", l, a.t("say.processing", amt(a.snap.Amount)))
	case ScreenTakeCash:
		add("title", l, a.t("say.take", amt(a.snap.Amount)))
		choices()
	case ScreenComplete:
		add("title", l, append([]string{a.t("say.complete", amt(a.snap.Amount))}, a.sayAccount(l)...)...)
		_, canPrint := a.b.(ReceiptPrinter)
		switch {
		case a.snap.Receipt && canPrint && a.receipt == receiptAsk:
			add("receipt", l, a.t("complete.receipt"))
		case a.receipt == receiptPrinting:
			add("receipt", l, a.t("complete.printing"))
		case a.receipt == receiptFailed:
			add("receipt", l, a.t("complete.printfailed"))
		case !a.snap.Receipt:
			add("receipt", l, a.t("complete.noprinter"))
		}
		choices()
	case ScreenDeclined, ScreenFailed:
		title := "declined.title"
		if sc == ScreenFailed {
			title = "failed.title"
		}
		add("title", l, append([]string{a.t(i18n.Key(title)), i18n.Reason(l, a.snap.ReasonCode)}, a.sayAccount(l)...)...)
		choices()
	case ScreenOutOfService:
		for _, lg := range []i18n.Lang{l, l.Other()} {
			add("oos."+lg.String(), lg, i18n.T(lg, "oos.title"), i18n.T(lg, "oos.body"))
		}
	case ScreenWait:
		add("title", l, a.t("wait.title"), a.t("wait.body"))
	}
	if a.prompt {
		a.addPrompt(&ps, sc, now)
	}
	return ps
}

// addPrompt adds the time-out warning of screen sc, said when the banner
// appears (its stable text leaves out the seconds, which change).
func (a *App) addPrompt(ps *[]speechPart, sc Screen, now time.Time) {
	l := a.lang
	dl, _ := a.deadline(sc, a.snap)
	left := i18n.SpokenSeconds(l, a.secondsLeft(dl, now))
	k := i18n.Key("more.input")
	switch sc {
	case ScreenQR:
		k = "more.qr"
	case ScreenTakeCash:
		k = "more.take"
	}
	texts := []string{a.t(k, left)}
	for _, c := range a.cur {
		if c.id == "more.yes" && c.fkey > 0 {
			texts = append(texts, a.t("say.key", c.label, c.fkey))
		}
	}
	*ps = append(*ps, speechPart{id: "prompt", stable: string(k), say: Utterance{l, sentences(l, texts...)}})
}

// sayChoices says the current frame's function-key choices, by key (the
// time-out banner's "more time" is said with its warning).
func (a *App) sayChoices(l i18n.Lang) []string {
	cs := slices.Clone(a.cur)
	slices.SortStableFunc(cs, func(x, y choice) int { return x.fkey - y.fkey })
	var out []string
	for _, c := range cs {
		if c.fkey == 0 || c.id == "more.yes" {
			continue
		}
		label := c.label
		switch {
		case strings.HasPrefix(c.id, "preset"):
			label = a.sayAmountAt(a.snap.Presets, c.id, "preset")
		case strings.HasPrefix(c.id, "nearest") && a.cannot != nil:
			label = a.sayAmountAt(a.cannot.Nearest, c.id, "nearest")
		case c.id == "cancel":
			label = i18n.T(l, "btn.cancel") // the Language screen's is in both languages
		}
		out = append(out, i18n.T(l, "say.key", label, c.fkey))
	}
	return out
}

// sayChoice says the choice id with label in l, if the frame shows it.
func (a *App) sayChoice(l i18n.Lang, id, label string) string {
	if n := a.fkeyOf(id); n > 0 {
		return i18n.T(l, "say.key", label, n)
	}
	return ""
}

// fkeyOf is the function key of the current frame's choice id (0 none).
func (a *App) fkeyOf(id string) int {
	for _, c := range a.cur {
		if c.id == id {
			return c.fkey
		}
	}
	return 0
}

// sayAmountAt says the amount of the choice id (prefix + index) of vs.
func (a *App) sayAmountAt(vs []int64, id, prefix string) string {
	i := 0
	for _, r := range strings.TrimPrefix(id, prefix) {
		i = i*10 + int(r-'0')
	}
	if i < 0 || i >= len(vs) {
		return id
	}
	return i18n.SpokenAmount(a.lang, vs[i], a.snap.Currency, a.snap.Exponent)
}

// sayAccount is what an outcome says about the account and the reference,
// read one character at a time.
func (a *App) sayAccount(l i18n.Lang) []string {
	var out []string
	switch a.snap.Account {
	case AccountCharged:
		out = append(out, i18n.T(l, "account.charged", i18n.SpokenAmount(l, a.snap.Amount, a.snap.Currency, a.snap.Exponent)))
	case AccountNotCharged, AccountReversed, AccountChecking:
		out = append(out, i18n.T(l, i18n.Key("account."+a.snap.Account.String())))
	}
	if ref := a.snap.RRN; ref != "" {
		out = append(out, i18n.T(l, "say.ref", i18n.Spell(ref)))
	} else if ref := a.snap.SessionRef; ref != "" {
		out = append(out, i18n.T(l, "say.ref", i18n.Spell(ref)))
	}
	return out
}

// sentences joins texts into one utterance, ending each with a full stop
// of l where it has no closing punctuation.
func sentences(l i18n.Lang, texts ...string) string {
	var b strings.Builder
	for _, t := range texts {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if b.Len() > 0 && l == i18n.English {
			b.WriteByte(' ')
		}
		b.WriteString(t)
		if r, _ := utf8.DecodeLastRuneInString(t); !strings.ContainsRune(".?!:。？！：", r) {
			if l == i18n.Chinese {
				b.WriteString("。")
			} else {
				b.WriteByte('.')
			}
		}
	}
	return b.String()
}
