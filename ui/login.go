package ui

import (
	"errors"
	"strings"

	"gioui.org/layout"

	"github.com/cardless-atm/cardless/ui/i18n"
)

// OperatorLogin is an optional capability of a Backend, found by type
// assertion. When the Backend has it, the supervisor key first asks for an
// operator ID and PIN, typed on the PIN pad, and opens the supervisor
// screen only when OperatorLogin accepts them; leaving the supervisor
// screen logs the operator out. An error wrapping ErrLoginLocked says the
// operator is locked out; any other error is shown as "not accepted".
// Without it the supervisor key opens the screen directly, and New logs a
// warning that the screen is not protected.
type OperatorLogin interface {
	OperatorLogin(id, pin string) error
}

// ErrLoginLocked is wrapped by an OperatorLogin error for an operator
// locked out after repeated failures.
var ErrLoginLocked = errors.New("ui: operator locked out")

// maxLoginDigits bounds the operator ID and PIN entries.
const maxLoginDigits = 16

// loginState is the operator login in progress (App.login; on is false
// when none).
type loginState struct {
	on      bool     // the login screen is shown
	gen     int      // counts logins opened, so a late answer finds its own
	pinStep bool     // false: entering the ID; true: the PIN
	id, pin string   // digits typed
	failed  i18n.Key // catalog key of the last failure ("" none)
	busy    bool     // OperatorLogin in flight
}

// supervisorKey opens the login (or, without OperatorLogin, the
// supervisor screen) and closes the supervisor screen, logging out.
func (a *App) supervisorKey() {
	switch {
	case a.supervisor:
		a.supervisor, a.login = false, loginState{gen: a.login.gen}
		a.op = superState{gen: a.op.gen + 1}
		a.log.Info("ui supervisor mode", "on", false, "operator", a.operator)
		a.operator = ""
	case a.login.on:
		a.login = loginState{gen: a.login.gen}
	default:
		if _, ok := a.b.(OperatorLogin); ok {
			a.login = loginState{on: true, gen: a.login.gen + 1}
			return
		}
		a.supervisor = true
		a.log.Info("ui supervisor mode", "on", true)
	}
}

func (a *App) loginDigit(d byte) {
	l := &a.login
	if !l.on || l.busy {
		return
	}
	l.failed = ""
	if l.pinStep {
		if len(l.pin) < maxLoginDigits {
			l.pin += string(d)
		}
	} else if len(l.id) < maxLoginDigits {
		l.id += string(d)
	}
}

func (a *App) loginClear() {
	if l := &a.login; l.on && !l.busy {
		if l.pinStep {
			l.pin = ""
		} else {
			l.id = ""
		}
	}
}

// loginEnter moves from the ID to the PIN, then asks the Backend (off the
// window's goroutine).
func (a *App) loginEnter() {
	l := &a.login
	if !l.on || l.busy {
		return
	}
	if !l.pinStep {
		if l.id != "" {
			l.pinStep = true
		}
		return
	}
	if l.pin == "" {
		return
	}
	ol, ok := a.b.(OperatorLogin)
	if !ok {
		return
	}
	l.busy = true
	id, pin, gen := l.id, l.pin, l.gen
	a.background(func() func() {
		err := ol.OperatorLogin(id, pin)
		return func() {
			if !a.login.on || a.login.gen != gen {
				return // cancelled meanwhile
			}
			switch {
			case err == nil:
				a.login, a.supervisor, a.operator = loginState{gen: gen}, true, id
				a.log.Info("ui supervisor mode", "on", true, "operator", id)
			case errors.Is(err, ErrLoginLocked):
				a.login = loginState{on: true, gen: gen, failed: "login.locked"}
				a.log.Warn("ui operator login refused: locked out", "operator", id)
			default:
				a.login = loginState{on: true, gen: gen, failed: "login.failed"}
				a.log.Warn("ui operator login refused", "operator", id)
			}
		}
	})
}

func (a *App) loginScreen(gtx C) D {
	l := a.login
	a.add(choice{id: "login.cancel", label: a.t("btn.cancel"), fkey: 7, esc: true, act: func() { a.login = loginState{gen: a.login.gen} }})
	a.add(choice{id: "login.ok", label: a.t("btn.confirm"), fkey: 8, enter: true, primary: true, act: a.loginEnter})
	prompt, entry := a.t("login.id"), l.id
	if l.pinStep {
		prompt, entry = a.t("login.pin"), strings.Repeat("•", len(l.pin))
	}
	if entry == "" {
		entry = "—"
	}
	ws := []layout.Widget{
		a.para(spBody, prompt, colText, false),
		a.para(spBig, entry, colAccent, true),
		a.para(spSmall, a.t("login.hint"), colText, false),
	}
	if l.failed != "" {
		ws = append(ws, a.para(spBody, a.t(l.failed), colErr, true))
	}
	return a.page(gtx, a.t("login.title"), func(gtx C) D { return a.lines(gtx, ws...) })
}
