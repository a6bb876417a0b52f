package ui_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"gioui.org/io/key"

	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/uifake"
	"github.com/cardless-atm/cardless/ui/uitest"
)

// watchdog bounds, in real time, a wait that only a defect makes long:
// a frame stuck behind a held backend call never returns at all.
const watchdog = 10 * time.Second

// frameHeld frames the App on another goroutine and fails the test if the
// frame has not returned within the watchdog: a frame that waits for one
// of the held calls would never return. It then releases holds so that
// the stuck frame ends before the window is closed.
func frameHeld(t *testing.T, h *uitest.Driver, holds ...*uifake.Hold) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- h.Frame() }()
	timer := time.NewTimer(watchdog)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-timer.C:
		for _, hd := range holds {
			hd.Release()
		}
		<-done
		t.Fatal("the frame waited for a backend call")
	}
}

// stepHeld is frameHeld, then a check of the screen.
func stepHeld(t *testing.T, h *uitest.Driver, want ui.Screen, holds ...*uifake.Hold) {
	t.Helper()
	frameHeld(t, h, holds...)
	if h.Screen() != want {
		t.Fatalf("screen = %s, want %s (labels %q)", h.Screen(), want, h.Labels())
	}
}

// entered waits for the App's call to reach the hold.
func entered(t *testing.T, hd *uifake.Hold) {
	t.Helper()
	timer := time.NewTimer(watchdog)
	defer timer.Stop()
	select {
	case <-hd.Entered():
	case <-timer.C:
		t.Fatal("the held call was never made")
	}
}

func wantCalls(t *testing.T, b *uifake.Backend, want ...string) {
	t.Helper()
	if got := b.Calls(); !slices.Equal(got, want) {
		t.Fatalf("backend calls %q, want %q", got, want)
	}
}

// TestHeldRequest: while the core takes its time over a withdrawal
// request, frames go on, "Please wait" replaces the amount screen after a
// moment, every press (a second Enter, a preset, Cancel) is ignored, the
// idle time-out waits, and the answer leads to the QR.
func TestHeldRequest(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	hold := b.Hold("RequestWithdrawal")
	t.Cleanup(hold.Release)
	h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now, Screen: ui.ScreenAmount})
	step(t, h, ui.ScreenAmount)

	h.Key("3", "0", "0", key.NameReturn)
	stepHeld(t, h, ui.ScreenAmount, hold) // a quick answer shows no flicker
	entered(t, hold)
	at, ok := h.Wakeup()
	if want := clk.Now().Add(300 * time.Millisecond); !ok || !at.Equal(want) {
		t.Fatalf("wakeup %v %v, want %v (when Please wait is due)", at, ok, want)
	}
	h.Key(key.NameReturn, key.NameF3) // pressed again before Please wait shows
	stepHeld(t, h, ui.ScreenAmount, hold)
	if at2, ok := h.Wakeup(); !ok || !at2.Equal(at) {
		t.Fatalf("wakeup %v %v, want still %v", at2, ok, at)
	}
	clk.Add(300 * time.Millisecond)
	stepHeld(t, h, ui.ScreenWait, hold)
	if got, want := h.Labels(), []string{i18n.T(i18n.English, "app.title"), "ATM00042", i18n.T(i18n.English, "wait.title"), i18n.T(i18n.English, "wait.body")}; !slices.Equal(got, want) {
		t.Fatalf("labels %q, want %q", got, want)
	}
	if at, ok := h.Wakeup(); ok {
		t.Fatalf("Please wait asked for a redraw at %v; the call's end wakes the window", at)
	}

	h.Key(key.NameReturn, key.NameF3, "5", key.NameEscape, key.NameF8)
	stepHeld(t, h, ui.ScreenWait, hold)
	clk.Add(time.Minute) // beyond the amount screen's idle time-out
	stepHeld(t, h, ui.ScreenWait, hold)
	wantCalls(t, b, "RequestWithdrawal(30000)")

	hold.Release()
	step(t, h, ui.ScreenQR)
	wantCalls(t, b, "RequestWithdrawal(30000)")
	if !slices.Contains(h.Labels(), "CNY 300.00") {
		t.Fatalf("QR screen lacks the amount: %q", h.Labels())
	}
}

// TestHeldRefusal: a refusal that comes late still shows the cannot-pay
// screen, and a failure the message under the entry.
func TestHeldRefusal(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	b.Payable = func(int64) (bool, string, []int64) { return false, "notes", []int64{20000} }
	hold := b.Hold("RequestWithdrawal")
	t.Cleanup(hold.Release)
	h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now, Screen: ui.ScreenAmount})
	step(t, h, ui.ScreenAmount)
	h.Key("3", "0", "0", key.NameReturn)
	stepHeld(t, h, ui.ScreenAmount, hold)
	entered(t, hold)
	clk.Add(time.Second)
	stepHeld(t, h, ui.ScreenWait, hold)
	hold.Release()
	step(t, h, ui.ScreenCannotPay)

	b.Payable = nil
	b.RequestErr = errors.New("store: disk full")
	click(t, h, "other")
	step(t, h, ui.ScreenAmount)
	h.Key("3", "0", "0", key.NameReturn)
	step(t, h, ui.ScreenAmount)
	if want := i18n.T(i18n.English, "amount.err.request"); !slices.Contains(h.Labels(), want) {
		t.Fatalf("%q not shown: %q", want, h.Labels())
	}
	wantCalls(t, b, "RequestWithdrawal(30000)", "RequestWithdrawal(30000)")
}

