package ui_test

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"gioui.org/io/key"
	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/screenshots"
	"github.com/cardless-atm/cardless/ui/uifake"
	"github.com/cardless-atm/cardless/ui/uitest"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Verbose() {
		slog.SetDefault(slog.New(slog.DiscardHandler))
	}
	os.Exit(m.Run())
}

// size is the window of the flow tests; sizes are the common ATM
// displays (4:3, 5:4 and wide, landscape) every screen is checked at.
var (
	size  = image.Pt(1280, 800)
	sizes = []image.Point{{800, 600}, {1024, 768}, {1280, 800}, {1280, 1024}, {1920, 1080}}
)

// fakeClock is a settable clock shared by the fake backend and the UI.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: screenshots.Epoch}
}
func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// expected returns texts each shot must show in the scene its Scene
// builds.
func expected(sh screenshots.Shot, l i18n.Lang) []string {
	T := func(k i18n.Key, args ...any) string { return i18n.T(l, k, args...) }
	money := func(v int64) string { return i18n.Amount(l, v, "CNY", 2) }
	if sh.Speech {
		return []string{T("say.blank")}
	}
	var more []string
	switch {
	case sh.MoreTime && sh.Screen == ui.ScreenQR:
		more = []string{T("more.qr", "0:07"), T("btn.more"), "F8"}
	case sh.MoreTime && sh.Screen == ui.ScreenTakeCash:
		more = []string{T("more.take", "0:07"), T("btn.more"), "F8"}
	case sh.MoreTime:
		more = []string{T("more.input", "0:30"), T("btn.continue")}
	}
	if sh.Tap != nil {
		return tapExpected(sh, l)
	}
	switch sh.Screen {
	case ui.ScreenWelcome:
		return []string{T("welcome.start"), T("welcome.offer"), i18n.T(l.Other(), "welcome.start"), i18n.T(l.Other(), "welcome.offer"),
			T("welcome.touch"), i18n.T(l.Other(), "welcome.touch"), "F8"}
	case ui.ScreenLanguage:
		return []string{"中文", "English", T("welcome.offer"), i18n.T(l.Other(), "welcome.offer"),
			T("btn.cancel") + " / " + i18n.T(l.Other(), "btn.cancel"), "F4", "F8", "F7"}
	case ui.ScreenAmount:
		return append(more, T("amount.title"), money(10000), money(300000), money(80000), T("key.clear"), T("key.enter"), T("btn.cancel"), "F1", "F6", "F7",
			T("amount.rules", money(10000), money(500000), money(10000)))
	case ui.ScreenCannotPay:
		return []string{T("cannot.title"), T("cannot.asked", money(70000)), T("cannot.notes"), T("cannot.choose"), money(60000), money(80000), T("btn.other")}
	case ui.ScreenQR:
		return append(more, T("qr.title"), money(50000), "ATM00042", "Branch 7, 88 Century Avenue, Shanghai", T("qr.time"), T("btn.cancel"), "F7")
	case ui.ScreenProcessing:
		return []string{T("processing.title"), T("processing.body"), money(50000)}
	case ui.ScreenTakeCash:
		return append(more, T("take.title"), T("take.body"), money(50000))
	case ui.ScreenComplete:
		return []string{T("complete.title"), T("complete.receipt"), T("btn.yes"), T("btn.no"), money(50000),
			T("account.charged", money(50000)), T("ref.rrn", uifake.FakeRRN), "F7", "F8"}
	case ui.ScreenDeclined:
		return []string{T("declined.title"), i18n.Reason(l, "51"), T("account.not-charged"), T("ref.rrn", uifake.FakeRRN), T("btn.finish")}
	case ui.ScreenFailed:
		account := "account.reversed"
		if sh.Reason == "count" {
			account = "account.checking"
		}
		return []string{T("failed.title"), i18n.Reason(l, cmp.Or(sh.Reason, "dispenser")), T(i18n.Key(account)), T("ref.session", "01234567"), T("btn.finish")}
	case ui.ScreenOutOfService:
		return []string{T("oos.title"), T("oos.body"), i18n.T(l.Other(), "oos.title")}
	case ui.ScreenWait:
		return []string{T("wait.title"), T("wait.body")}
	case ui.ScreenOperatorLogin:
		return []string{T("login.title"), T("login.id"), T("login.hint"), T("btn.cancel"), T("btn.confirm"), "F7", "F8"}
	case ui.ScreenReplenish:
		unit := func(id string, denom int64) string { return id + "  " + money(denom) }
		switch sh.Step {
		case 0:
			return []string{T("rep.title"), T("rep.count"), "▶ " + T("rep.countline", unit("CASS1", 10000), 1850, "1848"),
				T("rep.countline", unit("CASS2", 5000), 12, "—"), T("btn.next"), T("btn.back"), "F1", "F2", "F7", "F8"}
		case 1:
			return []string{T("rep.load"), "▶ " + T("rep.loadline", "CASS1", money(10000), "2000"), T("rep.loadline", "CASS2", money(5000), "0"),
				T("rep.denombtn"), T("rep.do"), "F5", "F8"}
		}
		return []string{T("rep.report", "ATM00042", "2025-03-14 09:30", "1001"), T("rep.removedline", unit("CASS1", 10000), 1850, 1850, 0),
			T("rep.removedline", unit("CASS2", 5000), 12, 11, -1), T("rep.loadedline", unit("CASS2", 5000), 2000), T("btn.print"), T("sup.inservice"), "F6", "F8"}
	case ui.ScreenInDoubt:
		return []string{T("doubt.title"), T("doubt.help"), "▶ " + T("doubt.line", "03-14 08:52", "9F3C5A7E", money(80000)) + "  " + T("doubt.paid", money(80000)),
			T("doubt.settle"), "F1", "F7", "F8"}
	case ui.ScreenBalance:
		return []string{T("bal.title"), T("bal.report", "ATM00042", "2025-03-14"), T("bal.line", T("bal.approved_count"), "42", "42"),
			T("bal.line", T("bal.reversal_count"), "2", "1") + "  " + T("bal.diff", "1"), T("btn.prevday"), T("btn.nextday"), T("btn.print"), "F1", "F2", "F6", "F7"}
	case ui.ScreenJournal:
		return []string{T("jr.title"), T("jr.day", "2025-03-14"), "09:14:02  " + i18n.JournalKind(l, "SESSION CREATED") + "  01234567",
			"▶ 09:14:38  " + i18n.JournalKind(l, "CASH TAKEN") + "  01234567", T("jr.session"), "F1", "F2", "F3", "F4", "F5", "F7"}
	case ui.ScreenSupervisor:
		dispenser, online := i18n.Device(l, "dispenser", "online")
		return []string{T("super.title"), T("super.status"), T("super.inservice"), dispenser + ": " + online,
			T("sup.replenish"), T("sup.indoubt"), T("sup.balance"), T("sup.journal"), T("sup.outofservice"), "F1", "F5",
			T("super.alarm", i18n.Alarm(l, "cash_low:CASS2")), T("super.saf", 1), T("super.units"), T("super.journal"),
			T("super.unitline", "CASS2", money(5000), 12, 488, 3, 0),
			"09:14:38  " + i18n.JournalKind(l, "CASH TAKEN") + "  01234567", T("super.exit")}
	}
	return nil
}

