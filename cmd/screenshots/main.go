// Command screenshots renders every kiosk screen in every language to
// <dir>/<screen>-<lang>.png using the fake backend and headless rendering.
//
//	go run ./cmd/screenshots -out docs/screens
//
// Without a display (neither DISPLAY nor WAYLAND_DISPLAY set) and without
// EGL_PLATFORM, rendering uses EGL_PLATFORM=surfaceless.
package main

import (
	"flag"
	"fmt"
	"image"
	"log/slog"
	"os"

	"github.com/cardless-atm/cardless/ui/screenshots"
)

func main() {
	out := flag.String("out", "docs/screens", "output directory")
	w := flag.Int("width", 1280, "width in pixels")
	h := flag.Int("height", 800, "height in pixels")
	flag.Parse()
	files, err := screenshots.WriteAll(*out, image.Pt(*w, *h))
	if err != nil {
		slog.Error("screenshots", "err", err)
		os.Exit(1)
	}
	for _, f := range files {
		fmt.Println(f)
	}
}
