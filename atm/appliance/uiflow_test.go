package appliance_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gioui.org/io/key"

	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/uitest"
)

// uiWait bounds every wait for a screen (real time; the system normally
// answers in well under a second).
const uiWait = 30 * time.Second

// kioskScreen configures the appliance as in window or kiosk mode: the
// customer's screen is the UI window (here the test's driver), and the
// appliance runs no headless screen writer of its own (two offscreen EGL
// windows in one process share the EGL display, and Gio terminates it when
// either is released).
func kioskScreen(c *appliance.Config) { c.Screen = appliance.Screen{Mode: "window"} }

// uiDriver starts the kiosk UI on the real appliance's Backend, headlessly,
// with its log lines in the system's log.
func uiDriver(t *testing.T, s *system) *uitest.Driver {
	t.Helper()
	if os.Getenv("EGL_PLATFORM") == "" {
		t.Setenv("EGL_PLATFORM", "surfaceless")
	}
	log := slog.New(slog.NewTextHandler(s.logs, nil)).With("part", "ui")
	d, err := uitest.New(s.app.Backend, ui.Options{Lang: i18n.English, Logger: log}, appliance.ScreenSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// uiStep frames the UI until it shows one of screens.
func uiStep(t *testing.T, d *uitest.Driver, screens ...ui.Screen) {
	t.Helper()
	if err := d.WaitScreen(uiWait, screens...); err != nil {
		t.Fatalf("waiting for %v: %v", screens, err)
	}
}

func uiClick(t *testing.T, d *uitest.Driver, name string) {
	t.Helper()
	if err := d.Click(name); err != nil {
		t.Fatal(err)
	}
}

func wantLabels(t *testing.T, d *uitest.Driver, want ...string) {
	t.Helper()
	got := d.Labels()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("screen %s does not show %q; shows %q", d.Screen(), w, got)
		}
	}
}

// screenQR decodes the QR from the rendered frame, through the phone
// simulator's camera path (PNG pixels).
func screenQR(t *testing.T, d *uitest.Driver) string {
	t.Helper()
	// A phone camera takes another picture when one does not decode; so
	// does the test, up to three frames, keeping each failed one for
	// inspection (it once failed under a loaded make test).
	var err error
	for try := range 3 {
		img, ierr := d.Image()
		if ierr != nil {
			t.Fatal(ierr)
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		raw := buf.Bytes()
		var qr string
		if qr, err = phonesim.DecodePNG(bytes.NewReader(raw)); err == nil {
			return qr
		}
		bad := "(not kept)"
		if f, ferr := os.CreateTemp("", fmt.Sprintf("cardless-undecoded-qr-%d-*.png", try)); ferr == nil {
			_, _ = f.Write(raw)
			f.Close()
			bad = f.Name()
		}
		t.Logf("QR on screen %s did not decode (%v); frame kept in %s; framing again", d.Screen(), err, bad)
		if ferr := d.Frame(); ferr != nil {
			t.Fatal(ferr)
		}
	}
	t.Fatalf("QR on screen %s: %v", d.Screen(), err)
	return ""
}

// phoneResult is what a phone sent in the background got.
type phoneResult struct {
	out phonesim.Outcome
	err error
}

// withdrawInBackground sends the withdrawal of qr from Zhang's phone while
// the test keeps framing the kiosk; the result arrives on the channel.
func (s *system) withdrawInBackground(qr string) <-chan phoneResult {
	phone := make(chan phoneResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), uiWait)
		defer cancel()
		out, err := phonesim.Withdraw(ctx, s.phone, qr, zhang, "123456")
		phone <- phoneResult{out, err}
	}()
	return phone
}

