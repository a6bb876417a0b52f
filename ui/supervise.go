package ui

import (
	"strconv"
	"time"

	"gioui.org/layout"
	"gioui.org/text"

	"github.com/cardless-atm/cardless/ui/i18n"
)

// The supervisor mode: the status screen (ScreenSupervisor) and, when the
// Backend has Operations, its four work screens. Every action runs off the
// window's goroutine (opCall); its answer comes back to the screen that
// asked, or is dropped when the operator has left it.

// supMode is the supervisor screen shown.
type supMode int

const (
	supStatus supMode = iota
	supReplenish
	supInDoubt
	supBalance
	supJournal
)

// The steps of a replenishment.
const (
	stepRemoved = iota // count the notes left in each removed cassette
	stepLoaded         // the cassettes loaded: notes (and denominations)
	stepReport         // the report
)

// journalLines is how many journal entries the journal screen shows.
const journalLines = 10

// superState is the supervisor mode's state (App.op).
type superState struct {
	mode  supMode
	gen   int    // counts screen changes, so a late answer finds its own
	busy  bool   // an Operations call is in flight
	err   string // the last action's error, shown in red ("" none)
	done  i18n.Key
	entry string // digits typed
	sel   int    // the selected row

	// replenishment
	step    int
	units   []UnitInfo // the cassettes, as the status screen last showed
	counted map[string]int
	loads   []UnitLoad
	denom   bool // typing the selected load's denomination (whole units)
	report  *ReplenishReport

	inDoubt []InDoubtInfo
	confirm bool // Settle asked once: the next press settles

	balance *BalanceReport
	day     string // the day shown ("" today)

	journal []JournalLine
	session string // the journal's filter ("" every entry)

	tests []DeviceInfo // the last device tests' outcomes
}

func (a *App) ops() (Operations, bool) {
	o, ok := a.b.(Operations)
	return o, ok
}

// opCall runs fn off the window's goroutine and applies its answer if the
// operator is still on the same screen.
func (a *App) opCall(name string, fn func(Operations) func()) {
	o, ok := a.ops()
	if !ok || a.op.busy {
		if a.op.busy {
			a.log.Info("ui input ignored: an operator action is in flight", "pressed", name)
		}
		return
	}
	a.op.busy, a.op.err, a.op.done = true, "", ""
	gen := a.op.gen
	a.background(func() func() {
		apply := fn(o)
		return func() {
			if a.op.gen != gen {
				return
			}
			a.op.busy = false
			apply()
		}
	})
}

// opErr shows an action's error (nil: none) and logs it.
func (a *App) opErr(what string, err error) {
	if err != nil {
		a.op.err = err.Error()
		a.log.Warn("ui operator action failed", "action", what, "operator", a.operator, "err", err)
	}
}

// supGo switches the supervisor screen, dropping answers meant for the
// one left.
func (a *App) supGo(m supMode) {
	a.op = superState{mode: m, gen: a.op.gen + 1, units: a.op.units}
	switch m {
	case supInDoubt:
		a.loadInDoubt()
	case supBalance:
		a.loadBalance("")
	case supJournal:
		a.loadJournal("", "")
	}
}

func (a *App) supScreen() Screen {
	return [...]Screen{ScreenSupervisor, ScreenReplenish, ScreenInDoubt, ScreenBalance, ScreenJournal}[a.op.mode]
}

func (a *App) supDigit(d byte) {
	if a.op.entry == "0" {
		a.op.entry = "" // no leading zeros; "0" alone is a count
	}
	if len(a.op.entry) < maxEntryDigits {
		a.op.entry += string(d)
	}
	a.op.confirm = false
}

func (a *App) supClear() { a.op.entry, a.op.confirm = "", false }

// entryInt is the typed number (false: nothing typed).
func (a *App) entryInt() (int, bool) {
	n, err := strconv.Atoi(a.op.entry)
	return n, err == nil
}

// setService takes the terminal out of service or puts it back.
func (a *App) setService(in bool, then func()) {
	op := a.operator
	a.opCall("service", func(o Operations) func() {
		err := o.SetInService(op, in)
		return func() {
			a.opErr("service", err)
			a.supAt = time.Time{} // re-read the status now
			if err == nil && then != nil {
				then()
			}
		}
	})
}