// newDriver returns a driver showing st (as ui.Render would) for b.
func newDriver(t testing.TB, b ui.Backend, st ui.State) *uitest.Driver {
	t.Helper()
	return newDriverAt(t, b, st, size)
}

func newDriverAt(t testing.TB, b ui.Backend, st ui.State, sz image.Point) *uitest.Driver {
	t.Helper()
	h, err := uitest.New(b, ui.Options{Lang: st.Lang, Clock: st.Clock}, sz)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	h.App().ApplyForTest(st)
	h.App().TraceForTest()
	return h
}

func frame(t testing.TB, h *uitest.Driver) {
	t.Helper()
	if err := h.Frame(); err != nil {
		t.Fatal(err)
	}
}

// TestEveryScreen renders every screen in both languages at every ATM
// display size and checks that the expected catalog texts were laid out,
// that no catalog key is missing, that the QR decodes, and that the
// layout holds: no text outside the window or overflowing its space, no
// two texts overlapping, every button label inside its button, and lines
// broken only between words (button labels: only at spaces).
func TestEveryScreen(t *testing.T) {
	for _, sz := range sizes {
		for _, l := range i18n.Langs {
			for _, sh := range screenshots.Shots() {
				t.Run(fmt.Sprintf("%dx%d/%s-%s", sz.X, sz.Y, sh.Name, l), func(t *testing.T) {
					checkScreen(t, sh, l, sz)
				})
			}
		}
	}
}