// TestHeldMoreTime: "More time" on the QR's time-out banner closes the
// banner at once and the QR countdown goes on while the core moves the
// deadline; a second press has nothing to press.
func TestHeldMoreTime(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	if err := b.RequestWithdrawal(50000); err != nil {
		t.Fatal(err)
	}
	hold := b.Hold("MoreTime")
	t.Cleanup(hold.Release)
	h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now})
	step(t, h, ui.ScreenQR)
	clk.Add(b.QRTimeout - 8*time.Second)
	step(t, h, ui.ScreenQR)
	banner(t, h, true)
	h.Key(key.NameF8)
	stepHeld(t, h, ui.ScreenQR, hold)
	entered(t, hold)
	banner(t, h, false)
	if !slices.Contains(h.Labels(), "0:08") {
		t.Fatalf("countdown 0:08 not shown: %q", h.Labels())
	}
	clk.Add(time.Second)
	h.Key(key.NameF8)
	stepHeld(t, h, ui.ScreenQR, hold)
	if !slices.Contains(h.Labels(), "0:07") {
		t.Fatalf("countdown 0:07 not shown: %q", h.Labels())
	}
	wantCalls(t, b, "RequestWithdrawal(50000)", "MoreTime")
	hold.Release()
	step(t, h, ui.ScreenQR)
	if !slices.Contains(h.Labels(), "0:30") {
		t.Fatalf("extended countdown 0:30 not shown: %q", h.Labels())
	}
	wantCalls(t, b, "RequestWithdrawal(50000)", "MoreTime")
}

// TestHeldCancel: Cancel on the QR screen reaches the core once however
// often it is pressed, Please wait shows while the core cancels, and the
// UI returns to Welcome when it has.
func TestHeldCancel(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	if err := b.RequestWithdrawal(50000); err != nil {
		t.Fatal(err)
	}
	hold := b.Hold("Cancel")
	t.Cleanup(hold.Release)
	h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now})
	step(t, h, ui.ScreenQR)
	h.Key(key.NameEscape)
	stepHeld(t, h, ui.ScreenQR, hold)
	entered(t, hold)
	h.Key(key.NameEscape, key.NameF8)
	stepHeld(t, h, ui.ScreenQR, hold)
	clk.Add(300 * time.Millisecond)
	stepHeld(t, h, ui.ScreenWait, hold)
	wantCalls(t, b, "RequestWithdrawal(50000)", "Cancel")
	hold.Release()
	step(t, h, ui.ScreenWelcome)
	wantCalls(t, b, "RequestWithdrawal(50000)", "Cancel")
}

// TestHeldReceipt: a slow printer does not hold the customer: "Finish"
// ends the session while the receipt prints; a printer fault is said.
func TestHeldReceipt(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	hold := b.Hold("PrintReceipt")
	t.Cleanup(hold.Release)
	h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now})
	b.SetPhase(ui.Complete, "")
	step(t, h, ui.ScreenComplete)
	click(t, h, "receipt.yes")
	stepHeld(t, h, ui.ScreenComplete, hold)
	entered(t, hold)
	if want := i18n.T(i18n.English, "complete.printing"); !slices.Contains(h.Labels(), want) {
		t.Fatalf("%q not shown: %q", want, h.Labels())
	}
	h.Key(key.NameReturn)
	frameHeld(t, h, hold)
	if err := h.WaitScreen(watchdog, ui.ScreenWelcome); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, b, "PrintReceipt", "Cancel")
	hold.Release()
	if err := h.Settle(watchdog); err != nil {
		t.Fatal(err)
	}
	if got := b.ReceiptLang(); got != "en" {
		t.Fatalf("receipt asked in %q, want the customer's language en", got)
	}

	b.PrintErr = errors.New("printer: paper out")
	b.SetPhase(ui.Complete, "")
	step(t, h, ui.ScreenComplete)
	click(t, h, "receipt.yes")
	step(t, h, ui.ScreenComplete)
	if want := i18n.T(i18n.English, "complete.printfailed"); !slices.Contains(h.Labels(), want) {
		t.Fatalf("%q not shown: %q", want, h.Labels())
	}
	wantCalls(t, b, "PrintReceipt", "Cancel", "PrintReceipt")
}

// TestHeldSupervisor: the supervisor screen opens at once and fills in
// when the core answers.
func TestHeldSupervisor(t *testing.T) {
	clk := newClock()
	b := uifake.New(clk.Now)
	hold := b.Hold("Supervisor")
	t.Cleanup(hold.Release)
	h := newDriver(t, b, ui.State{Lang: i18n.English, Clock: clk.Now})
	step(t, h, ui.ScreenWelcome)
	h.Key(key.NameF12)
	step(t, h, ui.ScreenOperatorLogin)
	h.Type("1001")
	h.Key(key.NameReturn)
	step(t, h, ui.ScreenOperatorLogin)
	h.Type("271828")
	h.Key(key.NameReturn)
	frameHeld(t, h, hold) // the login is checked off the window's goroutine
	if err := h.WaitScreen(watchdog, ui.ScreenSupervisor); err != nil {
		t.Fatal(err)
	}
	entered(t, hold)
	if want := i18n.T(i18n.English, "super.loading"); !slices.Contains(h.Labels(), want) {
		t.Fatalf("%q not shown: %q", want, h.Labels())
	}
	hold.Release()
	step(t, h, ui.ScreenSupervisor)
	if want := "Cash dispenser: online"; !slices.Contains(h.Labels(), want) {
		t.Fatalf("%q not shown: %q", want, h.Labels())
	}
	at, ok := h.Wakeup()
	if want := clk.Now().Add(2 * time.Second); !ok || !at.Equal(want) {
		t.Fatalf("wakeup %v %v, want %v (the next refresh)", at, ok, want)
	}
}