// startReplenish takes the terminal out of service, then asks for the
// notes left in each cassette.
func (a *App) startReplenish() {
	units := a.sup.Units
	a.setService(false, func() {
		a.supGo(supReplenish)
		a.op.units, a.op.counted = units, map[string]int{}
		for _, u := range units {
			a.op.loads = append(a.op.loads, UnitLoad{ID: u.ID, Currency: u.Currency, Denom: u.Denom})
		}
	})
}

// replenishEnter stores the typed number in the selected row and selects
// the next one.
func (a *App) replenishEnter() {
	n, ok := a.entryInt()
	if !ok || a.op.sel >= len(a.op.units) {
		return
	}
	switch {
	case a.op.step == stepRemoved:
		a.op.counted[a.op.units[a.op.sel].ID] = n
	case a.op.denom:
		if n == 0 {
			return
		}
		a.op.loads[a.op.sel].Denom = int64(n) * pow10(a.snap.Exponent)
		a.op.denom = false
	default:
		a.op.loads[a.op.sel].Notes = n
	}
	a.op.entry = ""
	a.op.sel = (a.op.sel + 1) % len(a.op.units)
}

func (a *App) replenishNext() {
	switch a.op.step {
	case stepRemoved:
		if len(a.op.counted) < len(a.op.units) {
			a.op.done = "rep.countall"
			return
		}
		a.op.step, a.op.sel, a.op.entry, a.op.done = stepLoaded, 0, "", ""
	case stepLoaded:
		var removed []UnitCount
		for _, u := range a.op.units {
			removed = append(removed, UnitCount{ID: u.ID, Notes: a.op.counted[u.ID]})
		}
		loads := append([]UnitLoad(nil), a.op.loads...)
		op := a.operator
		a.opCall("replenish", func(o Operations) func() {
			r, err := o.Replenish(op, removed, loads)
			return func() {
				a.opErr("replenish", err)
				if err == nil {
					a.op.report, a.op.step = &r, stepReport
					a.supAt = time.Time{}
				}
			}
		})
	}
}

func (a *App) loadInDoubt() {
	a.opCall("in-doubt", func(o Operations) func() {
		list, err := o.InDoubt()
		return func() {
			a.opErr("in-doubt", err)
			a.op.inDoubt = list
			a.op.sel = min(a.op.sel, max(len(list)-1, 0))
		}
	})
}

// settle asks for a confirmation, then settles the selected session as
// paid the typed amount (whole units).
func (a *App) settle() {
	n, ok := a.entryInt()
	if !ok || a.op.sel >= len(a.op.inDoubt) {
		a.op.done = "doubt.typepaid"
		return
	}
	if !a.op.confirm {
		a.op.confirm = true
		return
	}
	s, paid, op := a.op.inDoubt[a.op.sel], int64(n)*pow10(a.snap.Exponent), a.operator
	a.op.confirm = false
	a.opCall("settle", func(o Operations) func() {
		err := o.Settle(op, s.Session, paid)
		return func() {
			a.opErr("settle", err)
			if err == nil {
				a.supAt = time.Time{}
				a.loadInDoubt()
				a.op.entry, a.op.done = "", "doubt.settled"
			}
		}
	})
}

func (a *App) loadBalance(day string) {
	a.opCall("balance", func(o Operations) func() {
		r, err := o.Balance(a.operator, day)
		return func() {
			a.opErr("balance", err)
			if err == nil {
				a.op.balance, a.op.day = &r, r.Day
			}
		}
	})
}

func (a *App) loadJournal(day, session string) {
	a.opCall("journal", func(o Operations) func() {
		list, err := o.Journal(day, session, journalLines)
		return func() {
			a.opErr("journal", err)
			if err == nil {
				a.op.journal, a.op.day, a.op.session = list, day, session
				a.op.sel = max(len(list)-1, 0)
			}
		}
	})
}

// shiftDay is day (YYYY-MM-DD; "" today) moved by n days.
func (a *App) shiftDay(day string, n int) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		t = a.now()
	}
	return t.AddDate(0, 0, n).Format(time.DateOnly)
}

