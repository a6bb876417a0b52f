// Package screenshots renders every kiosk screen in every language with the
// fake backend (ui/uifake) and a fixed clock, for documentation and review.
package screenshots

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"time"

	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/uifake"
)

// Epoch is the fixed time the screenshots are taken at.
var Epoch = time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)

// Scene returns a fake backend and the render state that show sc in l.
func Scene(sc ui.Screen, l i18n.Lang) (*uifake.Backend, ui.State, error) {
	now := Epoch
	clock := func() time.Time { return now }
	b := uifake.New(clock)
	st := ui.State{Lang: l, Clock: clock}
	switch sc {
	case ui.ScreenWelcome:
	case ui.ScreenLanguage, ui.ScreenSupervisor, ui.ScreenWait, ui.ScreenOperatorLogin:
		st.Screen = sc
	case ui.ScreenAmount:
		st.Screen, st.Entry = sc, "800"
	case ui.ScreenCannotPay:
		st.Screen = sc
		st.CannotPay = &ui.CannotPayError{Reason: "notes", Nearest: []int64{60000, 80000}}
	case ui.ScreenQR:
		if err := b.RequestWithdrawal(50000); err != nil {
			return nil, st, err
		}
		now = now.Add(17 * time.Second)
	case ui.ScreenMoreTime:
		if err := b.RequestWithdrawal(50000); err != nil {
			return nil, st, err
		}
		now = now.Add(b.QRTimeout - 7*time.Second)
	case ui.ScreenProcessing:
		b.SetPhase(ui.Processing, "")
	case ui.ScreenTakeCash:
		b.SetPhase(ui.TakeCash, "")
		now = now.Add(4 * time.Second)
	case ui.ScreenComplete:
		b.SetPhase(ui.Complete, "")
	case ui.ScreenDeclined:
		b.SetPhase(ui.Declined, "51")
	case ui.ScreenFailed:
		b.SetPhase(ui.Failed, "dispenser")
	case ui.ScreenOutOfService:
		b.SetPhase(ui.OutOfService, "")
	default:
		return nil, st, fmt.Errorf("screenshots: unknown screen %v", sc)
	}
	return b, st, nil
}

// WriteAll renders every screen in every language into dir as
// <screen>-<lang>.png and returns the file names.
func WriteAll(dir string, size image.Point) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, sc := range ui.Screens {
		for _, l := range i18n.Langs {
			b, st, err := Scene(sc, l)
			if err != nil {
				return files, err
			}
			img, err := ui.Render(b, st, size)
			if err != nil {
				return files, fmt.Errorf("screenshots: %s-%s: %w", sc, l, err)
			}
			name := filepath.Join(dir, fmt.Sprintf("%s-%s.png", sc, l))
			if err := writePNG(name, img); err != nil {
				return files, err
			}
			files = append(files, name)
		}
	}
	return files, nil
}

func writePNG(name string, img image.Image) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("screenshots: %s: %w", name, err)
	}
	return f.Close()
}
