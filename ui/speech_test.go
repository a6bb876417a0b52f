package ui_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gioui.org/io/key"

	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/screenshots"
	"github.com/cardless-atm/cardless/ui/uifake"
	"github.com/cardless-atm/cardless/ui/uitest"
)

var updateSpeech = flag.Bool("update-speech", false, "rewrite testdata/speech/*.txt from the App's spoken texts")

// operatorScreens are not spoken.
var operatorScreens = []ui.Screen{ui.ScreenOperatorLogin, ui.ScreenSupervisor, ui.ScreenReplenish,
	ui.ScreenInDoubt, ui.ScreenBalance, ui.ScreenJournal}

func formatSpoken(us []ui.Utterance) string {
	var b strings.Builder
	for _, u := range us {
		fmt.Fprintf(&b, "%s: %s\n", u.Lang, u.Text)
	}
	return b.String()
}

// TestSpokenGolden checks what every customer screen of the screenshots
// says in both languages against testdata/speech/<shot>-<lang>.txt, and
// that the operator's screens say nothing and stay visible.
func TestSpokenGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, sh := range screenshots.Shots() {
		for _, l := range i18n.Langs {
			name := fmt.Sprintf("%s-%s", sh.Name, l)
			t.Run(name, func(t *testing.T) {
				b, st, err := sh.Scene(l)
				if err != nil {
					t.Fatal(err)
				}
				st.Speech = true
				h := newDriver(t, b, st)
				frame(t, h)
				if h.Screen() != sh.Screen {
					t.Fatalf("screen = %s, want %s", h.Screen(), sh.Screen)
				}
				got := formatSpoken(h.App().Spoken())
				if slices.Contains(operatorScreens, sh.Screen) {
					if got != "" {
						t.Fatalf("operator screen speaks %q", got)
					}
					if slices.Contains(h.Labels(), i18n.T(l, "say.blank")) {
						t.Fatalf("operator screen blanked: %q", h.Labels())
					}
					return
				}
				if want := []string{i18n.T(l, "say.blank")}; !slices.Equal(h.Labels(), want) {
					t.Errorf("screen not blanked: labels %q, want %q", h.Labels(), want)
				}
				if p := b.Snapshot().QRPayload; p != "" && strings.Contains(got, p) {
					t.Errorf("the QR's content is spoken: %q", got)
				}
				if strings.Contains(got, "[") {
					t.Errorf("a catalog key is missing: %q", got)
				}
				file := filepath.Join("testdata", "speech", name+".txt")
				seen[name+".txt"] = true
				if *updateSpeech {
					if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("%v (run go test ./ui -run TestSpokenGolden -update-speech)", err)
				}
				if got != string(want) {
					t.Errorf("spoken text differs from %s:\ngot:\n%s\nwant:\n%s", file, got, want)
				}
			})
		}
	}
	// No golden file is left over from a shot that no longer exists.
	files, _ := filepath.Glob(filepath.Join("testdata", "speech", "*.txt"))
	for _, f := range files {
		if !seen[filepath.Base(f)] && !t.Failed() {
			t.Errorf("%s: no such shot", f)
		}
	}
}

// recSpeaker records what the App says; it fails the test on a call it
// does not expect (see heard).
type recSpeaker struct{ said chan ui.Utterance }

func newRecSpeaker() *recSpeaker { return &recSpeaker{said: make(chan ui.Utterance, 64)} }

func (r *recSpeaker) Say(ctx context.Context, l i18n.Lang, text string) error {
	r.said <- ui.Utterance{Lang: l, Text: text}
	return nil
}