// testDevices runs the device tests and shows their outcomes on the
// status screen.
func (a *App) testDevices() {
	op := a.operator
	a.opCall("test", func(o Operations) func() {
		res := o.TestDevices(op)
		return func() {
			a.op.tests = res
			a.supAt = time.Time{}
		}
	})
}

// printReport prints lines, saying when it is done or why it is not.
func (a *App) printReport(lines []string) {
	a.opCall("print", func(o Operations) func() {
		err := o.PrintReport(lines)
		return func() {
			a.opErr("print", err)
			if err == nil {
				a.op.done = "sup.printed"
			}
		}
	})
}

func (a *App) unitName(id, currency string, denom int64) string {
	return id + "  " + i18n.Amount(a.lang, denom, currency, a.snap.Exponent)
}

// reportLines are the replenishment report's lines, as shown and printed.
func (a *App) replenishLines(r *ReplenishReport) []string {
	lines := []string{a.t("rep.report", a.snap.TerminalID, r.Time.Format("2006-01-02 15:04"), a.operator)}
	for _, u := range r.Removed {
		lines = append(lines, a.t("rep.removedline", a.unitName(u.ID, u.Currency, u.Denom), u.Expected, u.Counted, u.Counted-u.Expected))
	}
	for _, u := range r.Loaded {
		lines = append(lines, a.t("rep.loadedline", a.unitName(u.ID, u.Currency, u.Denom), u.Notes))
	}
	return append(lines, r.Problems...)
}

func (a *App) balanceLines(r *BalanceReport) []string {
	lines := []string{a.t("bal.report", a.snap.TerminalID, r.Day)}
	for _, l := range r.Lines {
		v := func(n int64) string {
			if l.Money {
				return a.money(n)
			}
			return strconv.FormatInt(n, 10)
		}
		line := a.t("bal.line", a.t(i18n.Key("bal."+l.Item)), v(l.ATM), v(l.Host))
		if l.ATM != l.Host {
			line += "  " + a.t("bal.diff", v(l.ATM-l.Host))
		}
		lines = append(lines, line)
	}
	if r.PendingAdvices+r.PendingReversals+r.InDoubt+r.OutcomeUnknown > 0 {
		lines = append(lines, a.t("bal.explain", r.PendingAdvices, r.PendingReversals, r.InDoubt, r.OutcomeUnknown))
	}
	if r.HostErr != "" {
		lines = append(lines, a.t("bal.hosterr", r.HostErr))
	}
	return lines
}

// supPage lays out the rows of a supervisor work screen, then its
// messages: row mark (-1: none) marked as selected, the rows red says in
// red, and the last action's outcome.
func (a *App) supPage(gtx C, title string, rows []string, mark int, red func(i int) bool) D {
	ws := make([]layout.Widget, 0, len(rows)+3)
	for i, r := range rows {
		col, bold := colText, false
		if i == mark {
			r, bold = "▶ "+r, true
		}
		if red != nil && red(i) {
			col = colErr
		}
		ws = append(ws, func(gtx C) D { return a.label(gtx, spSmall, r, col, bold, text.Start, descText) })
	}
	if a.op.busy {
		ws = append(ws, func(gtx C) D {
			return a.label(gtx, spSmall, a.t("super.loading"), colAccent, false, text.Start, descText)
		})
	}
	if a.op.done != "" {
		ws = append(ws, func(gtx C) D { return a.label(gtx, spBody, a.t(a.op.done), colAccent, true, text.Start, descText) })
	}
	if a.op.err != "" {
		ws = append(ws, func(gtx C) D {
			return a.label(gtx, spSmall, a.t("sup.error", a.op.err), colErr, true, text.Start, descText)
		})
	}
	return a.page(gtx, title, func(gtx C) D {
		fc := make([]layout.FlexChild, len(ws))
		for i, w := range ws {
			fc[i] = layout.Rigid(func(gtx C) D { return layout.Inset{Bottom: 4, Left: 16}.Layout(gtx, w) })
		}
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx, fc...)
	})
}

