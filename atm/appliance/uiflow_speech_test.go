package appliance_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"gioui.org/io/key"

	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/uitest"
)

// recSpeaker records what the kiosk says.
type recSpeaker struct{ said chan ui.Utterance }

func (r *recSpeaker) Say(ctx context.Context, l i18n.Lang, text string) error {
	select {
	case r.said <- ui.Utterance{Lang: l, Text: text}:
		return nil
	default:
		panic("the test's speaker is full: more said than the test expects")
	}
}

// heard checks that the speaker was given exactly want, in order, and
// nothing else so far.
func (r *recSpeaker) heard(t *testing.T, want ...ui.Utterance) {
	t.Helper()
	var got []ui.Utterance
	for range want {
		select {
		case u := <-r.said:
			got = append(got, u)
		case <-time.After(uiWait): // a safety net, not a timing assertion
			t.Fatalf("heard %q, want %q", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("heard %q\nwant %q", got, want)
	}
	select {
	case u := <-r.said:
		t.Fatalf("heard also %q", u)
	default:
	}
}

// TestUIFlowSpeech completes a withdrawal on the real appliance with the
// keypad and the audio guidance alone: the headphone key turns the
// guidance on, every customer screen is dark (only the QR code stays, for
// the phone's camera) and is said as it appears, the amount is typed on
// the keypad and echoed, the phone reads the QR from the pixels and the
// notes are paid out, and the end of the session turns the guidance off.
// What each screen says is fixed by the spoken golden files (ui); here
// every screen of a real withdrawal must reach the speaker, in order.
func TestUIFlowSpeech(t *testing.T) {
	s := startSystem(t, func(c *appliance.Config) {
		kioskScreen(c)
		c.TakeTimeout = appliance.Duration(30 * time.Second)
		c.Dispenser.Sim.TakeDelay = appliance.Duration(500 * time.Millisecond)
	})
	sp := &recSpeaker{said: make(chan ui.Utterance, 256)}
	log := slog.New(slog.NewTextHandler(s.logs, nil)).With("part", "ui")
	t.Setenv("EGL_PLATFORM", "surfaceless")
	d, err := uitest.New(s.app.Backend, ui.Options{Lang: i18n.English, Logger: log, Speaker: sp, SpeechKey: key.NameF9}, appliance.ScreenSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	t.Cleanup(d.App().StopSpeech)
	en, zh := i18n.English, i18n.Chinese
	dark := func(l i18n.Lang) {
		t.Helper()
		if want := []string{i18n.T(l, "say.blank")}; !slices.Equal(d.Labels(), want) {
			t.Fatalf("screen %s not dark: labels %q", d.Screen(), d.Labels())
		}
	}

	uiStep(t, d, ui.ScreenWelcome)
	d.Key(key.NameF9) // the headphone jack's key
	uiStep(t, d, ui.ScreenWelcome)
	if !d.App().SpeechOn() {
		t.Fatal("the speech key did not turn the guidance on")
	}
	dark(en)
	sp.heard(t, append([]ui.Utterance{{Lang: en, Text: i18n.T(en, "say.on")}}, d.App().Spoken()...)...)

	d.Key(key.NameF8) // Cardless withdrawal
	uiStep(t, d, ui.ScreenLanguage)
	dark(en)
	sp.heard(t, d.App().Spoken()...)
	d.Key(key.NameF4) // 中文
	uiStep(t, d, ui.ScreenAmount)
	dark(zh)
	sp.heard(t, d.App().Spoken()...)
	for _, k := range []struct{ key, echo string }{{"3", "已输入金额：3元。"}, {"0", "已输入金额：30元。"}, {"0", "已输入金额：300元。"}} {
		d.Type(k.key)
		uiStep(t, d, ui.ScreenAmount)
		sp.heard(t, ui.Utterance{Lang: zh, Text: k.echo})
	}
	before := s.balance(zhang)
	d.Key(key.NameReturn)
	uiStep(t, d, ui.ScreenQR)
	dark(zh)
	sp.heard(t, d.App().Spoken()...)
	for _, u := range d.App().Spoken() {
		if strings.Contains(u.Text, s.app.Backend.Snapshot().QRPayload) {
			t.Fatalf("the QR's content is spoken: %q", u.Text)
		}
	}
	qr := screenQR(t, d) // the dark screen keeps the code for the camera
	if snap := s.app.Backend.Snapshot(); qr != snap.QRPayload || snap.Amount != 30000 {
		t.Fatalf("screen QR %q amount %d; session QR %q", qr, snap.Amount, snap.QRPayload)
	}

	phone := s.withdrawInBackground(qr)
	// Every screen the kiosk shows on the way is said as it appears: what
	// the speaker gets is each seen screen's text, in order.
	var seen []ui.Screen
	var want []ui.Utterance
	err = d.WaitFor(uiWait, func(d *uitest.Driver) bool {
		if sc := d.Screen(); sc != ui.ScreenQR && (len(seen) == 0 || seen[len(seen)-1] != sc) {
			seen = append(seen, sc)
			want = append(want, d.App().Spoken()...)
		}
		return d.Screen() == ui.ScreenComplete
	})
	if err != nil {
		t.Fatalf("screens %v: %v", seen, err)
	}
	for _, sc := range seen {
		if !slices.Contains([]ui.Screen{ui.ScreenProcessing, ui.ScreenTakeCash, ui.ScreenComplete}, sc) {
			t.Fatalf("unexpected screen %s during the withdrawal (%v)", sc, seen)
		}
	}
	dark(zh)
	sp.heard(t, want...)
	sess := s.app.Core.View().Session
	complete := d.App().Spoken()
	if spelled := strings.Join(strings.Split(sess.RRN, ""), " ") + "。"; len(sess.RRN) != 12 || !strings.HasSuffix(complete[0].Text, "您的参考号是："+spelled) {
		t.Fatalf("the outcome does not end with the reference %s: %q", sess.RRN, complete[0].Text)
	}
	r := <-phone
	if r.err != nil || r.out.ResponseCode != "00" || !r.out.PaidInFull() || r.out.Dispensed != 30000 {
		t.Fatalf("phone outcome %+v, %v", r.out, r.err)
	}
	s.settled()
	if got := s.balance(zhang); got != before-30000 {
		t.Fatalf("balance %d, want %d", got, before-30000)
	}

	d.Key(key.NameF8) // finish
	uiStep(t, d, ui.ScreenWelcome)
	if d.App().SpeechOn() {
		t.Fatal("the guidance is still on after the session")
	}
	sp.heard(t, ui.Utterance{Lang: en, Text: i18n.T(en, "say.off")})
	if slices.Contains(d.Labels(), i18n.T(en, "say.blank")) {
		t.Fatalf("the next customer finds a dark screen: %q", d.Labels())
	}
}