func checkScreen(t *testing.T, sh screenshots.Shot, l i18n.Lang, sz image.Point) {
	sc := sh.Screen
	b, st, err := sh.Scene(l)
	if err != nil {
		t.Fatal(err)
	}
	h := newDriverAt(t, b, st, sz)
	frame(t, h)
	if h.Screen() != sc {
		t.Fatalf("screen = %s, want %s", h.Screen(), sc)
	}
	labels := h.Nodes()
	win := image.Rectangle{Max: sz}
	for i, lb := range labels {
		if strings.Contains(lb.Text, "[") && strings.Contains(lb.Text, "]") && !strings.Contains(lb.Text, ":") {
			t.Errorf("missing catalog key shown: %q", lb.Text)
		}
		if lb.Bounds.Empty() && lb.Text != "" {
			t.Errorf("label %q has empty bounds", lb.Text)
		}
		if !lb.Bounds.In(win) {
			t.Errorf("label %q at %v is clipped by the window %v", lb.Text, lb.Bounds, win)
		}
		if lb.Button != "" && !lb.Bounds.In(lb.Container) {
			t.Errorf("button label %q at %v sticks out of its button %v", lb.Text, lb.Bounds, lb.Container)
		}
		for _, o := range labels[i+1:] {
			if lb.Bounds.Overlaps(o.Bounds) {
				t.Errorf("labels %q at %v and %q at %v overlap", lb.Text, lb.Bounds, o.Text, o.Bounds)
			}
		}
	}
	laid := h.App().LaidForTest()
	if len(laid) != len(labels) {
		t.Errorf("%d texts laid out, %d published", len(laid), len(labels))
	}
	for _, ll := range laid {
		if ll.Overflow {
			t.Errorf("text %q (%s) does not fit its space: lines %q", ll.Text, ll.Desc, ll.Lines)
		}
		button := strings.HasPrefix(ll.Desc, "button:")
		if bad := badBreak(ll.Lines, button); bad != "" {
			t.Errorf("text %q broken inside a word (%s): lines %q", ll.Text, bad, ll.Lines)
		}
	}
	got := h.Labels()
	for _, want := range expected(sh, l) {
		if !slices.Contains(got, want) {
			t.Errorf("text %q not drawn; drawn: %q", want, got)
		}
	}
	if l == i18n.Chinese {
		if !slices.ContainsFunc(got, hasHan) {
			t.Errorf("no Chinese text drawn: %q", got)
		}
	}
	if sc == ui.ScreenQR {
		img, err := h.Image()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := decode(t, img), b.Snapshot().QRPayload; got != want {
			t.Errorf("QR decodes to %q, want %q", got, want)
		}
	}
}

// badBreak describes the first line break of lines that falls inside a
// word, or returns "". Text may break at a space, after a dash or slash,
// and next to a CJK character (UAX #14); a button's label only at a space.
func badBreak(lines []string, button bool) string {
	for i := 1; i < len(lines); i++ {
		p, n := []rune(lines[i-1]), []rune(lines[i])
		if len(p) == 0 || len(n) == 0 {
			return fmt.Sprintf("empty line %d", i)
		}
		prev, next := p[len(p)-1], n[0]
		ok := unicode.IsSpace(prev) || unicode.IsSpace(next)
		if !button {
			ok = ok || strings.ContainsRune("-—/", prev) || isCJK(prev) || isCJK(next)
		}
		if !ok {
			return fmt.Sprintf("between %q and %q", prev, next)
		}
	}
	return ""
}

func isCJK(r rune) bool {
	return unicode.Is(unicode.Han, r) || r >= 0x3000 && r <= 0x303F || r >= 0xFF00 && r <= 0xFFEF
}

func TestBadBreak(t *testing.T) {
	for _, c := range []struct {
		lines  []string
		button bool
		bad    bool
	}{
		{[]string{"Cancel"}, true, false},
		{[]string{"Cance", "l"}, true, true},
		{[]string{"Other ", "amount"}, true, false},
		{[]string{"CNY 1,000.", "00"}, false, true},
		{[]string{"无卡取", "款"}, false, false},
		{[]string{"无卡取", "款"}, true, true},
		{[]string{"phone —", " no card"}, false, false},
	} {
		if got := badBreak(c.lines, c.button) != ""; got != c.bad {
			t.Errorf("badBreak(%q, %v) = %v, want %v", c.lines, c.button, got, c.bad)
		}
	}
}

func hasHan(s string) bool {
	for _, r := range s {
		if r >= 0x4E00 && r <= 0x9FFF {
			return true
		}
	}
	return false
}

func decode(t testing.TB, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gzqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Fatalf("QR not found in rendered frame: %v", err)
	}
	return res.GetText()
}

