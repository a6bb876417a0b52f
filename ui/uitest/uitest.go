package uitest

import (
	"errors"
	"fmt"
	"image"
	"strings"
	"time"

	"gioui.org/f32"
	"gioui.org/io/input"
	"gioui.org/io/key"
	"gioui.org/io/pointer"
	"gioui.org/layout"

	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/internal/offscreen"
)

// Driver runs a ui.App in an offscreen window with an input router, as
// app.Window would. It is not safe for concurrent use: one goroutine (the
// test) calls its methods.
type Driver struct {
	app *ui.App
	b   ui.Backend
	win *offscreen.Window
}

// Node is a text laid out on the last frame, as the screens publish it in
// Gio's semantic tree.
type Node struct {
	Text   string
	Button string // the choice id when the text is a button's label ("start", "key.5", "preset1", ...)
	Bounds image.Rectangle
	// Container is the area of the nearest clickable around the text (for
	// a button's label, the button; for the texts of the Welcome screen,
	// which is tappable, the page), empty when there is none.
	Container image.Rectangle
}

// ErrTimeout is returned by WaitFor when its condition did not hold in time.
var ErrTimeout = errors.New("uitest: timed out")

// New returns a driver for a new App on b with opts, in a window of the
// given size. Frames are stamped with opts.Clock (time.Now when nil).
// Without a display it sets EGL_PLATFORM=surfaceless. Nothing is drawn
// until the first Frame.
func New(b ui.Backend, opts ui.Options, size image.Point) (*Driver, error) {
	win, err := offscreen.New(size, opts.Clock)
	if err != nil {
		return nil, err
	}
	return &Driver{app: ui.New(b, opts), b: b, win: win}, nil
}

// App returns the driven App.
func (d *Driver) App() *ui.App { return d.app }

// Frame handles the queued input, lays the App out and renders it.
func (d *Driver) Frame() error {
	return d.win.Frame(func(gtx layout.Context) { d.app.Layout(gtx) })
}

// Screen is the screen shown by the last frame (-1 before the first).
func (d *Driver) Screen() ui.Screen { return d.app.Screen() }

// Key queues a press and a release of each named key (key.NameReturn,
// key.NameF4, "5", ...); the App sees them on the next Frame.
func (d *Driver) Key(names ...key.Name) {
	for _, n := range names {
		d.win.Queue(key.Event{Name: n, State: key.Press}, key.Event{Name: n, State: key.Release})
	}
}

// Press queues a press of the named key without its release: the key is
// held down until Release (see ui.Options.SpeechHold).
func (d *Driver) Press(n key.Name) { d.win.Queue(key.Event{Name: n, State: key.Press}) }

// Release queues the release of a key Press held down.
func (d *Driver) Release(n key.Name) { d.win.Queue(key.Event{Name: n, State: key.Release}) }

// Type queues the keys of the characters of s, as typed on the PIN pad.
func (d *Driver) Type(s string) {
	for _, r := range s {
		d.Key(key.Name(strings.ToUpper(string(r))))
	}
}

// Click queues a touch (press and release) at the centre of the button
// whose choice id or label is name on the last frame, or else of a text
// whose label is name. The App sees it on the next Frame.
func (d *Driver) Click(name string) error {
	nodes := d.Nodes()
	find := func(match func(Node) bool) (Node, bool) {
		for _, n := range nodes {
			if match(n) {
				return n, true
			}
		}
		return Node{}, false
	}
	n, ok := find(func(n Node) bool { return n.Button != "" && n.Button == name })
	if !ok {
		n, ok = find(func(n Node) bool { return n.Button != "" && n.Text == name })
	}
	if !ok {
		n, ok = find(func(n Node) bool { return n.Text == name })
	}
	if !ok {
		return fmt.Errorf("uitest: nothing labelled %q on screen %s (labels %q)", name, d.Screen(), d.Labels())
	}
	c := n.Bounds.Min.Add(n.Bounds.Max).Div(2)
	p := f32.Pt(float32(c.X), float32(c.Y))
	d.win.Queue(
		pointer.Event{Kind: pointer.Press, Source: pointer.Touch, Position: p, Buttons: pointer.ButtonPrimary},
		pointer.Event{Kind: pointer.Release, Source: pointer.Touch, Position: p, Buttons: pointer.ButtonPrimary},
	)
	return nil
}

