// Package offscreen wires a Gio layout to an input router and an offscreen
// GPU window (gioui.org/gpu/headless) the way app.Window wires it: one
// frame lays the UI out, hands the ops to the router (so queued input
// events reach the widgets on the next frame and the semantic tree is
// filled) and renders them. It is shared by ui.Render and the test driver
// ui/uitest, and names the semantic descriptions the screens use.
package offscreen

import (
	"fmt"
	"image"
	"os"
	"time"

	"gioui.org/gpu/headless"
	"gioui.org/io/event"
	"gioui.org/io/input"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/unit"
)

// DescText and DescButton are the semantic descriptions of the texts the
// screens draw: DescText for plain text, DescButton followed by the
// choice id for a button's label.
const (
	DescText   = "text"
	DescButton = "button:"
)

// Window is an offscreen window with an input router. It is not safe for
// concurrent use.
type Window struct {
	win  *headless.Window
	rt   input.Router
	ops  op.Ops
	size image.Point
	now  func() time.Time
}

// New returns a window of the given size whose frames are stamped with
// now. Without a display it sets EGL_PLATFORM=surfaceless.
func New(size image.Point, now func() time.Time) (*Window, error) {
	if os.Getenv("EGL_PLATFORM") == "" && os.Getenv("WAYLAND_DISPLAY") == "" && os.Getenv("DISPLAY") == "" {
		os.Setenv("EGL_PLATFORM", "surfaceless")
	}
	if now == nil {
		now = time.Now
	}
	win, err := headless.NewWindow(size.X, size.Y)
	if err != nil {
		return nil, fmt.Errorf("ui: headless window: %w", err)
	}
	return &Window{win: win, size: size, now: now}, nil
}

// Frame calls lay with a context covering the window (1 px per dp and
// sp), gives the resulting ops to the router and renders them.
func (w *Window) Frame(lay func(layout.Context)) error {
	w.ops.Reset()
	gtx := layout.Context{
		Ops:         &w.ops,
		Now:         w.now(),
		Metric:      unit.Metric{PxPerDp: 1, PxPerSp: 1},
		Constraints: layout.Exact(w.size),
		Source:      w.rt.Source(),
	}
	lay(gtx)
	w.rt.Frame(gtx.Ops)
	return w.win.Frame(gtx.Ops)
}

// Queue hands input events to the router; the widgets see them during the
// next Frame.
func (w *Window) Queue(evs ...event.Event) { w.rt.Queue(evs...) }

// Semantics returns the semantic tree of the last frame.
func (w *Window) Semantics() []input.SemanticNode { return w.rt.AppendSemantics(nil) }

// Wakeup reports when the last frame asked to be redrawn, if it did.
func (w *Window) Wakeup() (time.Time, bool) { return w.rt.WakeupTime() }

// Size is the window size in pixels.
func (w *Window) Size() image.Point { return w.size }

// Screenshot returns the pixels of the last frame.
func (w *Window) Screenshot() (*image.RGBA, error) {
	img := image.NewRGBA(image.Rectangle{Max: w.size})
	if err := w.win.Screenshot(img); err != nil {
		return nil, fmt.Errorf("ui: screenshot: %w", err)
	}
	return img, nil
}

// Release frees the GPU resources.
func (w *Window) Release() { w.win.Release() }