// rowChoices offers F1-F4 to select one of n rows.
func (a *App) rowChoices(n int) {
	for i := range min(n, 4) {
		a.add(choice{id: "row" + strconv.Itoa(i), label: a.t("sup.row", i+1), fkey: i + 1, act: func() {
			a.op.sel, a.op.entry, a.op.confirm, a.op.denom = i, "", false, false
		}})
	}
}

func (a *App) back() { a.supGo(supStatus) }

func (a *App) entryShown() string {
	if a.op.entry == "" {
		return "—"
	}
	return a.op.entry
}

func (a *App) replenishScreen(gtx C) D {
	r := &a.op
	a.add(choice{id: "sup.back", label: a.t("btn.back"), fkey: 7, esc: true, act: a.back})
	var rows []string
	switch r.step {
	case stepRemoved, stepLoaded:
		a.rowChoices(len(r.units))
		a.add(choice{id: "sup.enter", label: a.t("key.enter"), enter: true, act: a.replenishEnter})
		if r.step == stepRemoved {
			rows = append(rows, a.t("rep.count"))
			a.add(choice{id: "rep.next", label: a.t("btn.next"), fkey: 8, primary: true, act: a.replenishNext})
		} else {
			rows = append(rows, a.t("rep.load"))
			a.add(choice{id: "rep.denom", label: a.t("rep.denombtn"), fkey: 5, act: func() { r.denom, r.entry = !r.denom, "" }})
			a.add(choice{id: "rep.do", label: a.t("rep.do"), fkey: 8, primary: true, act: a.replenishNext})
		}
		for i, u := range r.units {
			var line string
			if r.step == stepRemoved {
				got := "—"
				if n, ok := r.counted[u.ID]; ok {
					got = strconv.Itoa(n)
				}
				if i == r.sel && r.entry != "" {
					got = r.entry
				}
				line = a.t("rep.countline", a.unitName(u.ID, u.Currency, u.Denom), u.Count, got)
			} else {
				l := r.loads[i]
				notes := strconv.Itoa(l.Notes)
				if i == r.sel && r.entry != "" && !r.denom {
					notes = r.entry
				}
				denom := i18n.Amount(a.lang, l.Denom, l.Currency, a.snap.Exponent)
				if i == r.sel && r.denom {
					denom = a.t("rep.denomentry", a.entryShown())
				}
				line = a.t("rep.loadline", l.ID, denom, notes)
			}
			rows = append(rows, line)
		}
		// rows[0] is the instruction: the selection counts from rows[1].
		return a.supPageRows(gtx, a.t("rep.title"), rows)
	default:
		a.add(choice{id: "rep.print", label: a.t("btn.print"), fkey: 6, act: func() { a.printReport(a.replenishLines(r.report)) }})
		a.add(choice{id: "rep.inservice", label: a.t("sup.inservice"), fkey: 8, primary: true, act: func() { a.setService(true, a.back) }})
		rows = a.replenishLines(r.report)
		diff := map[int]bool{}
		for i, u := range r.report.Removed {
			diff[i+1] = u.Counted != u.Expected
		}
		return a.supPage(gtx, a.t("rep.title"), rows, -1, func(i int) bool { return diff[i] })
	}
}

// supPageRows is supPage for screens whose first row is an instruction
// and the others the selectable rows.
func (a *App) supPageRows(gtx C, title string, rows []string) D {
	return a.supPage(gtx, title, rows, a.op.sel+1, nil)
}