// heard checks that the speaker was given exactly want, in order, and
// nothing else so far.
func heard(t *testing.T, r *recSpeaker, want ...ui.Utterance) {
	t.Helper()
	var got []ui.Utterance
	for range want {
		select {
		case u := <-r.said:
			got = append(got, u)
		case <-time.After(10 * time.Second): // a safety net, not a timing assertion
			t.Fatalf("heard %q, want %q", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("heard:\n%s\nwant:\n%s", formatSpoken(got), formatSpoken(want))
	}
	select {
	case u := <-r.said:
		t.Fatalf("heard also %q", u)
	default:
	}
}

// TestSpeechFlow completes a withdrawal with the keypad and speech alone,
// the screen dark all along: the keypad's 5 held turns the guidance on,
// every screen is said as it appears, then only what changes (the amount
// typed, the time-out warning, the receipt), and the end of the session
// turns it off.
func TestSpeechFlow(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	sp := newRecSpeaker()
	h, err := uitest.New(b, ui.Options{Lang: i18n.English, Clock: clk.Now, Speaker: sp}, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	t.Cleanup(h.App().StopSpeech)
	en, zh := i18n.English, i18n.Chinese
	T := func(l i18n.Lang, k i18n.Key, args ...any) string { return i18n.T(l, k, args...) }
	u := func(l i18n.Lang, text string) ui.Utterance { return ui.Utterance{Lang: l, Text: text} }
	dark := func(l i18n.Lang) {
		t.Helper()
		if want := []string{T(l, "say.blank")}; !slices.Equal(h.Labels(), want) {
			t.Fatalf("screen %s not dark: labels %q", h.Screen(), h.Labels())
		}
	}
	step(t, h, ui.ScreenWelcome)
	if h.App().SpeechOn() {
		t.Fatal("speech on at start")
	}
	// The 5 held down: nothing until SpeechHold has passed, then on.
	h.Press("5")
	step(t, h, ui.ScreenWelcome)
	clk.Add(ui.DefaultSpeechHold - time.Millisecond)
	step(t, h, ui.ScreenWelcome)
	if h.App().SpeechOn() {
		t.Fatal("speech on before the hold time")
	}
	if at, ok := h.Wakeup(); !ok || !at.Equal(clk.Now().Add(time.Millisecond)) {
		t.Fatalf("wake-up %v %v, want at the end of the hold %v", at, ok, clk.Now().Add(time.Millisecond))
	}
	clk.Add(time.Millisecond)
	step(t, h, ui.ScreenWelcome)
	if !h.App().SpeechOn() {
		t.Fatal("speech off after holding 5")
	}
	dark(en)
	heard(t, sp, u(en, T(en, "say.on")),
		u(en, "Welcome. Cardless withdrawal: withdraw cash with your phone, no card needed. For Cardless withdrawal, press F8."),
		u(zh, "欢迎使用无卡取款：用手机取现金，无需银行卡。无卡取款，请按F 8键。"))
	h.Release("5") // released after the toggle: nothing more
	step(t, h, ui.ScreenWelcome)
	heard(t, sp)

	h.Key(key.NameF8)
	step(t, h, ui.ScreenLanguage)
	dark(en)
	heard(t, sp, u(en, "Please choose your language. For English, press F8. To cancel, press F7."),
		u(zh, "请选择语言。中文请按F 4键。取消请按F 7键。"))
	h.Key(key.NameF4)
	step(t, h, ui.ScreenAmount)
	dark(zh)
	heard(t, sp, u(zh, "请选择金额。"),
		u(zh, "100元，请按F 1键。300元，请按F 2键。500元，请按F 3键。1000元，请按F 4键。2000元，请按F 5键。3000元，请按F 6键。取消，请按F 7键。"),
		u(zh, "或在键盘上输入整元金额，然后按确认键。金额须在100元至5000元之间，并为100元的整数倍。"),
		u(zh, "未输入金额。"))
	// Typed digits are echoed; a 5 pressed briefly types a 5.
	h.Key("3")
	step(t, h, ui.ScreenAmount)
	heard(t, sp, u(zh, "已输入金额：3元。"))
	h.Key("5")
	step(t, h, ui.ScreenAmount)
	heard(t, sp, u(zh, "已输入金额：35元。"))
	h.Key(key.NameEnter)
	step(t, h, ui.ScreenAmount)
	heard(t, sp, u(zh, T(zh, "amount.err.min", "100元")+"。"))
	h.Key(key.NameDeleteBackward, "4", "0", "0")
	step(t, h, ui.ScreenAmount)
	heard(t, sp, u(zh, "已输入金额：400元。"))
	h.Key(key.NameEnter)
	step(t, h, ui.ScreenQR)
	if got := b.Requested(); !slices.Equal(got, []int64{40000}) {
		t.Fatalf("requested %v", got)
	}
	dark(zh)
	heard(t, sp, u(zh, "请用银行应用扫描屏幕上的二维码，取款400元。在应用中选择无卡取款，扫描二维码，并核对金额。"), u(zh, "取消，请按F 7键。"))
	// The time-out warning is said once when it appears, not every second.
	clk.Add(b.QRTimeout - 9*time.Second)
	step(t, h, ui.ScreenQR)
	heard(t, sp, u(zh, T(zh, "more.qr", "9秒")+T(zh, "btn.more")+"，请按F 8键。"))
	clk.Add(time.Second)
	step(t, h, ui.ScreenQR)
	heard(t, sp)
	h.Key(key.NameF8) // more time
	step(t, h, ui.ScreenQR)
	heard(t, sp)
	b.SetPhase(ui.Processing, "")
	step(t, h, ui.ScreenProcessing)
	heard(t, sp, u(zh, "请稍候。您的银行正在授权您取款400元。"))
	b.SetPhase(ui.TakeCash, "")
	step(t, h, ui.ScreenTakeCash)
	heard(t, sp, u(zh, "请从出钞口取走您的现金400元。未及时取走的钞票将被收回。"))
	b.SetPhase(ui.Complete, "")
	step(t, h, ui.ScreenComplete)
	dark(zh)
	heard(t, sp, u(zh, "交易完成：已支付400元。谢谢，请清点您的现金。"+T(zh, "account.charged", "400元")+"您的参考号是：5 1 2 3 4 5 6 7 8 9 0 1。"),
		u(zh, T(zh, "complete.receipt")),
		u(zh, "否，请按F 7键。是，请按F 8键。"))
	h.Key(key.NameF8) // a receipt
	step(t, h, ui.ScreenComplete)
	heard(t, sp, u(zh, T(zh, "complete.printing")), u(zh, "完成，请按F 8键。"))
	if _, _, receipts := b.Counts(); receipts != 1 {
		t.Fatalf("receipts = %d", receipts)
	}
	h.Key(key.NameF8) // finish
	step(t, h, ui.ScreenWelcome)
	if h.App().SpeechOn() {
		t.Fatal("speech still on after the session")
	}
	heard(t, sp, u(en, T(en, "say.off")))
	if slices.Contains(h.Labels(), T(en, "say.blank")) {
		t.Fatalf("screen still dark: %q", h.Labels())
	}
}

// TestSpeechKey checks the configured speech key (a headphone jack's)
// and that holding 5 on the Amount screen does not leave the 5 it typed;
// without a Speaker, holding 5 types a 5 and nothing else.
func TestSpeechKey(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	h, err := uitest.New(b, ui.Options{Lang: i18n.English, Clock: clk.Now, SpeechKey: key.NameF9, Speaker: newRecSpeaker()}, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	h.App().ApplyForTest(ui.State{Lang: i18n.English, Clock: clk.Now, Screen: ui.ScreenAmount, Entry: "3"})
	step(t, h, ui.ScreenAmount)
	h.Key(key.NameF9)
	step(t, h, ui.ScreenAmount)
	if !h.App().SpeechOn() {
		t.Fatal("speech key did not turn speech on")
	}
	h.Press("5")
	step(t, h, ui.ScreenAmount)
	if got := h.App().Spoken(); got[len(got)-1].Text != "Amount typed: 35 yuan." {
		t.Fatalf("spoken %q", got)
	}
	clk.Add(ui.DefaultSpeechHold)
	h.Press("5") // auto-repeat while held: ignored
	h.Release("5")
	step(t, h, ui.ScreenAmount)
	if h.App().SpeechOn() {
		t.Fatal("holding 5 did not turn speech off")
	}
	if !slices.Contains(h.Labels(), "CNY 3.00") {
		t.Fatalf("entry after the hold: %q", h.Labels())
	}
}

func TestNoSpeakerNoGuidance(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	h, err := uitest.New(b, ui.Options{Lang: i18n.English, Clock: clk.Now, SpeechKey: key.NameF9}, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	h.App().ApplyForTest(ui.State{Lang: i18n.English, Clock: clk.Now, Screen: ui.ScreenAmount, Entry: "3"})
	step(t, h, ui.ScreenAmount)
	h.Key(key.NameF9)
	h.Press("5")
	step(t, h, ui.ScreenAmount)
	clk.Add(2 * ui.DefaultSpeechHold)
	h.Release("5")
	step(t, h, ui.ScreenAmount)
	if h.App().SpeechOn() || !slices.Contains(h.Labels(), "CNY 35.00") {
		t.Fatalf("speech %v, labels %q", h.App().SpeechOn(), h.Labels())
	}
}
