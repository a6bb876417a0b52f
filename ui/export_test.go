package ui

import (
	"fmt"
	"reflect"
	"time"
)

// ApplyForTest puts the App in the UI-owned part of st, as Render does
// before its frame.
func (a *App) ApplyForTest(st State) { a.apply(st) }

// SetEntryForTest puts the App back on the Amount screen with entry e.
func (a *App) SetEntryForTest(e string) {
	a.local = ScreenAmount
	a.entry = e
	a.inputAt = a.now()
}

// LaidLabel is what the last frame recorded about one text: its lines and
// whether it overflowed its space.
type LaidLabel = laidLabel

// TraceForTest makes the App record every text it lays out.
func (a *App) TraceForTest() { a.trace = true }

// LaidForTest returns the texts of the last frame (after TraceForTest).
func (a *App) LaidForTest() []LaidLabel { return a.laid }

// DirtyForTest changes every part of the Renderer's App that the customer
// or a phase change can change.
func (r *Renderer) DirtyForTest() {
	a := r.a
	a.lang = a.lang.Other()
	a.local = ScreenCannotPay
	a.supervisor, a.forcePrompt = true, true
	a.entry = "123"
	a.setErr("amount.err.min", "x")
	a.cannot, a.asked = &CannotPayError{Reason: "limit"}, 1
	a.inputAt = a.inputAt.Add(-time.Hour)
	a.outcomeAt = a.outcomeAt.Add(-time.Hour)
	a.dismissed = a.now()
	a.receipt = receiptFailed
	a.call = sessionCall{name: "request", since: a.now(), wait: true}
	a.printing, a.supBusy, a.supOK = true, true, true
	a.sup = SupervisorInfo{Alarms: []string{"x"}}
	a.supAt = a.now()
	a.op = superState{mode: supJournal, gen: 3, busy: true, err: "x", entry: "12", day: "2025-01-01"}
	a.speech = speechState{on: true, held: a.now(), announce: "say.on", saidScreen: ScreenQR}
	a.lastPhase = OutOfService
	a.snap = Snapshot{}
}

// keptFields are the App fields that carry caches or the history of the
// frames from one frame to the next: PrepareDiffForTest does not compare
// them.
var keptFields = map[string]bool{
	"opts": true, "log": true, "th": true, "keyFilters": true, "qr": true,
	"lastScreen": true, "warnDL": true, "warnSince": true, "laidOut": true,
	"shown": true, "cur": true, "clicks": true, "tapWelcome": true,
	"overflow": true, "noWrap": true, "trace": true, "laid": true,
	"pipe": true, "prompt": true, "promptText": true, "promptChoice": true,
}

// PrepareDiffForTest puts the Renderer's App in st as Render does, without
// drawing, and returns the fields (but keptFields) in which it differs
// from a new App put in st as Render did with a new App per frame.
func (r *Renderer) PrepareDiffForTest(st State) []string {
	r.prepare(st)
	fresh := New(r.a.b, Options{Lang: st.Lang, Clock: st.Clock})
	fresh.apply(st)
	var diff []string
	if r.a.opts.Lang != fresh.opts.Lang {
		diff = append(diff, "opts.Lang")
	}
	kv, fv := reflect.ValueOf(r.a).Elem(), reflect.ValueOf(fresh).Elem()
	for i := range kv.NumField() {
		name := kv.Type().Field(i).Name
		if keptFields[name] {
			continue
		}
		if k, f := fmt.Sprintf("%#v", kv.Field(i)), fmt.Sprintf("%#v", fv.Field(i)); k != f {
			diff = append(diff, name+": "+k+" != "+f)
		}
	}
	return diff
}