// TestUIFlowWithdrawal drives whole withdrawals through the kiosk UI with
// key presses and touches, against the real appliance and the host, proxy
// and phone simulators: Welcome -> language -> amount -> QR (read from the
// pixels by the phone) -> take cash -> transaction complete -> Welcome.
func TestUIFlowWithdrawal(t *testing.T) {
	s := startSystem(t, func(c *appliance.Config) {
		kioskScreen(c)
		// A take time-out longer than the UI's "more time?" warning (10 s),
		// as in production, and a customer who takes the notes after half a
		// second, so the take-cash screen is usually seen.
		c.TakeTimeout = appliance.Duration(30 * time.Second)
		c.Dispenser.Sim.TakeDelay = appliance.Duration(500 * time.Millisecond)
	})
	tid := s.app.Config.TerminalID
	for _, tt := range []struct {
		name   string
		lang   i18n.Lang
		amount int64
		choose func(*testing.T, *uitest.Driver) // Welcome through the amount
	}{
		{"English keypad", i18n.English, 50000, func(t *testing.T, d *uitest.Driver) {
			uiClick(t, d, "start") // touch "Cardless withdrawal"
			uiStep(t, d, ui.ScreenLanguage)
			uiClick(t, d, "English")
			uiStep(t, d, ui.ScreenAmount)
			d.Type("5")
			uiStep(t, d, ui.ScreenAmount)
			uiClick(t, d, "key.0") // the on-screen keypad
			uiStep(t, d, ui.ScreenAmount)
			d.Type("0")
			uiStep(t, d, ui.ScreenAmount)
			wantLabels(t, d, "CNY 500.00")
			d.Key(key.NameReturn)
		}},
		{"Chinese preset", i18n.Chinese, 20000, func(t *testing.T, d *uitest.Driver) {
			d.Key(key.NameF8) // "Cardless withdrawal"
			uiStep(t, d, ui.ScreenLanguage)
			d.Key(key.NameF4) // 中文
			uiStep(t, d, ui.ScreenAmount)
			wantLabels(t, d, i18n.T(i18n.Chinese, "amount.title"))
			d.Key(key.NameF2) // second preset: 200.00元
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			T := func(k i18n.Key) string { return i18n.T(tt.lang, k) }
			money := i18n.Amount(tt.lang, tt.amount, "CNY", 2)
			before := s.balance(zhang)
			d := uiDriver(t, s)
			uiStep(t, d, ui.ScreenWelcome)
			tt.choose(t, d)

			uiStep(t, d, ui.ScreenQR)
			if d.App().Lang() != tt.lang {
				t.Fatalf("language %s, want %s", d.App().Lang(), tt.lang)
			}
			wantLabels(t, d, T("qr.title"), money, tid)
			snap := s.app.Backend.Snapshot()
			if snap.Amount != tt.amount {
				t.Fatalf("session amount %d, want %d", snap.Amount, tt.amount)
			}
			qr := screenQR(t, d)
			if qr != snap.QRPayload {
				t.Fatalf("screen QR %q, session QR %q", qr, snap.QRPayload)
			}

			// The phone sends the QR it read while the kiosk keeps drawing.
			phone := s.withdrawInBackground(qr)
			// Frame until the notes are presented or, if the customer was
			// quicker than the frames, the transaction is complete.
			var seen []ui.Screen
			track := func(d *uitest.Driver) {
				if len(seen) == 0 || seen[len(seen)-1] != d.Screen() {
					seen = append(seen, d.Screen())
				}
			}
			err := d.WaitFor(uiWait, func(d *uitest.Driver) bool {
				track(d)
				return d.Screen() == ui.ScreenTakeCash || d.Screen() == ui.ScreenComplete
			})
			if err != nil {
				t.Fatalf("screens %v: %v", seen, err)
			}
			if d.Screen() == ui.ScreenTakeCash {
				wantLabels(t, d, T("take.title"), money)
			}
			err = d.WaitFor(uiWait, func(d *uitest.Driver) bool {
				track(d)
				return d.Screen() == ui.ScreenComplete
			})
			if err != nil {
				t.Fatalf("screens %v: %v", seen, err)
			}
			t.Logf("screens from the QR on: %v", seen)
			for _, sc := range seen {
				if !slices.Contains([]ui.Screen{ui.ScreenQR, ui.ScreenProcessing, ui.ScreenTakeCash, ui.ScreenComplete}, sc) {
					t.Errorf("unexpected screen %s during the withdrawal (%v)", sc, seen)
				}
			}
			sess := s.app.Core.View().Session
			wantLabels(t, d, T("complete.title"), money, i18n.T(tt.lang, "account.charged", money), i18n.T(tt.lang, "ref.rrn", sess.RRN))
			r := <-phone
			if r.err != nil {
				t.Fatalf("phone: %v", r.err)
			}
			if r.out.ResponseCode != "00" || !r.out.PaidInFull() || r.out.Dispensed != tt.amount {
				t.Fatalf("phone outcome %+v", r.out)
			}
			s.settled()
			if got := s.balance(zhang); got != before-tt.amount {
				t.Fatalf("balance %d, want %d", got, before-tt.amount)
			}

			d.Key(key.NameReturn) // "Finish"
			uiStep(t, d, ui.ScreenWelcome)
			if v := s.app.Core.View(); v.Session != nil {
				t.Fatalf("session still shown after Finish: %+v", v.Session)
			}
			if d.App().Lang() != i18n.English {
				t.Fatalf("Welcome in %s, want the default language", d.App().Lang())
			}
		})
	}
}