// TestQRDecodesAtSizes checks the QR at every window size with a second,
// independent decoder, zbarimg, on a saved PNG (TestEveryScreen decodes it
// with gozxing).
func TestQRDecodesAtSizes(t *testing.T) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Skip("zbarimg not on PATH (apt install zbar-tools)")
	}
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz.X, sz.Y), func(t *testing.T) {
			clk := newClock()
			b := uifake.New(clk.Now)
			if err := b.RequestWithdrawal(120000); err != nil {
				t.Fatal(err)
			}
			img, err := ui.Render(b, ui.State{Lang: i18n.Chinese, Clock: clk.Now}, sz)
			if err != nil {
				t.Fatal(err)
			}
			want := b.Snapshot().QRPayload
			p := filepath.Join(t.TempDir(), "qr.png")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := png.Encode(f, img); err != nil {
				t.Fatal(err)
			}
			f.Close()
			out, err := exec.Command(zbar, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", p).Output()
			if err != nil {
				t.Fatalf("zbarimg: %v", err)
			}
			if got := strings.TrimRight(string(out), "\n"); got != want {
				t.Fatalf("zbarimg: %q, want %q", got, want)
			}
		})
	}
}

// click taps the centre of the button whose choice id is id.
func click(t *testing.T, h *uitest.Driver, id string) {
	t.Helper()
	if err := h.Click(id); err != nil {
		t.Fatal(err)
	}
}

// step frames the App, lets the backend calls the frame started finish,
// and checks the screen.
func step(t *testing.T, h *uitest.Driver, want ui.Screen) {
	t.Helper()
	frame(t, h)
	if err := h.Settle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if h.Screen() != want {
		t.Fatalf("screen = %s, want %s (labels %q)", h.Screen(), want, h.Labels())
	}
}

// TestFlowClicksAndKeys drives a whole withdrawal through Gio's router:
// Welcome -> Language -> Amount (keypad) -> QR -> Processing -> TakeCash ->
// Complete -> receipt -> Welcome.
func TestFlowClicksAndKeys(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now})
	step(t, h, ui.ScreenWelcome)
	click(t, h, "start")
	step(t, h, ui.ScreenLanguage)
	h.Key(key.NameF4) // 中文
	step(t, h, ui.ScreenAmount)
	if h.App().Lang() != i18n.Chinese {
		t.Fatalf("lang = %s", h.App().Lang())
	}
	// Keyboard entry 1 2 0 0, Backspace clears, then 3 0 0 by clicking the keypad.
	h.Key("1", "2", "0", "0")
	step(t, h, ui.ScreenAmount)
	if !slices.Contains(h.Labels(), "1,200.00元") {
		t.Fatalf("entry not shown: %q", h.Labels())
	}
	h.Key(key.NameDeleteBackward)
	step(t, h, ui.ScreenAmount)
	for _, k := range []string{"3", "0", "0"} {
		click(t, h, "key."+k)
		step(t, h, ui.ScreenAmount)
	}
	h.Key(key.NameEnter) // keypad Enter
	step(t, h, ui.ScreenQR)
	if got := b.Requested(); !slices.Equal(got, []int64{30000}) {
		t.Fatalf("requested %v, want [30000]", got)
	}
	if !slices.Contains(h.Labels(), "300.00元") {
		t.Fatalf("QR screen lacks amount: %q", h.Labels())
	}
	b.SetPhase(ui.Processing, "")
	step(t, h, ui.ScreenProcessing)
	b.SetPhase(ui.TakeCash, "")
	step(t, h, ui.ScreenTakeCash)
	b.SetPhase(ui.Complete, "")
	step(t, h, ui.ScreenComplete)
	click(t, h, "receipt.yes")
	step(t, h, ui.ScreenComplete)
	if _, _, receipts := b.Counts(); receipts != 1 {
		t.Fatalf("receipts printed = %d", receipts)
	}
	h.Key(key.NameReturn)
	step(t, h, ui.ScreenWelcome)
	if b.Snapshot().Phase != ui.Idle {
		t.Fatalf("core phase after finish = %s", b.Snapshot().Phase)
	}
}

