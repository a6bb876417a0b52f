// Command screenshots renders every kiosk screen in every language to
// <dir>/<screen>-<lang>.png using the fake backend and headless rendering.
//
//	EGL_PLATFORM=surfaceless go run ./cmd/screenshots -out docs/screens
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
	if os.Getenv("EGL_PLATFORM") == "" {
		os.Setenv("EGL_PLATFORM", "surfaceless")
	}
	files, err := screenshots.WriteAll(*out, image.Pt(*w, *h))
	if err != nil {
		slog.Error("screenshots", "err", err)
		os.Exit(1)
	}
	for _, f := range files {
		fmt.Println(f)
	}
}