// TestUIFlowCannotPay: with only 100-yuan notes loaded, 150.00 passes the
// screen's own checks (a multiple of 50.00) but the core cannot make it; the
// kiosk explains why and offers the nearest amounts, and touching one
// creates the session and shows its QR. An amount that is not a multiple is
// refused by the amount screen before it reaches the core.
func TestUIFlowCannotPay(t *testing.T) {
	s := startSystem(t, func(c *appliance.Config) {
		kioskScreen(c)
		c.Dispenser.Sim.Units = []dispenser.CashUnit{{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 100}}
	})
	en := func(k i18n.Key, args ...any) string { return i18n.T(i18n.English, k, args...) }
	money := func(v int64) string { return i18n.Amount(i18n.English, v, "CNY", 2) }
	before := s.balance(zhang)
	d := uiDriver(t, s)
	uiStep(t, d, ui.ScreenWelcome)
	d.Key(key.NameReturn)
	uiStep(t, d, ui.ScreenLanguage)
	d.Key(key.NameF8) // English
	uiStep(t, d, ui.ScreenAmount)

	d.Type("155")
	d.Key(key.NameReturn)
	uiStep(t, d, ui.ScreenAmount)
	wantLabels(t, d, en("amount.err.multiple", money(s.app.Config.Limits.Multiple)))
	if v := s.app.Core.View(); v.Session != nil {
		t.Fatalf("an invalid amount created a session: %+v", v.Session)
	}

	d.Key(key.NameDeleteBackward)
	d.Type("150")
	d.Key(key.NameReturn)
	uiStep(t, d, ui.ScreenCannotPay)
	wantLabels(t, d, en("cannot.title"), en("cannot.asked", money(15000)), i18n.CannotPayReason(i18n.English, "notes"), en("cannot.choose"))
	var nearest []string
	for _, n := range d.Nodes() {
		if strings.HasPrefix(n.Button, "nearest") {
			nearest = append(nearest, n.Text)
		}
	}
	// Nearest payable amounts, ascending: 100.00 and 200.00 first.
	if len(nearest) < 2 || nearest[0] != money(10000) || nearest[1] != money(20000) || slices.Contains(nearest, money(15000)) {
		t.Fatalf("nearest amounts offered %q, want 100.00 and 200.00 first", nearest)
	}

	uiClick(t, d, money(20000))
	uiStep(t, d, ui.ScreenQR)
	wantLabels(t, d, money(20000), s.app.Config.TerminalID)
	snap := s.app.Backend.Snapshot()
	if snap.Amount != 20000 {
		t.Fatalf("session amount %d, want 20000", snap.Amount)
	}
	if qr := screenQR(t, d); qr != snap.QRPayload {
		t.Fatalf("screen QR %q, session QR %q", qr, snap.QRPayload)
	}

	// Esc cancels the session on the QR screen; nothing was debited.
	d.Key(key.NameEscape)
	uiStep(t, d, ui.ScreenWelcome)
	if v := s.app.Core.View(); v.Session != nil && !v.Session.State.Terminal() {
		t.Fatalf("session not cancelled: %+v", v.Session)
	}
	if got := s.balance(zhang); got != before {
		t.Fatalf("balance %d, want %d", got, before)
	}
}