func TestCancelAndValidation(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now, Screen: ui.ScreenAmount})
	step(t, h, ui.ScreenAmount)
	cases := []struct {
		keys []key.Name
		msg  string
	}{
		{nil, i18n.T(i18n.English, "amount.err.empty")},
		{[]key.Name{"5", "0"}, i18n.T(i18n.English, "amount.err.min", "CNY 100.00")},
		{[]key.Name{"9", "0", "0", "0"}, i18n.T(i18n.English, "amount.err.max", "CNY 5,000.00")},
		{[]key.Name{"1", "5", "0"}, i18n.T(i18n.English, "amount.err.multiple", "CNY 100.00")},
	}
	for _, c := range cases {
		h.Key(key.NameDeleteBackward)
		h.Key(c.keys...)
		h.Key(key.NameReturn)
		step(t, h, ui.ScreenAmount)
		if !slices.Contains(h.Labels(), c.msg) {
			t.Errorf("keys %v: message %q not shown: %q", c.keys, c.msg, h.Labels())
		}
	}
	if len(b.Requested()) != 0 {
		t.Fatalf("invalid amounts reached the core: %v", b.Requested())
	}
	// A preset goes straight to the core; Esc on the QR screen cancels.
	h.Key(key.NameF3)
	step(t, h, ui.ScreenQR)
	h.Key(key.NameEscape)
	step(t, h, ui.ScreenWelcome)
	if c, _, _ := b.Counts(); c != 1 {
		t.Fatalf("cancels = %d", c)
	}
}

// TestErrorAfterClear: an error with an argument ("The minimum amount is
// CNY 100.00"), then Backspace and Enter on the empty entry, shows the
// plain "enter an amount" message, not one formatted with the old argument.
func TestErrorAfterClear(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now, Screen: ui.ScreenAmount})
	step(t, h, ui.ScreenAmount)
	h.Key("5", "0", key.NameEnter)
	step(t, h, ui.ScreenAmount)
	if want := i18n.T(i18n.English, "amount.err.min", "CNY 100.00"); !slices.Contains(h.Labels(), want) {
		t.Fatalf("message %q not shown: %q", want, h.Labels())
	}
	h.Key(key.NameDeleteBackward, key.NameEnter)
	step(t, h, ui.ScreenAmount)
	if want := "Please enter an amount"; !slices.Contains(h.Labels(), want) {
		t.Errorf("message %q not shown: %q", want, h.Labels())
	}
	for _, l := range h.Labels() {
		if strings.Contains(l, "%!") {
			t.Errorf("badly formatted text shown: %q", l)
		}
	}
}

func TestCannotPayNearest(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	b.Payable = func(a int64) (bool, string, []int64) {
		if a == 70000 {
			return false, "notes", []int64{60000, 80000}
		}
		return true, "", nil
	}
	h := newDriver(t, b, ui.State{Lang: i18n.Chinese, Clock: clk.Now, Screen: ui.ScreenAmount})
	step(t, h, ui.ScreenAmount)
	h.Key("7", "0", "0", key.NameReturn)
	step(t, h, ui.ScreenCannotPay)
	for _, want := range []string{"600.00元", "800.00元", i18n.CannotPayReason(i18n.Chinese, "notes")} {
		if !slices.Contains(h.Labels(), want) {
			t.Fatalf("%q not shown: %q", want, h.Labels())
		}
	}
	click(t, h, "nearest1")
	step(t, h, ui.ScreenQR)
	if got := b.Requested(); !slices.Equal(got, []int64{70000, 80000}) {
		t.Fatalf("requested %v", got)
	}
}

// banner checks whether the last frame showed the time-out banner.
func banner(t *testing.T, h *uitest.Driver, want bool) {
	t.Helper()
	if got := h.App().Prompt(); got != want {
		t.Fatalf("time-out banner shown = %v, want %v (labels %q)", got, want, h.Labels())
	}
}

// TestMoreTime checks the time-out banner of the QR screen: it appears
// 10 s before the deadline under a QR that still scans, "More time" (F8)
// calls Backend.MoreTime and closes it, Cancel (F7) still cancels; and
// the banner of an input screen: any key continues, no input ends it.
func TestMoreTime(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	if err := b.RequestWithdrawal(50000); err != nil {
		t.Fatal(err)
	}
	h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now})
	step(t, h, ui.ScreenQR)
	banner(t, h, false)
	clk.Add(b.QRTimeout - 8*time.Second)
	step(t, h, ui.ScreenQR)
	banner(t, h, true)
	if !slices.Contains(h.Labels(), i18n.T(i18n.English, "more.qr", "0:08")) {
		t.Fatalf("QR warning not shown: %q", h.Labels())
	}
	img, err := h.Image()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := decode(t, img), b.Snapshot().QRPayload; got != want {
		t.Fatalf("under the banner the QR decodes to %q, want %q", got, want)
	}
	h.Key(key.NameF8)
	step(t, h, ui.ScreenQR)
	banner(t, h, false)
	if _, more, _ := b.Counts(); more != 1 {
		t.Fatalf("MoreTime calls = %d", more)
	}
	clk.Add(b.Extend - 3*time.Second)
	step(t, h, ui.ScreenQR)
	banner(t, h, true)
	h.Key(key.NameF7)
	step(t, h, ui.ScreenWelcome)
	if cancels, _, _ := b.Counts(); cancels != 1 {
		t.Fatalf("Cancel calls = %d", cancels)
	}

	// The language screen: the banner after 20 s without input; a key
	// (one the screen has no use for) continues; then the time-out.
	h.Key(key.NameReturn)
	step(t, h, ui.ScreenLanguage)
	clk.Add(25 * time.Second)
	step(t, h, ui.ScreenLanguage)
	banner(t, h, true)
	h.Key("5")
	step(t, h, ui.ScreenLanguage)
	banner(t, h, false)
	clk.Add(25 * time.Second)
	step(t, h, ui.ScreenLanguage)
	banner(t, h, true)
	click(t, h, "more.yes") // "Continue" on the banner
	step(t, h, ui.ScreenLanguage)
	banner(t, h, false)
	clk.Add(31 * time.Second)
	step(t, h, ui.ScreenWelcome)
	if _, more, _ := b.Counts(); more != 1 {
		t.Fatalf("MoreTime calls = %d; an input screen's banner never calls the core", more)
	}
}

