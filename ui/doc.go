// Package ui is the customer-facing kiosk interface of the cardless-withdrawal
// ATM, written with Gio (gioui.org). It depends only on the Backend interface
// defined here; the ATM core implements it through an adapter, and
// ui/uifake is an in-memory implementation for tests, screenshots and demos.
//
// # Screens and navigation
//
// While the core is Idle the UI navigates by itself:
//
//	Welcome (attract; "Cardless withdrawal" offered in both languages)
//	  -> Language (中文 / English)
//	  -> Amount (preset amounts + free entry on an on-screen keypad, checked
//	     against Snapshot.MinAmount, MaxAmount and Multiple)
//	  -> Backend.RequestWithdrawal
//	       *CannotPayError -> CannotPay (reason in plain words, the nearest
//	                          payable amounts as buttons, "Other amount")
//
// Once the core has a session the screen follows Snapshot.Phase:
// AwaitingPhone -> QR (large QR with a 4-module quiet zone, amount, terminal
// ID, location, countdown to Deadline, Cancel), Processing, TakeCash (own
// countdown), Complete (receipt choice when Snapshot.Receipt and the Backend
// implements ReceiptPrinter), Declined / Failed (ReasonCode explained by the
// catalog), OutOfService (over everything). When the core returns to Idle the
// UI goes back to Welcome in the default language.
//
// A screen that waits for the customer shows a time-out banner under its
// body Options.Warn before its deadline (but not before the middle of a
// phase shorter than twice Options.Warn, so that a short take-cash time
// does not open with it), worded for what will happen, and never hides
// what the customer is looking at: on the QR screen the code stays and
// still scans ("More time", F8 or Enter, calls Backend.MoreTime: the same
// session, a new payload; a code scanned before stays payable); on
// TakeCash the notes will be taken back ("More time" once, while
// Snapshot.CanExtend); on the input screens (Language, Amount, CannotPay,
// after Options.IdleTimeout without input) a touch or any key continues.
// The outcome screens end after Options.OutcomeTimeout without a banner:
// nothing is pending there. Every outcome screen says what happens to the
// customer's account (Snapshot.Account) and shows a reference
// (Snapshot.RRN, else Snapshot.SessionRef).
//
// Function keys are the same on every screen: F7 (and Esc) cancels, goes
// back or says no; F8 (and Enter) continues or says yes; F1-F6 are the
// screen's choices (amounts; the languages are F4 and F8).
//
// The supervisor key (Options.SupervisorKey, F12 by default) asks for an
// operator ID and PIN on the PIN pad when the Backend implements
// OperatorLogin (login.go; the PIN is shown as dots, checked off the
// window's goroutine, a failure or a lockout is said), then toggles the
// Supervisor screen; leaving it logs the operator out. The Supervisor screen (Backend.Supervisor: device status,
// cash units, alarms, last journal entries, all translated) over any
// screen; Esc or F7 leaves it. In a
// real ATM, bind it to the operator switch. When the Backend has
// Operations (operations.go, supervise.go) the supervisor screen is a menu:
// F1 replenishment (takes the terminal out of service; the notes counted
// in each removed cassette, all of them, then the notes and denominations
// loaded; the report with every difference in red, printable, F8 back in
// service), F2 the sessions in doubt (the operator's count, settled only
// after a second F8), F3 the daily balancing (the terminal's figures
// beside the host's, differences in red, by day, printable), F4 the
// journal (by day, one session's entries), F5 out of service / back in
// service. Each action names the logged-in operator and runs off the
// window's goroutine; an answer for a screen the operator has left is
// dropped; a refusal is shown in red.
//
// # Calls to the core
//
// The window's goroutine never waits for the Backend but for Snapshot,
// which must return at once (a copy of the core's state). RequestWithdrawal,
// Cancel and MoreTime (the session call), PrintReceipt and Supervisor each
// run on a goroutine of their own (async.go); their result is applied by
// the next frame, which App.Wake asks for. One session call is in flight at
// a time: a press that would start another, a double press included, is
// ignored and logged, and time-outs wait for it. A session call that takes
// longer than 300 ms replaces the screen with Wait ("One moment, please",
// no choices) until it ends; MoreTime does not, so that the countdown goes
// on while the core moves the deadline. The receipt prints while the
// customer finishes; a printer fault is said on the Complete screen. The
// supervisor screen opens at once and fills in when Supervisor answers,
// then refreshes every 2 s. The Backend is called from several goroutines
// at once and must be safe for it.
//
// # Input
//
// Touch and mouse clicks on every button. The keyboard is the PIN pad:
// digits enter the amount, Enter and keypad Enter confirm (or take the
// screen's default choice), Esc cancels, Backspace clears the entry. F1–F4
// (left) and F5–F8 (right) are the function display keys next to the screen;
// each choice shows its key as a yellow badge. All other keys are consumed.
//
// # Drawing
//
// Text comes from the catalogs in ui/i18n (English and Chinese) and is
// drawn with a CJK font loaded from the system (DefaultCJKFontPaths,
// Noto Sans CJK SC first), with a warning in the log and the Go fonts as
// fallback when none is found. The CJK faces are subsets built at start-up
// (ui/internal/fontsubset) with the glyphs of the catalogs' and this
// package's literals (fontrunes.go, go generate), of the terminal ID,
// location and currency of the backend's first snapshot, and of ASCII,
// Latin-1 and the common punctuation blocks; a rune among those that the
// font lacks is logged. The QR is drawn from go-qrcode's module
// matrix as pixel-aligned rectangles with a whole number of pixels per
// module, never through an image. Gio draws only on input, on
// Backend.Changed, and once per second while a countdown is visible
// (op.InvalidateCmd for the next second change); an idle screen schedules
// nothing.
//
// # Sizes
//
// The screens lay out from 800x600 up: common ATM displays are 800x600 and
// 1024x768 (4:3), 1280x1024 (5:4), 1280x800 and 1920x1080 (wide). Every
// size in dp and sp is scaled by the window: the design is for 1100x800 dp
// and scales with the smaller ratio (never below 70 %), so text is larger
// on big displays. Where text still does not fit its space, the header,
// the title, the body and each button are laid out again a little smaller
// until it does (App.fit). Text breaks only between words (UAX #14, so
// between CJK characters too); a button's label keeps to one line and
// shrinks first, then wraps at spaces only. The QR takes the full body
// height up to 60 % of its width, in whole pixels per module.
//
// # Entry points
//
// Run drives an app.Window (Options.Kiosk: full screen, no decorations,
// hidden pointer; otherwise a resizable 1280x800 window). App.Layout lays
// the UI out into any layout.Context, and App.Screen tells which screen the
// last Layout showed. Render draws one frame headlessly
// (gioui.org/gpu/headless; EGL_PLATFORM=surfaceless is set when there is
// no display) for screenshots. Every text is also published in
// Gio's semantic tree (label and bounds), which is what the tests inspect
// and what screen readers use.
//
// Package ui/uitest drives an App headlessly over many frames with real
// key and pointer events through Gio's input router, for flow tests
// against ui/uifake or the real appliance (atm/appliance). Gio terminates
// the shared EGL display when an offscreen window is released, so a
// process should not keep a uitest driver open while Render runs
// concurrently.
package ui