func (a *App) inDoubtScreen(gtx C) D {
	r := &a.op
	a.add(choice{id: "sup.back", label: a.t("btn.back"), fkey: 7, esc: true, act: a.back})
	rows := []string{a.t("doubt.help")}
	if len(r.inDoubt) == 0 && !r.busy {
		rows[0] = a.t("doubt.none")
		return a.supPage(gtx, a.t("doubt.title"), rows, -1, nil)
	}
	a.rowChoices(len(r.inDoubt))
	label := a.t("doubt.settle")
	if r.confirm {
		label = a.t("doubt.confirmbtn")
	}
	a.add(choice{id: "doubt.settle", label: label, fkey: 8, enter: true, primary: true, act: a.settle})
	for i, s := range r.inDoubt {
		line := a.t("doubt.line", s.Time.Format("01-02 15:04"), shortID(s.Session), a.money(s.Amount))
		if i == r.sel {
			paid := "—"
			if r.entry != "" {
				paid = a.money(mustInt(r.entry) * pow10(a.snap.Exponent))
			}
			line += "  " + a.t("doubt.paid", paid)
		}
		rows = append(rows, line)
	}
	if r.confirm && r.sel < len(r.inDoubt) {
		rows = append(rows, a.t("doubt.confirm", shortID(r.inDoubt[r.sel].Session), a.money(mustInt(r.entry)*pow10(a.snap.Exponent))))
	}
	return a.supPageRows(gtx, a.t("doubt.title"), rows)
}

func mustInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func (a *App) balanceScreen(gtx C) D {
	r := &a.op
	a.add(choice{id: "sup.back", label: a.t("btn.back"), fkey: 7, esc: true, act: a.back})
	a.add(choice{id: "bal.prev", label: a.t("btn.prevday"), fkey: 1, act: func() { a.loadBalance(a.shiftDay(r.day, -1)) }})
	a.add(choice{id: "bal.next", label: a.t("btn.nextday"), fkey: 2, act: func() { a.loadBalance(a.shiftDay(r.day, 1)) }})
	if r.balance == nil {
		return a.supPage(gtx, a.t("bal.title"), nil, -1, nil)
	}
	lines := a.balanceLines(r.balance)
	a.add(choice{id: "bal.print", label: a.t("btn.print"), fkey: 6, act: func() { a.printReport(lines) }})
	return a.supPage(gtx, a.t("bal.title"), lines, -1, func(i int) bool {
		if i == 0 {
			return false
		}
		if i-1 < len(r.balance.Lines) {
			l := r.balance.Lines[i-1]
			return l.ATM != l.Host
		}
		return r.balance.HostErr != "" && i == len(lines)-1 // the host's error
	})
}

func (a *App) journalScreen(gtx C) D {
	r := &a.op
	a.add(choice{id: "sup.back", label: a.t("btn.back"), fkey: 7, esc: true, act: a.back})
	a.add(choice{id: "jr.prev", label: a.t("btn.prevday"), fkey: 1, act: func() { a.loadJournal(a.shiftDay(r.day, -1), r.session) }})
	a.add(choice{id: "jr.next", label: a.t("btn.nextday"), fkey: 2, act: func() { a.loadJournal(a.shiftDay(r.day, 1), r.session) }})
	a.add(choice{id: "jr.up", label: a.t("btn.up"), fkey: 3, act: func() { r.sel = max(r.sel-1, 0) }})
	a.add(choice{id: "jr.down", label: a.t("btn.down"), fkey: 4, act: func() { r.sel = min(r.sel+1, max(len(r.journal)-1, 0)) }})
	if r.session != "" {
		a.add(choice{id: "jr.all", label: a.t("jr.all"), fkey: 5, act: func() { a.loadJournal(r.day, "") }})
	} else if r.sel < len(r.journal) && r.journal[r.sel].Session != "" {
		s := r.journal[r.sel].Session
		a.add(choice{id: "jr.session", label: a.t("jr.session"), fkey: 5, act: func() { a.loadJournal(r.day, s) }})
	}
	day := r.day
	if day == "" {
		day = a.now().Format(time.DateOnly)
	}
	head := a.t("jr.day", day)
	if r.session != "" {
		head = a.t("jr.daysession", day, r.session)
	}
	rows := []string{head}
	for _, e := range r.journal {
		l := e.Time.Format("15:04:05") + "  " + i18n.JournalKind(a.lang, e.Kind)
		if e.Session != "" {
			l += "  " + e.Session
		}
		rows = append(rows, l)
	}
	if len(r.journal) == 0 {
		if !r.busy {
			rows = append(rows, a.t("jr.none"))
		}
		return a.supPage(gtx, a.t("jr.title"), rows, -1, nil)
	}
	return a.supPageRows(gtx, a.t("jr.title"), rows)
}