// TestNoPromptOnOutcomes: the outcome screens time out without a banner:
// nothing is pending there.
func TestNoPromptOnOutcomes(t *testing.T) {
	for _, p := range []ui.Phase{ui.Complete, ui.Declined, ui.Failed} {
		clk := newClock()
		b := uifake.New(clk.Now)
		h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now})
		step(t, h, ui.ScreenWelcome)
		b.SetPhase(p, "dispenser")
		frame(t, h)
		for range 19 {
			clk.Add(time.Second)
			frame(t, h)
			banner(t, h, false)
		}
		clk.Add(time.Second)
		step(t, h, ui.ScreenWelcome)
	}
}

// TestMoreTimeShortPhase: with a take-cash time shorter than the warning
// (here 4 s against 10 s), the take-cash screen is shown first and the
// banner only from the middle of the phase, not at once; the take-cash
// time is extended once, after which the banner warns without offering
// more.
func TestMoreTimeShortPhase(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	b.TakeTimeout = 4 * time.Second
	h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now})
	step(t, h, ui.ScreenWelcome)
	b.SetPhase(ui.TakeCash, "")
	step(t, h, ui.ScreenTakeCash)
	banner(t, h, false)
	clk.Add(1900 * time.Millisecond)
	step(t, h, ui.ScreenTakeCash)
	banner(t, h, false)
	clk.Add(200 * time.Millisecond)
	step(t, h, ui.ScreenTakeCash)
	banner(t, h, true)
	more := i18n.T(i18n.English, "btn.more")
	if got := h.Labels(); !slices.Contains(got, i18n.T(i18n.English, "more.take", "0:02")) || !slices.Contains(got, more) ||
		!slices.Contains(got, i18n.T(i18n.English, "take.title")) || !slices.Contains(got, "CNY 500.00") {
		t.Fatalf("take-cash banner: %q", got)
	}
	// "More time" extends the phase (the fake: 30 s from now); the banner
	// comes back 10 s before the new deadline, as for a normal phase.
	h.Key(key.NameReturn)
	step(t, h, ui.ScreenTakeCash)
	banner(t, h, false)
	clk.Add(b.Extend - 11*time.Second)
	step(t, h, ui.ScreenTakeCash)
	banner(t, h, false)
	clk.Add(2 * time.Second)
	step(t, h, ui.ScreenTakeCash)
	banner(t, h, true)
	if got := h.Labels(); slices.Contains(got, more) {
		t.Fatalf("more time offered twice for the cash: %q", got)
	}
}

// TestRedrawScheduling checks that an idle screen asks for no frame and a
// countdown asks for exactly the next second change.
func TestRedrawScheduling(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now})
	step(t, h, ui.ScreenWelcome)
	if at, ok := h.Wakeup(); ok {
		t.Fatalf("welcome screen asked for a redraw at %v", at)
	}
	if err := b.RequestWithdrawal(50000); err != nil {
		t.Fatal(err)
	}
	clk.Add(300 * time.Millisecond)
	step(t, h, ui.ScreenQR)
	at, ok := h.Wakeup()
	if !ok {
		t.Fatal("QR countdown asked for no redraw")
	}
	// The headless frame time is the injected clock: the countdown shows
	// 0:60 until 700 ms from now, when it must redraw, and not before.
	if d := at.Sub(clk.Now()); d != 700*time.Millisecond {
		t.Fatalf("next redraw in %v, want 700ms", d)
	}
}

