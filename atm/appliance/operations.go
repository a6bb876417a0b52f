package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/receipt/escpos"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/ui"
)

// The supervisor screens' actions (ui.Operations) map onto the same core
// operations as the control endpoint's /operator routes; the core journals
// each with the operator logged in on the kiosk. The screens call them off
// the window's goroutine; each is bounded here.

var _ ui.Operations = (*Backend)(nil)

// Bounds of the supervisor's actions: a device (reset, new counts) or the
// host (the 0500) may take their time, the screen waits for them.
const (
	opTimeout        = 30 * time.Second
	replenishTimeout = 90 * time.Second
)

// SetInService takes the terminal out of service (refused while a
// customer's session is in progress) or puts it back.
func (b *Backend) SetInService(operator string, in bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if in {
		_, err := b.core.PutInService(ctx, operator)
		return err
	}
	return b.core.TakeOutOfService(ctx, operator)
}

// InDoubt lists the sessions waiting for an operator's count.
func (b *Backend) InDoubt() ([]ui.InDoubtInfo, error) {
	list, err := b.core.InDoubt()
	out := make([]ui.InDoubtInfo, 0, len(list))
	for _, s := range list {
		out = append(out, ui.InDoubtInfo{Session: s.ID, Time: s.Created.In(b.cfg.DayZone), Amount: s.Amount, Reason: s.Reason})
	}
	return out, err
}

// Settle records what the operator counted as paid.
func (b *Backend) Settle(operator, session string, paid int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err := b.core.Settle(ctx, session, paid, operator)
	return err
}

