package ui

import (
	"errors"
	"fmt"

	"gioui.org/app"
	"gioui.org/op"
	"gioui.org/unit"

	"github.com/cardless-atm/cardless/ui/i18n"
)

// windowWidth x windowHeight is the window's size outside kiosk mode, and
// in kiosk mode the size it has until the compositor gives it the screen's:
// a common ATM display (Gio's default, 800x600, is the smallest one the
// screens support).
const windowWidth, windowHeight unit.Dp = 1280, 800

// Run drives w until it is closed: it redraws when the Backend signals
// Changed, when the customer gives input, and once per second while a
// countdown is visible; nothing is drawn otherwise. Outside kiosk mode the
// window opens at 1280x800 dp and stays resizable. In kiosk mode the window
// is full screen without decorations and the pointer is hidden; keys other
// than the ones the screens use are consumed and do nothing.
//
// Before the window opens, Run finds out how it will be drawn (see
// chooseRenderer, Linux) and logs it in one line, "renderer": OpenGL ES
// through EGL on a GPU (kind=gpu) or in software (kind=software, Mesa's
// llvmpipe, with why), or, at level ERROR, why EGL cannot be used. A window
// that Gio cannot draw ends with an error wrapping ErrNoRenderer that names
// EGL's failure, not only Gio's last (Vulkan) one.
//
// Run returns the window's DestroyEvent error (nil on a normal close); a
// service manager is expected to restart the appliance (see
// configs/cardless-atm.service).
func Run(w *app.Window, b Backend, opts Options) error {
	a := New(b, opts)
	defer a.StopSpeech() // the window is gone: so is its voice
	rend, rendErr := chooseRenderer()
	if rendErr != nil {
		// Gio tries OpenGL ES first and then Vulkan; the window may
		// still be drawn. If it is not, the error says both.
		a.log.Error("renderer", "api", "OpenGL ES (EGL)", "err", rendErr, "next", "Gio tries Vulkan")
	} else if rend.API != "" {
		a.log.Info("renderer", rend.logAttrs()...)
	}
	w.Option(app.Title(i18n.T(a.lang, "app.title")))
	fullscreenPending := false
	switch {
	case a.opts.Kiosk && fullscreenAfterFirstEvent:
		// Gio (v0.10) on Wayland gives a window that starts full screen
		// no size of its own, and a compositor's first configure event
		// may leave the size to the client (0x0, as cage's does). Gio
		// then panics on its first frame ("internal error: zero-sized
		// Draw"), or, when the compositor draws the decorations (cage
		// -d), takes its decoration height off the 0 and cannot create
		// the EGL window of negative height; it then tries Vulkan and
		// reports only that ("vkCreateInstance: error -9"). So the kiosk
		// window starts at the windowed size and is made full screen on
		// its first event, before the compositor's first configure.
		w.Option(app.Size(windowWidth, windowHeight), app.Decorated(false))
		fullscreenPending = true
	case a.opts.Kiosk:
		w.Option(app.Fullscreen.Option(), app.Decorated(false))
	default:
		// A resizable window the size of a common ATM display.
		w.Option(app.Size(windowWidth, windowHeight))
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-b.Changed():
				w.Invalidate()
			case <-a.Wake():
				w.Invalidate()
			case <-done:
				return
			}
		}
	}()
	var ops op.Ops
	for {
		e := w.Event()
		if _, closed := e.(app.DestroyEvent); fullscreenPending && !closed {
			w.Option(app.Fullscreen.Option())
			fullscreenPending = false
		}
		switch e := e.(type) {
		case app.DestroyEvent:
			err := windowError(e.Err, rend, rendErr)
			a.log.Info("ui window closed", "err", err)
			return err
		case app.FrameEvent:
			gtx := app.NewContext(&ops, e)
			a.Layout(gtx)
			e.Frame(gtx.Ops)
		}
	}
}

// ErrNoRenderer: the window could not be drawn, neither through OpenGL ES
// (EGL) nor through Vulkan.
var ErrNoRenderer = errors.New("ui: no usable renderer")

// windowError explains a window's end. Gio creates its drawing context on
// the first frame, trying OpenGL ES through EGL and then Vulkan, and
// reports only the last error: a machine without a Vulkan driver says
// "vkCreateInstance: error -9" whatever went wrong with EGL. The error
// returned names what chooseRenderer found out about EGL.
func windowError(err error, rend rendererInfo, rendErr error) error {
	if err == nil || !isVulkanError(err) {
		return err
	}
	if rendErr != nil {
		return fmt.Errorf("%w: OpenGL ES (EGL): %v; then Vulkan: %w", ErrNoRenderer, rendErr, err)
	}
	if rend.API != "" {
		return fmt.Errorf("%w: OpenGL ES (EGL) works here (%s) but not for this window; then Vulkan: %w", ErrNoRenderer, rend.Renderer, err)
	}
	return fmt.Errorf("%w: OpenGL ES (EGL) failed, then Vulkan: %w", ErrNoRenderer, err)
}
