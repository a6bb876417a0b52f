package ui

import (
	"gioui.org/app"
	"gioui.org/op"
	"gioui.org/unit"

	"github.com/cardless-atm/cardless/ui/i18n"
)

// Run drives w until it is closed: it redraws when the Backend signals
// Changed, when the customer gives input, and once per second while a
// countdown is visible; nothing is drawn otherwise. Outside kiosk mode the
// window opens at 1280x800 dp and stays resizable. In kiosk mode the window
// is full screen without decorations and the pointer is hidden; keys other
// than the ones the screens use are consumed and do nothing. Run returns the
// window's DestroyEvent error (nil on a normal close); a service manager is
// expected to restart the appliance (see configs/cardless-atm.service).
func Run(w *app.Window, b Backend, opts Options) error {
	a := New(b, opts)
	w.Option(app.Title(i18n.T(a.lang, "app.title")))
	if a.opts.Kiosk {
		w.Option(app.Fullscreen.Option(), app.Decorated(false))
	} else {
		// A resizable window the size of a common ATM display (Gio's
		// default, 800x600, is the smallest one the screens support).
		w.Option(app.Size(unit.Dp(1280), unit.Dp(800)))
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
		switch e := w.Event().(type) {
		case app.DestroyEvent:
			a.log.Info("ui window closed", "err", e.Err)
			return e.Err
		case app.FrameEvent:
			gtx := app.NewContext(&ops, e)
			a.Layout(gtx)
			e.Frame(gtx.Ops)
		}
	}
}
