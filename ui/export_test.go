package ui

import (
	"image"
	"strings"
	"time"

	"gioui.org/io/event"
)

// Label is a text the layout drew, with its bounds in window pixels, as
// recorded in the semantic tree by App.label.
type Label struct {
	Text   string
	Button string // choice id when the text is a button's label
	Bounds image.Rectangle
}

// Harness exposes the headless wiring to the external tests.
type Harness struct{ h *headlessUI }

func NewHarness(b Backend, st State, size image.Point) (*Harness, error) {
	h, err := newHeadless(b, st, size)
	return &Harness{h}, err
}

func (h *Harness) Frame() error                { return h.h.frame() }
func (h *Harness) Image() (*image.RGBA, error) { return h.h.screenshot() }
func (h *Harness) Release()                    { h.h.release() }
func (h *Harness) Queue(evs ...event.Event)    { h.h.rt.Queue(evs...) }
func (h *Harness) Screen() Screen              { return h.h.app.lastScreen }
func (h *Harness) App() *App                   { return h.h.app }
func (h *Harness) Wakeup() (time.Time, bool)   { return h.h.rt.WakeupTime() }
func (h *Harness) Size() image.Point           { return h.h.size }

// Labels returns every text drawn in the last frame.
func (h *Harness) Labels() []Label {
	var out []Label
	for _, n := range h.h.rt.AppendSemantics(nil) {
		d := n.Desc
		switch {
		case d.Description == descText:
			out = append(out, Label{Text: d.Label, Bounds: d.Bounds})
		case strings.HasPrefix(d.Description, descButton):
			out = append(out, Label{Text: d.Label, Button: strings.TrimPrefix(d.Description, descButton), Bounds: d.Bounds})
		}
	}
	return out
}

// SetEntryForTest puts the App back on the Amount screen with entry e.
func (a *App) SetEntryForTest(e string) {
	a.local = ScreenAmount
	a.entry = e
	a.inputAt = a.now()
}
