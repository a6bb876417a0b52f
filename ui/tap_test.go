package ui_test

import (
	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/screenshots"
)

// tapExpected are the texts of the contactless shots: "scan or tap" and
// the tap's outcome on the QR screen, the no-session and reader-failed
// notices in both languages on the welcome screen.
func tapExpected(sh screenshots.Shot, l i18n.Lang) []string {
	T := func(k i18n.Key) string { return i18n.T(l, k) }
	keys := map[ui.TapState]i18n.Key{ui.TapNone: "tap.hint", ui.TapDetected: "tap.detected", ui.TapNoApp: "tap.noapp",
		ui.TapRefused: "tap.refused", ui.TapRemoved: "tap.removed", ui.TapFailed: "tap.failed", ui.TapNoSession: "tap.nosession"}
	if sh.Screen == ui.ScreenWelcome {
		return []string{T("welcome.start"), T(keys[*sh.Tap]) + " / " + i18n.T(l.Other(), keys[*sh.Tap]), "F8"}
	}
	return []string{T("qr.title.tap"), T(keys[*sh.Tap]), "ATM00042", T("btn.cancel"), "F7"}
}