func TestSupervisorKey(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now})
	step(t, h, ui.ScreenWelcome)
	login := func(id, pin string) {
		t.Helper()
		h.Key(key.NameF12)
		step(t, h, ui.ScreenOperatorLogin)
		h.Type(id)
		h.Key(key.NameReturn)
		step(t, h, ui.ScreenOperatorLogin)
		if want := i18n.T(i18n.English, "login.pin"); !slices.Contains(h.Labels(), want) {
			t.Fatalf("PIN prompt %q not shown: %q", want, h.Labels())
		}
		h.Type(pin)
		h.Key(key.NameReturn)
	}
	// A wrong PIN: the login screen says so and asks again.
	login("1001", "999999")
	step(t, h, ui.ScreenOperatorLogin)
	if want := i18n.T(i18n.English, "login.failed"); !slices.Contains(h.Labels(), want) {
		t.Fatalf("%q not shown: %q", want, h.Labels())
	}
	for _, l := range h.Labels() {
		if strings.Contains(l, "999999") {
			t.Fatalf("the PIN is shown: %q", l)
		}
	}
	h.Key(key.NameEscape)
	step(t, h, ui.ScreenWelcome)
	// The right one opens the supervisor screen; leaving it logs out.
	login("1001", "271828")
	step(t, h, ui.ScreenSupervisor)
	h.Key(key.NameEscape)
	step(t, h, ui.ScreenWelcome)
	h.Key(key.NameF12)
	step(t, h, ui.ScreenOperatorLogin)
	h.Key(key.NameEscape)
	step(t, h, ui.ScreenWelcome)
	// A locked-out operator is told so.
	b.LockedOperator = "1001"
	login("1001", "271828")
	step(t, h, ui.ScreenOperatorLogin)
	if want := i18n.T(i18n.English, "login.locked"); !slices.Contains(h.Labels(), want) {
		t.Fatalf("%q not shown: %q", want, h.Labels())
	}
	wantCalls(t, b, "OperatorLogin(1001)", "OperatorLogin(1001)", "OperatorLogin(1001)")
}

// BenchmarkConfirmToQRFrame measures from the customer's Enter on the
// amount screen to the first rendered frame showing the QR (goal < 16 ms):
// the frame that starts the request, the request on its own goroutine, and
// the frame that shows its answer.
func BenchmarkConfirmToQRFrame(b *testing.B) {
	clk := newClock()
	fb := uifake.New(clk.Now)
	h := newDriver(b, fb, ui.State{Lang: i18n.Chinese, Clock: clk.Now, Screen: ui.ScreenAmount})
	frame(b, h)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		fb.SetPhase(ui.Idle, "")
		frame(b, h)
		h.App().SetEntryForTest(fmt.Sprint(100 + i%40*100))
		frame(b, h)
		b.StartTimer()
		h.Key(key.NameReturn)
		frame(b, h) // starts the request on its own goroutine
		if err := h.Settle(10 * time.Second); err != nil {
			b.Fatal(err) // the frame that applies its answer shows the QR
		}
		if h.Screen() != ui.ScreenQR {
			b.Fatalf("screen %s", h.Screen())
		}
	}
}

