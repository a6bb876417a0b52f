package uitest_test

import (
	"fmt"
	"image"
	"slices"
	"time"

	"gioui.org/io/key"

	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/screenshots"
	"github.com/cardless-atm/cardless/ui/uifake"
	"github.com/cardless-atm/cardless/ui/uitest"
)

// A customer taps "Cardless withdrawal", picks English with F8, types 500
// on the PIN pad and confirms with Enter; the QR screen shows the amount.
func Example() {
	clock := func() time.Time { return screenshots.Epoch }
	b := uifake.New(clock)
	d, err := uitest.New(b, ui.Options{Lang: i18n.Chinese, Clock: clock}, image.Pt(1024, 768))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	// step frames the App and lets the calls to the core that the
	// frame's input started finish (they never run on the window's
	// goroutine).
	step := func() {
		if err := d.Frame(); err != nil {
			fmt.Println(err)
		}
		if err := d.Settle(5 * time.Second); err != nil {
			fmt.Println(err)
		}
		fmt.Println(d.Screen())
	}
	step()
	if err := d.Click("start"); err != nil {
		fmt.Println(err)
	}
	step()
	d.Key(key.NameF8)
	step()
	d.Type("500")
	d.Key(key.NameReturn)
	step()
	fmt.Println(slices.Contains(d.Labels(), "CNY 500.00"), b.Requested())
	// Output:
	// welcome
	// language
	// amount
	// qr
	// true [50000]
}
