package appliance

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/ui"
)

// ScreenSize is the headless screen's size: a common 4:3 ATM display.
var ScreenSize = image.Pt(1024, 768)

// screenWriter renders the customer's screen headlessly, the way the kiosk
// would draw it, and writes it to a PNG file whenever it changes (and once
// a second while a countdown runs). The phone simulator reads that file
// like a camera.
type screenWriter struct {
	b    *Backend
	clk  clock.Clock
	path string
	log  *slog.Logger
	r    *ui.Renderer // one offscreen window for every frame, owned by run
	// camera: a copy of a window's screens (window or kiosk mode), whose
	// screen changes the window already logs.
	camera bool

	mu   sync.Mutex
	last []byte
}

func (w *screenWriter) run(ctx context.Context) error {
	log := w.log
	if w.camera {
		// The window's App logs the screens; this copy only its problems.
		log = slog.New(minLevel{slog.LevelWarn, w.log.Handler()})
	}
	r, err := ui.NewRendererWith(w.b, ScreenSize, ui.Options{Clock: w.clk.Now, Logger: log})
	if err != nil {
		return fmt.Errorf("screen: %w", err)
	}
	defer r.Release()
	w.r = r
	ch := w.b.Subscribe()
	tick := w.clk.NewTicker(time.Second)
	defer tick.Stop()
	w.write()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
			w.write()
		case <-tick.C():
			if !w.b.Snapshot().Deadline.IsZero() {
				w.write()
			}
		}
	}
}

func (w *screenWriter) write() {
	img, err := w.r.Render(ui.State{})
	if err != nil {
		w.log.Error("screen render", "err", err)
		return
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return
	}
	w.mu.Lock()
	w.last = buf.Bytes()
	w.mu.Unlock()
	if w.path == "" {
		return
	}
	tmp := filepath.Join(filepath.Dir(w.path), "."+filepath.Base(w.path)+".tmp")
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		w.log.Error("screen write", "err", err)
		return
	}
	if err := os.Rename(tmp, w.path); err != nil {
		w.log.Error("screen write", "err", err)
	}
}

// PNG returns the last rendered screen.
func (w *screenWriter) PNG() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// minLevel passes on the records of h at min or above.
type minLevel struct {
	min slog.Level
	h   slog.Handler
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}
func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }
func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{m.min, m.h.WithAttrs(as)}
}
func (m minLevel) WithGroup(g string) slog.Handler { return minLevel{m.min, m.h.WithGroup(g)} }
