package uitest_test

import (
	"errors"
	"image"
	"slices"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/uifake"
	"github.com/cardless-atm/cardless/ui/uitest"
)

func TestClickByLabelAndMissing(t *testing.T) {
	b := uifake.New(time.Now)
	d, err := uitest.New(b, ui.Options{Lang: i18n.English}, image.Pt(1024, 768))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Screen() != -1 {
		t.Fatalf("screen before the first frame = %s", d.Screen())
	}
	if err := d.Frame(); err != nil {
		t.Fatal(err)
	}
	if err := d.Click("no such button"); err == nil {
		t.Fatal("Click on a missing label succeeded")
	}
	// The button's label, not its id.
	if err := d.Click(i18n.T(i18n.English, "welcome.start")); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitScreen(5*time.Second, ui.ScreenLanguage); err != nil {
		t.Fatal(err)
	}
	if err := d.Click("中文"); err != nil {
		t.Fatal(err)
	}
	if err := d.Frame(); err != nil {
		t.Fatal(err)
	}
	if d.Screen() != ui.ScreenAmount || d.App().Lang() != i18n.Chinese {
		t.Fatalf("screen %s lang %s", d.Screen(), d.App().Lang())
	}
	var buttons int
	for _, n := range d.Nodes() {
		if n.Button != "" {
			buttons++
			if n.Bounds.Empty() || !n.Bounds.In(image.Rectangle{Max: d.Size()}) {
				t.Errorf("button %q bounds %v", n.Button, n.Bounds)
			}
		}
	}
	if buttons < 12 {
		t.Fatalf("%d buttons on the amount screen", buttons)
	}
	img, err := d.Image()
	if err != nil || img.Bounds().Size() != d.Size() {
		t.Fatalf("image %v, %v", img.Bounds(), err)
	}
}

// WaitFor wakes on the Backend's Changed signal and gives up after its
// bound with ErrTimeout.
func TestWaitFor(t *testing.T) {
	b := uifake.New(time.Now)
	d, err := uitest.New(b, ui.Options{Lang: i18n.English}, image.Pt(800, 600))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	go b.SetPhase(ui.OutOfService, "")
	if err := d.WaitScreen(10*time.Second, ui.ScreenOutOfService); err != nil {
		t.Fatal(err)
	}
	err = d.WaitScreen(100*time.Millisecond, ui.ScreenQR)
	if !errors.Is(err, uitest.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if !slices.Contains(d.Labels(), i18n.T(i18n.English, "oos.title")) {
		t.Fatalf("labels %q", d.Labels())
	}
}
