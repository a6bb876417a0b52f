package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"gioui.org/app"

	"github.com/cardless-atm/cardless/ui"
)

// NewLogger returns the appliance's JSON logger at the configured level.
func NewLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// Main runs the appliance as cmd/atm does and returns the exit status. In
// window and kiosk modes the Gio window owns the main goroutine.
func Main(ctx context.Context, cfg *Config) int {
	log := NewLogger(cfg.LogLevel)
	// Every part logs JSON to the one stream, also those that use slog's
	// default logger (the UI's screen lines), so atm.log has one format.
	slog.SetDefault(log)
	if os.Getenv("EGL_PLATFORM") == "" && cfg.Screen.Mode == "headless" {
		os.Setenv("EGL_PLATFORM", "surfaceless")
	}
	a, err := New(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "atm:", err)
		return 1
	}
	defer a.Close()
	log.Info("appliance starting", "terminal", cfg.TerminalID, "mode", cfg.Screen.Mode)
	if cfg.Screen.Mode == "headless" {
		if err := a.Run(ctx); err != nil {
			log.Error("appliance stopped", "err", err)
			return 1
		}
		log.Info("appliance stopped")
		return 0
	}
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	winErr := make(chan error, 1) // the window's end, sent before cancel
	go func() { errc <- a.Run(ctx) }()
	go func() {
		w := new(app.Window)
		opts := ui.Options{Kiosk: cfg.Screen.Mode == "kiosk", Logger: log.With("part", "ui"), Clock: a.Clock.Now}
		if err := audioOptions(cfg.Audio, &opts); err != nil {
			log.Error("no audio guidance", "err", err)
		}
		err := ui.Run(w, a.Backend, opts)
		if err != nil {
			log.Error("window", "err", err)
		}
		winErr <- err
		cancel()
	}()
	go func() {
		<-ctx.Done()
		err := <-errc
		code := 0
		if err != nil {
			log.Error("appliance stopped", "err", err)
			code = 1
		} else {
			log.Info("appliance stopped")
		}
		select {
		case werr := <-winErr:
			if werr != nil {
				code = 1 // a window that could not open is a failed start: the unit counts it
			}
		default:
		}
		a.Close()
		os.Exit(code)
	}()
	app.Main()
	return 0
}
