// Package screenshots renders every kiosk screen in every language with the
// fake backend (ui/uifake) and a fixed clock, for documentation and review.
package screenshots

import (
	"cmp"
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

// Shot is one screenshot: a screen in a situation. The first shots are
// every screen in its usual scene (Name is the screen's name); the others
// show a situation of a screen beyond it.
type Shot struct {
	Name   string
	Screen ui.Screen
	// MoreTime: the screen's time-out banner, 7 s before its deadline.
	MoreTime bool
	// Reason: the outcome's reason code (Declined, Failed).
	Reason string
	// Step: the replenishment's step (ui.State.Step).
	Step int
	// Tap: a contactless terminal, the last tap's outcome (nil: no reader).
	Tap *ui.TapState
	// Speech: the audio guidance is on (ui.State.Speech): the screen is
	// dark but for a line saying so, and the QR.
	Speech bool
}

func tap(st ui.TapState) *ui.TapState { return &st }

// Shots returns every screen, then the variants.
func Shots() []Shot {
	var out []Shot
	for _, sc := range ui.Screens {
		out = append(out, Shot{Name: sc.String(), Screen: sc})
	}
	return append(out,
		Shot{Name: "qr-more-time", Screen: ui.ScreenQR, MoreTime: true},
		Shot{Name: "take-cash-more-time", Screen: ui.ScreenTakeCash, MoreTime: true},
		Shot{Name: "amount-more-time", Screen: ui.ScreenAmount, MoreTime: true},
		Shot{Name: "failed-count", Screen: ui.ScreenFailed, Reason: "count"},
		Shot{Name: "failed-retracted", Screen: ui.ScreenFailed, Reason: "retracted"},
		Shot{Name: "replenish-load", Screen: ui.ScreenReplenish, Step: 1},
		Shot{Name: "replenish-report", Screen: ui.ScreenReplenish, Step: 2},
		Shot{Name: "qr-tap", Screen: ui.ScreenQR, Tap: tap(ui.TapNone)},
		Shot{Name: "qr-tap-detected", Screen: ui.ScreenQR, Tap: tap(ui.TapDetected)},
		Shot{Name: "qr-tap-noapp", Screen: ui.ScreenQR, Tap: tap(ui.TapNoApp)},
		Shot{Name: "qr-tap-removed", Screen: ui.ScreenQR, Tap: tap(ui.TapRemoved)},
		Shot{Name: "qr-tap-refused", Screen: ui.ScreenQR, Tap: tap(ui.TapRefused)},
		Shot{Name: "qr-tap-failed", Screen: ui.ScreenQR, Tap: tap(ui.TapFailed)},
		Shot{Name: "welcome-tap-nosession", Screen: ui.ScreenWelcome, Tap: tap(ui.TapNoSession)},
		Shot{Name: "welcome-tap-failed", Screen: ui.ScreenWelcome, Tap: tap(ui.TapFailed)},
		Shot{Name: "speech-amount", Screen: ui.ScreenAmount, Speech: true},
		Shot{Name: "speech-qr", Screen: ui.ScreenQR, Speech: true},
	)
}

// Scene returns a fake backend and the render state that show sc in l.
func Scene(sc ui.Screen, l i18n.Lang) (*uifake.Backend, ui.State, error) {
	return Shot{Name: sc.String(), Screen: sc}.Scene(l)
}

// Scene returns a fake backend and the render state that show the shot in l.
func (sh Shot) Scene(l i18n.Lang) (*uifake.Backend, ui.State, error) {
	now := Epoch
	clock := func() time.Time { return now }
	b := uifake.New(clock)
	st := ui.State{Lang: l, Clock: clock, MoreTime: sh.MoreTime, Speech: sh.Speech}
	switch sc := sh.Screen; sc {
	case ui.ScreenWelcome:
	case ui.ScreenLanguage, ui.ScreenWait, ui.ScreenOperatorLogin:
		st.Screen = sc
	case ui.ScreenSupervisor, ui.ScreenBalance, ui.ScreenJournal:
		st.Screen, st.Operator = sc, "1001"
	case ui.ScreenReplenish:
		st.Screen, st.Operator, st.Step = sc, "1001", sh.Step
		st.Entry = []string{"1848", "2000", ""}[sh.Step]
	case ui.ScreenInDoubt:
		st.Screen, st.Operator, st.Entry = sc, "1001", "800"
	case ui.ScreenAmount:
		st.Screen, st.Entry = sc, "800"
	case ui.ScreenCannotPay:
		st.Screen, st.Asked = sc, 70000
		st.CannotPay = &ui.CannotPayError{Reason: "notes", Nearest: []int64{60000, 80000}}
	case ui.ScreenQR:
		if err := b.RequestWithdrawal(50000); err != nil {
			return nil, st, err
		}
		now = now.Add(17 * time.Second)
		if sh.MoreTime {
			now = Epoch.Add(b.QRTimeout - 7*time.Second)
		}
	case ui.ScreenProcessing:
		b.SetPhase(ui.Processing, "")
	case ui.ScreenTakeCash:
		b.SetPhase(ui.TakeCash, "")
		now = now.Add(4 * time.Second)
		if sh.MoreTime {
			now = Epoch.Add(b.TakeTimeout - 7*time.Second)
		}
	case ui.ScreenComplete:
		b.SetPhase(ui.Complete, "")
	case ui.ScreenDeclined:
		b.SetPhase(ui.Declined, cmp.Or(sh.Reason, "51"))
	case ui.ScreenFailed:
		b.SetPhase(ui.Failed, cmp.Or(sh.Reason, "dispenser"))
	case ui.ScreenOutOfService:
		b.SetPhase(ui.OutOfService, "")
	default:
		return nil, st, fmt.Errorf("screenshots: unknown screen %v", sc)
	}
	if sh.Tap != nil {
		b.SetTap(*sh.Tap)
	}
	return b, st, nil
}

// WriteAll renders every shot in every language into dir as
// <shot>-<lang>.png and returns the file names.
func WriteAll(dir string, size image.Point) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, sh := range Shots() {
		for _, l := range i18n.Langs {
			b, st, err := sh.Scene(l)
			if err != nil {
				return files, err
			}
			img, err := ui.Render(b, st, size)
			if err != nil {
				return files, fmt.Errorf("screenshots: %s-%s: %w", sh.Name, l, err)
			}
			name := filepath.Join(dir, fmt.Sprintf("%s-%s.png", sh.Name, l))
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