// Replenish records a replenishment and returns its report.
func (b *Backend) Replenish(operator string, removed []ui.UnitCount, loaded []ui.UnitLoad) (ui.ReplenishReport, error) {
	var r atm.Replenishment
	for _, c := range removed {
		r.Removed = append(r.Removed, atm.CassetteCount{UnitID: c.ID, Notes: int64(c.Notes)})
	}
	for _, l := range loaded {
		r.Loaded = append(r.Loaded, atm.CassetteLoad{UnitID: l.ID, Denomination: l.Denom, Currency: l.Currency, Notes: int64(l.Notes)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), replenishTimeout)
	defer cancel()
	rep, err := b.core.Replenish(ctx, operator, r)
	if err != nil {
		return ui.ReplenishReport{}, err
	}
	out := ui.ReplenishReport{Time: rep.Time}
	for _, c := range rep.Removed {
		out.Removed = append(out.Removed, ui.RemovedUnit{ID: c.UnitID, Currency: c.Currency, Denom: c.Denomination,
			Expected: int(c.Remaining), Counted: int(c.Counted)})
	}
	for _, l := range rep.Loaded {
		out.Loaded = append(out.Loaded, ui.UnitLoad{ID: l.UnitID, Currency: l.Currency, Denom: l.Denomination, Notes: int(l.Notes)})
	}
	if b.exportDir != "" {
		if name, err := exportReport(b.exportDir, rep); err != nil {
			out.Problems = append(out.Problems, "report not exported: "+err.Error())
		} else {
			out.Problems = append(out.Problems, "report exported: "+name)
		}
	}
	if rep.DeviceError != "" {
		out.Problems = append(out.Problems, "dispenser refused the new counts: "+rep.DeviceError)
	}
	for _, m := range rep.Mismatches {
		out.Problems = append(out.Problems, "counters differ from the dispenser's: "+m)
	}
	return out, nil
}

// balanceItems are the figures of the balancing, in the order shown.
var balanceItems = []struct {
	item  string
	money bool
	atm   func(*atm.BalanceReport) int64
	host  func(*atm.BalanceReport) int64
}{
	{"approved_count", false, func(r *atm.BalanceReport) int64 { return r.ATM.Approved.Count }, func(r *atm.BalanceReport) int64 { return r.Host.Approved.Count }},
	{"approved_amount", true, func(r *atm.BalanceReport) int64 { return r.ATM.Approved.Amount }, func(r *atm.BalanceReport) int64 { return r.Host.Approved.Amount }},
	{"reversal_count", false, func(r *atm.BalanceReport) int64 { return r.ATM.Reversals.Count }, func(r *atm.BalanceReport) int64 { return r.Host.Reversals.Count }},
	{"reversal_amount", true, func(r *atm.BalanceReport) int64 { return r.ATM.Reversals.Amount }, func(r *atm.BalanceReport) int64 { return r.Host.Reversals.Amount }},
	{"advice_count", false, func(r *atm.BalanceReport) int64 { return r.ATM.Advices.Count }, func(r *atm.BalanceReport) int64 { return r.Host.Advices.Count }},
	{"advice_amount", true, func(r *atm.BalanceReport) int64 { return r.ATM.Advices.Amount }, func(r *atm.BalanceReport) int64 { return r.Host.Advices.Amount }},
	{"net_debit", true, func(r *atm.BalanceReport) int64 { return r.ATM.NetDebit }, func(r *atm.BalanceReport) int64 { return r.Host.NetDebit }},
	{"cash_out", true, func(r *atm.BalanceReport) int64 { return r.CashOut }, func(r *atm.BalanceReport) int64 { return r.Host.NetDebit }},
}

// Balance balances a business day ("" today) for operator. When the host
// cannot answer, the terminal's side comes back with the host's figures
// at zero and HostErr saying why.
func (b *Backend) Balance(operator, day string) (ui.BalanceReport, error) {
	if day == "" {
		day = b.core.Day(b.cfg.Clock.Now())
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout+5*time.Second)
	defer cancel()
	rep, err := b.core.Balance(ctx, operator, day)
	if rep == nil {
		return ui.BalanceReport{}, err
	}
	out := ui.BalanceReport{Day: rep.Day, HostErr: rep.HostError,
		PendingAdvices: int(rep.PendingAdvices.Count), PendingReversals: int(rep.PendingReversals.Count),
		InDoubt: rep.InDoubt, OutcomeUnknown: rep.OutcomeUnknown}
	if out.HostErr == "" && err != nil {
		out.HostErr = err.Error()
	}
	for _, it := range balanceItems {
		l := ui.BalanceLine{Item: it.item, Money: it.money, ATM: it.atm(rep)}
		if rep.Host != nil {
			l.Host = it.host(rep)
		}
		out.Lines = append(out.Lines, l)
	}
	return out, nil
}

// Journal returns the last entries of a business day ("" today), of one
// session when session is not "".
func (b *Backend) Journal(day, session string, max int) ([]ui.JournalLine, error) {
	if day == "" {
		day = b.core.Day(b.cfg.Clock.Now())
	}
	entries, err := b.core.SearchJournal(session, day, max)
	out := make([]ui.JournalLine, 0, len(entries))
	for _, e := range entries {
		out = append(out, ui.JournalLine{Time: e.Time.In(b.cfg.DayZone), Seq: e.Seq, Kind: e.Kind, Session: shortRef(e.SessionID)})
	}
	return out, err
}

// PrintReport prints a supervisor's report on the receipt printer and
// journals that it did (or why not).
func (b *Backend) PrintReport(lines []string) error {
	if b.printer == nil {
		return ErrNoPrinter
	}
	data, err := escpos.EncodeLines(lines)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err = b.printer.p.Print(ctx, data)
		cancel()
		b.printer.refresh(context.Background())
	}
	kind, text := "REPORT PRINTED", "supervisor report printed: "
	if err != nil {
		kind, text = "REPORT NOT PRINTED", "supervisor report not printed ("+err.Error()+"): "
	}
	if len(lines) > 0 {
		text += lines[0]
	}
	if jerr := b.store.UpdateLabeled("report", func(tx *store.Tx) error {
		_, err := tx.AppendJournal(store.Entry{Kind: kind, Text: text})
		return err
	}); jerr != nil && err == nil {
		err = jerr
	}
	return err
}

// TestDevices resets the dispenser (journaled with the operator, refused
// while a session is in doubt or in progress) and prints a test page on
// the receipt printer, if there is one, and says how each did.
func (b *Backend) TestDevices(operator string) []ui.DeviceInfo {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	d := ui.DeviceInfo{Name: "dispenser", State: "ok"}
	if err := b.core.ResetDispenser(ctx, operator); err != nil {
		d.State = err.Error()
	}
	out := []ui.DeviceInfo{d}
	if b.printer != nil {
		p := ui.DeviceInfo{Name: "printer", State: "ok"}
		page := []string{"Printer test page", "Terminal " + b.cfg.TerminalID, b.cfg.Clock.Now().In(b.cfg.DayZone).Format("2006-01-02 15:04:05"), "Operator " + operator}
		if err := b.PrintReport(page); err != nil {
			p.State = err.Error()
		}
		out = append(out, p)
	}
	return out
}

// exportReport writes a replenishment report as JSON into dir, durably
// (writeDurably, as the journal's daily export), and returns
// its name: <terminal>-replenishment-<YYYYMMDD-HHMMSS>.json.
func exportReport(dir string, rep *atm.ReplenishmentReport) (string, error) {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s-replenishment-%s.json", rep.TerminalID, rep.Time.Format("20060102-150405"))
	return name, writeDurably(dir, name, func(w io.Writer) error {
		_, err := w.Write(append(data, '\n'))
		return err
	})
}