// Nodes returns every text laid out on the last frame, in layout order.
func (d *Driver) Nodes() []Node {
	var out []Node
	sem := d.win.Semantics()
	byID := make(map[input.SemanticID]input.SemanticNode, len(sem))
	for _, n := range sem {
		byID[n.ID] = n
	}
	container := func(n input.SemanticNode) image.Rectangle {
		for i := 0; i < len(sem); i++ { // bounded walk up the tree
			p, ok := byID[n.ParentID]
			if !ok || n.ParentID == n.ID {
				return image.Rectangle{}
			}
			if p.Desc.Gestures&input.ClickGesture != 0 {
				return p.Desc.Bounds
			}
			n = p
		}
		return image.Rectangle{}
	}
	for _, n := range sem {
		desc := n.Desc
		switch {
		case desc.Description == offscreen.DescText:
			out = append(out, Node{Text: desc.Label, Bounds: desc.Bounds, Container: container(n)})
		case strings.HasPrefix(desc.Description, offscreen.DescButton):
			out = append(out, Node{Text: desc.Label, Button: strings.TrimPrefix(desc.Description, offscreen.DescButton), Bounds: desc.Bounds, Container: container(n)})
		}
	}
	return out
}

// Labels returns the texts laid out on the last frame, in layout order.
func (d *Driver) Labels() []string {
	var out []string
	for _, n := range d.Nodes() {
		out = append(out, n.Text)
	}
	return out
}

// Image returns the pixels of the last frame.
func (d *Driver) Image() (*image.RGBA, error) { return d.win.Screenshot() }

// Wakeup reports when the last frame asked to be redrawn (a countdown's
// next second, a time-out), if it did.
func (d *Driver) Wakeup() (time.Time, bool) { return d.win.Wakeup() }

// Size is the window size in pixels.
func (d *Driver) Size() image.Point { return d.win.Size() }

// WaitFor frames the App until ok returns true, for at most timeout of
// real time. Between frames it waits, as a window would, for the
// Backend's Changed signal, the App's Wake (a backend call finished) or
// the frame's wakeup time, and never longer
// than poll (50 ms). On time-out the error names the screen and its texts.
func (d *Driver) WaitFor(timeout time.Duration, ok func(*Driver) bool) error {
	const poll = 50 * time.Millisecond
	end := time.Now().Add(timeout)
	for {
		if err := d.Frame(); err != nil {
			return err
		}
		if ok(d) {
			return nil
		}
		left := time.Until(end)
		if left <= 0 {
			return fmt.Errorf("%w after %v on screen %s (labels %q)", ErrTimeout, timeout, d.Screen(), d.Labels())
		}
		wait := min(poll, left)
		if at, ok := d.Wakeup(); ok {
			wait = max(0, min(wait, time.Until(at)))
		}
		t := time.NewTimer(wait)
		select {
		case <-d.b.Changed():
		case <-d.app.Wake():
		case <-t.C:
		}
		t.Stop()
	}
}

// Settle frames the App until no backend call it started is in flight
// (see ui.App.Pending and WaitFor), and not at all when none is: after a
// press that calls the core, the screen the call leads to.
func (d *Driver) Settle(timeout time.Duration) error {
	if !d.app.Pending() {
		return nil // the last frame applied every answer
	}
	return d.WaitFor(timeout, func(d *Driver) bool { return !d.app.Pending() })
}

// WaitScreen frames the App until it shows one of screens (see WaitFor).
func (d *Driver) WaitScreen(timeout time.Duration, screens ...ui.Screen) error {
	return d.WaitFor(timeout, func(d *Driver) bool {
		for _, s := range screens {
			if d.Screen() == s {
				return true
			}
		}
		return false
	})
}

// Close releases the window's GPU resources.
func (d *Driver) Close() { d.win.Release() }