// TestRendererKeepsNoState draws a sequence of states with one Renderer,
// whose App lives from frame to frame, changing before each frame what the
// customer could have changed, and checks that the App is put in each
// state just as a new App would be.
func TestRendererKeepsNoState(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	r, err := ui.NewRenderer(b, image.Pt(800, 600), clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	st := func(l i18n.Lang, sc ui.Screen) ui.State { return ui.State{Lang: l, Screen: sc, Clock: clk.Now} }
	more := func(s ui.State) ui.State { s.MoreTime = true; return s }
	cannot := st(i18n.English, ui.ScreenCannotPay)
	cannot.CannotPay = &ui.CannotPayError{Reason: "notes", Nearest: []int64{60000, 80000}}
	amount := st(i18n.Chinese, ui.ScreenAmount)
	amount.Entry = "800"
	steps := []struct {
		before func()
		st     ui.State
	}{
		{nil, st(i18n.English, ui.ScreenWelcome)},
		{nil, amount},
		{nil, cannot},
		{nil, st(i18n.Chinese, ui.ScreenSupervisor)},
		{nil, st(i18n.English, ui.ScreenLanguage)},
		{nil, st(i18n.Chinese, ui.ScreenWelcome)},
		{func() {
			if err := b.RequestWithdrawal(50000); err != nil {
				t.Fatal(err)
			}
		}, st(i18n.English, ui.ScreenQR)},
		{func() { clk.Add(3 * time.Second) }, more(st(i18n.Chinese, ui.ScreenQR))},
		{nil, st(i18n.Chinese, ui.ScreenQR)},
		{func() { b.SetPhase(ui.Complete, "") }, st(i18n.English, ui.ScreenComplete)},
		{func() { b.SetPhase(ui.Declined, "51") }, st(i18n.Chinese, ui.ScreenDeclined)},
		{func() { b.SetPhase(ui.Idle, "") }, st(i18n.English, ui.ScreenWelcome)},
	}
	for i, s := range steps {
		if s.before != nil {
			s.before()
		}
		if i > 0 {
			r.DirtyForTest()
		}
		if diff := r.PrepareDiffForTest(s.st); len(diff) > 0 {
			t.Errorf("step %d (%s): the kept App differs from a new one: %q", i, s.st.Screen, diff)
		}
		if _, err := r.Render(s.st); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkRendererQRFrame draws the QR screen with one Renderer once a
// second of its countdown, as the appliance's headless screen does.
func BenchmarkRendererQRFrame(b *testing.B) {
	clk := newClock()
	fb := uifake.New(clk.Now)
	if err := fb.RequestWithdrawal(50000); err != nil {
		b.Fatal(err)
	}
	r, err := ui.NewRenderer(fb, image.Pt(1024, 768), clk.Now)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Release()
	st := ui.State{Lang: i18n.Chinese, Clock: clk.Now}
	for b.Loop() {
		if _, err := r.Render(st); err != nil {
			b.Fatal(err)
		}
		clk.Add(time.Second)
		if fb.Snapshot().Deadline.Sub(clk.Now()) < 15*time.Second {
			fb.MoreTime()
		}
	}
}

func ExampleRender() {
	clock := func() time.Time { return screenshots.Epoch }
	b := uifake.New(clock)
	if err := b.RequestWithdrawal(50000); err != nil {
		fmt.Println(err)
		return
	}
	img, err := ui.Render(b, ui.State{Lang: i18n.English, Clock: clock}, image.Pt(1024, 768))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(img.Bounds().Size(), b.Snapshot().Phase)
	// Output: (1024,768) AwaitingPhone
}

// errorCounter is a slog.Handler counting Error records.
type errorCounter struct {
	mu *sync.Mutex
	n  *int
}

func (h errorCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h errorCounter) Handle(context.Context, slog.Record) error {
	h.mu.Lock()
	*h.n++
	h.mu.Unlock()
	return nil
}
func (h errorCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h errorCounter) WithGroup(string) slog.Handler      { return h }

// TestQRPayloadTooLong: a payload that cannot be encoded leaves the QR area
// empty and is reported once, not on every frame.
func TestQRPayloadTooLong(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	if err := b.RequestWithdrawal(50000); err != nil {
		t.Fatal(err)
	}
	b.Update(func(s *ui.Snapshot) { s.QRPayload = strings.Repeat("A", 8000) })
	var (
		mu sync.Mutex
		n  int
	)
	h, err := uitest.New(b, ui.Options{Lang: i18n.English, Clock: clk.Now, Logger: slog.New(errorCounter{&mu, &n})}, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	for range 3 {
		step(t, h, ui.ScreenQR)
		clk.Add(time.Second)
	}
	mu.Lock()
	defer mu.Unlock()
	if n != 1 {
		t.Errorf("%d errors logged over 3 frames, want 1", n)
	}
}

// TestCompleteWithoutPrinter: with no printer ready the complete screen
// sends the customer to the phone's receipt, fitting in both languages at
// every size.
func TestCompleteWithoutPrinter(t *testing.T) {
	for _, sz := range sizes {
		for _, l := range i18n.Langs {
			t.Run(fmt.Sprintf("%dx%d/%s", sz.X, sz.Y, l), func(t *testing.T) {
				b, st, err := screenshots.Scene(ui.ScreenComplete, l)
				if err != nil {
					t.Fatal(err)
				}
				b.Update(func(s *ui.Snapshot) { s.Receipt = false })
				h := newDriverAt(t, b, st, sz)
				frame(t, h)
				want := i18n.T(l, "complete.noprinter")
				if !slices.Contains(h.Labels(), want) {
					t.Fatalf("%q not shown: %q", want, h.Labels())
				}
				win := image.Rectangle{Max: sz}
				for _, lb := range h.Nodes() {
					if !lb.Bounds.In(win) {
						t.Errorf("label %q at %v is clipped by the window %v", lb.Text, lb.Bounds, win)
					}
				}
				for _, ll := range h.App().LaidForTest() {
					if ll.Overflow {
						t.Errorf("text %q does not fit: lines %q", ll.Text, ll.Lines)
					}
				}
			})
		}
	}
}
