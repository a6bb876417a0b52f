package offscreen

import (
	"image"
	"image/color"
	"os"
	"strconv"
	"strings"
	"testing"

	"gioui.org/layout"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
)

// status returns VmRSS, RssAnon and RssFile of this process in MiB
// (Linux), or false.
func status() (rss, anon, file float64, ok bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0, 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = v / 1024
		case "RssAnon:":
			anon = v / 1024
		case "RssFile:":
			file = v / 1024
		}
	}
	return rss, anon, file, true
}

// BenchmarkBareWindowRSS draws frames of two flat shapes in a 1024x768
// offscreen window (the appliance's headless screen size) and reports the
// test process's resident memory before the window and after the frames:
// the floor the GPU stack (Mesa llvmpipe without a GPU) puts under the
// appliance's headless mode, whatever the UI draws.
func BenchmarkBareWindowRSS(b *testing.B) {
	rss0, anon0, file0, ok := status()
	if !ok {
		b.Skip("no /proc/self/status")
	}
	w, err := New(image.Pt(1024, 768), nil)
	if err != nil {
		b.Skip(err)
	}
	defer w.Release()
	for b.Loop() {
		err := w.Frame(func(gtx layout.Context) {
			paint.FillShape(gtx.Ops, color.NRGBA{R: 200, A: 255}, clip.Rect{Max: image.Pt(1024, 768)}.Op())
			paint.FillShape(gtx.Ops, color.NRGBA{B: 200, A: 255}, clip.Ellipse{Min: image.Pt(100, 100), Max: image.Pt(400, 300)}.Op(gtx.Ops))
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Screenshot(); err != nil {
			b.Fatal(err)
		}
	}
	rss, anon, file, _ := status()
	b.ReportMetric(rss0, "rss-before-MiB")
	b.ReportMetric(rss, "rss-MiB")
	b.ReportMetric(anon-anon0, "anon-added-MiB")
	b.ReportMetric(file-file0, "file-added-MiB")
}
