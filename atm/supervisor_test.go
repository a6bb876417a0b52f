package atm_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/host"
	"github.com/cardless-atm/cardless/atm/host/hostfake"
	"github.com/cardless-atm/cardless/atm/store"
)

// waitServing moves the rig's clock a status interval at a time (bounded)
// until the terminal's service is in (with reason).
func waitServing(t *testing.T, core *atm.ATM, r *rig, in bool, reason string) {
	t.Helper()
	for range 400 {
		if v := core.View(); v.InService == in && v.Reason == reason {
			return
		}
		r.advance(atm.StatusInterval)
		time.Sleep(2 * time.Millisecond)
	}
	v := core.View()
	t.Fatalf("in service %v (%q), want %v (%q)", v.InService, v.Reason, in, reason)
}

// journalFrom returns the journal entries after seq, in order.
func journalFrom(t *testing.T, db *store.DB, seq uint64) []store.Entry {
	t.Helper()
	var out []store.Entry
	if err := db.View(func(tx *store.Tx) error {
		return tx.JournalRange(seq+1, func(e store.Entry) error { out = append(out, e); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func journalSeq(t *testing.T, db *store.DB) uint64 {
	t.Helper()
	var seq uint64
	if err := db.View(func(tx *store.Tx) (err error) { seq, err = tx.JournalSeq(); return err }); err != nil {
		t.Fatal(err)
	}
	return seq
}

func kinds(es []store.Entry) []string {
	var k []string
	for _, e := range es {
		k = append(k, e.Kind)
	}
	return k
}

// TestOperatorOutOfService: an operator cannot take the terminal out of
// service under a customer (ErrBusy); once out ("operator") no session
// starts; the state is journaled with the operator and survives a
// restart; PutInService brings the terminal back.
func TestOperatorOutOfService(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	ctx := context.Background()
	waitServing(t, r.core, r, true, "")
	r.session(10000)
	if err := r.core.TakeOutOfService(ctx, "op-7"); !errors.Is(err, atm.ErrBusy) {
		t.Fatalf("out of service under a customer: %v, want ErrBusy", err)
	}
	if err := r.core.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.core.PutInService(ctx, "op-7"); !errors.Is(err, atm.ErrNotOutOfService) {
		t.Fatalf("in service when not out: %v", err)
	}
	seq := journalSeq(t, r.db)
	if err := r.core.TakeOutOfService(ctx, "op-7"); err != nil {
		t.Fatal(err)
	}
	if err := r.core.TakeOutOfService(ctx, "op-8"); err != nil { // already out: nothing more
		t.Fatal(err)
	}
	if v := r.core.View(); v.InService || v.Reason != "operator" {
		t.Fatalf("after TakeOutOfService: %+v", v)
	}
	var cp *atm.CannotPayError
	if _, err := r.core.RequestWithdrawal(ctx, 10000); !errors.As(err, &cp) || cp.Reason != "operator" {
		t.Fatalf("withdrawal while out of service: %v", err)
	}
	got := journalFrom(t, r.db, seq)
	if len(got) != 1 || got[0].Kind != "OUT OF SERVICE" || got[0].Data["operator"] != "op-7" {
		t.Fatalf("journal: %+v", got)
	}

	// A restart keeps it out of service.
	stopRig(r)
	core, err := atm.New(r.core.Config())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = core.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitServing(t, core, r, false, "operator")
	v, err := core.PutInService(ctx, "op-9")
	if err != nil || !v.InService {
		t.Fatalf("PutInService: %+v %v", v, err)
	}
	got = journalFrom(t, r.db, seq)
	if k := kinds(got); !slices.Equal(k, []string{"OUT OF SERVICE", "IN SERVICE"}) || got[1].Data["operator"] != "op-9" {
		t.Fatalf("journal %q %+v", k, got)
	}
}

// TestReplenish: refused under a customer and for units that do not fit,
// recording nothing; then the counts are compared with the counters (a
// difference journaled with the operator), the counters and the device
// take the new cassettes, and the terminal stays out of service until the
// operator puts it back.
func TestReplenish(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	ctx := context.Background()
	if res := r.command(r.session(35000), "000001"); res.ResponseCode != "00" {
		t.Fatalf("withdrawal: %+v", res)
	}
	r.settle()
	before, _, _, err := r.core.Supervisor(0)
	if err != nil || len(before) != 2 {
		t.Fatalf("counters %+v %v", before, err)
	}
	c1, c2 := before[0], before[1] // CST1, CST2
	loads := []atm.CassetteLoad{
		{UnitID: "CST1", Denomination: 10000, Currency: "CNY", Notes: 500},
		{UnitID: "CST2", Denomination: 5000, Currency: "CNY", Notes: 300},
	}
	good := atm.Replenishment{Removed: []atm.CassetteCount{{UnitID: "CST1", Notes: c1.Remaining - 2}, {UnitID: "CST2", Notes: c2.Remaining}}, Loaded: loads}

	seq := journalSeq(t, r.db)
	r.session(10000)
	if _, err := r.core.Replenish(ctx, "op-7", good); !errors.Is(err, atm.ErrBusy) {
		t.Fatalf("replenish under a customer: %v, want ErrBusy", err)
	}
	if err := r.core.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]atm.Replenishment{
		"loaded without a count": {Removed: good.Removed[:1], Loaded: loads},
		"counted, not put back":  {Removed: good.Removed, Loaded: loads[:1]},
		"counted twice":          {Removed: []atm.CassetteCount{good.Removed[0], good.Removed[0], good.Removed[1]}, Loaded: loads},
		"foreign currency":       {Removed: good.Removed, Loaded: []atm.CassetteLoad{loads[0], {UnitID: "CST2", Denomination: 5000, Currency: "USD", Notes: 1}}},
		"unit not in the device": {Removed: good.Removed, Loaded: append(slices.Clone(loads), atm.CassetteLoad{UnitID: "CST9", Denomination: 5000, Currency: "CNY", Notes: 1})},
		"nothing put in":         {},
	} {
		if _, err := r.core.Replenish(ctx, "op-7", bad); !errors.Is(err, atm.ErrBadReplenishment) {
			t.Errorf("%s: %v, want ErrBadReplenishment", name, err)
		}
	}
	if k := kinds(journalFrom(t, r.db, seq)); !slices.Equal(k, []string{"SESSION CREATED", "CUSTOMER CANCELLED"}) {
		t.Fatalf("refused replenishments journaled %q", k)
	}
	if after, _, _, _ := r.core.Supervisor(0); !slices.Equal(after, before) {
		t.Fatalf("refused replenishments changed the counters: %+v", after)
	}

	wantRemoved := []atm.RemovedCassette{
		{CassetteCounters: atm.CassetteCounters{UnitID: "CST1", Denomination: 10000, Currency: "CNY", Loaded: c1.Loaded, Dispensed: c1.Dispensed,
			Rejected: c1.Rejected, Retracted: c1.Retracted, Remaining: c1.Remaining}, Counted: c1.Remaining - 2, Difference: -2},
		{CassetteCounters: atm.CassetteCounters{UnitID: "CST2", Denomination: 5000, Currency: "CNY", Loaded: c2.Loaded, Dispensed: c2.Dispensed,
			Rejected: c2.Rejected, Retracted: c2.Retracted, Remaining: c2.Remaining}, Counted: c2.Remaining, Difference: 0},
	}
	// The screen's preview, before the operator confirms: nothing recorded.
	seq = journalSeq(t, r.db)
	if got, err := r.core.CheckRemoved(good.Removed); err != nil || !slices.Equal(got, wantRemoved) {
		t.Fatalf("preview %+v %v", got, err)
	}
	if journalSeq(t, r.db) != seq {
		t.Fatal("the preview journaled")
	}
	rep, err := r.core.Replenish(ctx, "op-7", good)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Removed, wantRemoved) || !slices.Equal(rep.Loaded, loads) || rep.Operator != "op-7" ||
		rep.Device != atm.DeviceCountsSet || !rep.CountersChecked || len(rep.Mismatches) != 0 {
		t.Fatalf("report %+v", rep)
	}
	if d := rep.Differences(); len(d) != 1 || d[0].UnitID != "CST1" {
		t.Fatalf("differences %+v", d)
	}
	got := journalFrom(t, r.db, seq)
	if k := kinds(got); !slices.Equal(k, []string{"OUT OF SERVICE", "CASSETTE REMOVED", "CASSETTE REMOVED", "CASSETTE LOADED", "CASSETTE LOADED", "REPLENISHED"}) {
		t.Fatalf("journal %q", k)
	}
	for _, e := range got {
		if e.Data["operator"] != "op-7" {
			t.Errorf("%s does not name the operator: %+v", e.Kind, e.Data)
		}
	}
	if d := got[1].Data; d["unit"] != "CST1" || d["difference"] != "-2" || d["counted"] != itoa(c1.Remaining-2) || d["counters"] != itoa(c1.Remaining) {
		t.Errorf("CST1 removal journaled as %+v", d)
	}
	if d := got[2].Data; d["unit"] != "CST2" || d["difference"] != "0" {
		t.Errorf("CST2 removal journaled as %+v", d)
	}
	after, _, _, _ := r.core.Supervisor(0)
	wantAfter := []store.UnitCounters{
		{UnitID: "CST1", Denomination: 10000, Currency: "CNY", Loaded: 500, Remaining: 500},
		{UnitID: "CST2", Denomination: 5000, Currency: "CNY", Loaded: 300, Remaining: 300},
	}
	if !slices.Equal(after, wantAfter) {
		t.Fatalf("counters after: %+v", after)
	}
	for _, u := range r.sim.Counters() {
		if want := map[string]int{"CST1": 500, "CST2": 300}[u.ID]; u.Count != want || u.Loaded != want || u.Dispensed != 0 {
			t.Errorf("device unit %+v, want %d notes", u, want)
		}
	}
	if v := r.core.View(); v.InService || v.Reason != "operator" {
		t.Fatalf("after the replenishment: %+v, want out of service for the operator", v)
	}
	if v, err := r.core.PutInService(ctx, "op-7"); err != nil || !v.InService {
		t.Fatalf("PutInService: %+v %v", v, err)
	}
	r.verify()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// noExchange hides the simulator's ExchangeUnits (its own method of that
// name, without the capability's signature, shadows the promoted one): a
// device that keeps its own counts.
type noExchange struct{ *dispensersim.Sim }

func (noExchange) ExchangeUnits() {}

var _ = func() atm.Dispenser {
	var d atm.Dispenser = noExchange{}
	if _, ok := d.(atm.UnitExchanger); ok {
		panic("noExchange still exchanges units")
	}
	return d
}

// TestReplenishDeviceKeepsItsCounts: a device that cannot take new counts
// keeps reporting its own; the comparison after the replenishment finds
// every difference, and the terminal stays out of service ("counters")
// after the operator puts it back, until the counts agree.
func TestReplenishDeviceKeepsItsCounts(t *testing.T) {
	clk, fake := rigClock(t)
	r := newRigOn(t, dispensersim.Faults{}, clk, fake, func(s *dispensersim.Sim) atm.Dispenser { return noExchange{s} })
	ctx := context.Background()
	waitServing(t, r.core, r, true, "")
	rep, err := r.core.Replenish(ctx, "op-7", atm.Replenishment{
		Removed: []atm.CassetteCount{{UnitID: "CST1", Notes: 50}},
		Loaded:  []atm.CassetteLoad{{UnitID: "CST1", Denomination: 10000, Currency: "CNY", Notes: 400}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Device != atm.DeviceOwnCounts || !rep.CountersChecked || !slices.Equal(rep.Mismatches, []string{"CST1: ATM 400, device 50"}) {
		t.Fatalf("report %+v", rep)
	}
	if _, err := r.core.PutInService(ctx, "op-7"); err != nil {
		t.Fatal(err)
	}
	if v := r.core.View(); v.InService || v.Reason != "counters" {
		t.Fatalf("view %+v, want out of service for the counters", v)
	}
	if k := r.journalKinds(); k[len(k)-3] != "REPLENISHED" || k[len(k)-2] != "COUNTERS MISMATCH" || k[len(k)-1] != "IN SERVICE" {
		t.Fatalf("journal ends %q", k[len(k)-3:])
	}
}

// TestBalance: the terminal's figures for the day beside the host's (the
// 0500 under a STAN from the store, journaled with the operator): a day
// with a paid withdrawal, a short dispense taken (partial reversal) and a
// decline balances; a host whose books disagree gets every differing
// figure listed; an advice the host has not acknowledged shows as pending
// with the advice figures differing; without host totals the terminal's
// side comes back with the error.
func TestBalance(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	ctx := context.Background()
	day := r.core.Day(r.clk.Now())
	if res := r.command(r.session(35000), "000001"); res.ResponseCode != "00" || res.Dispensed != 35000 {
		t.Fatalf("paid: %+v", res)
	}
	r.settle()
	r.sim.SetFaults(dispensersim.Faults{ShortDispense: 1})
	if res := r.command(r.session(30000), "000002"); res.ResponseCode != "00" || res.Dispensed != 20000 {
		t.Fatalf("short: %+v", res)
	}
	r.settle()
	r.sim.SetFaults(dispensersim.Faults{})
	r.host.SetFaults(hostfake.Faults{ResponseCode: "51"})
	if res := r.command(r.session(10000), "000003"); res.ResponseCode != "51" {
		t.Fatalf("declined: %+v", res)
	}
	r.host.SetFaults(hostfake.Faults{})

	wantATM := host.Totals{Approved: host.Count{Count: 2, Amount: 65000}, Reversals: host.Count{Count: 1, Amount: 10000},
		Advices: host.Count{Count: 1, Amount: 35000}, NetDebit: 55000}
	seq := journalSeq(t, r.db)
	rep, err := r.core.Balance(ctx, "op-7", day)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ATM != wantATM || rep.CashOut != 55000 || rep.Host == nil || *rep.Host != wantATM || !rep.Balanced() ||
		len(rep.Differences) != 0 || rep.Differences == nil || rep.Day != day || rep.Operator != "op-7" {
		t.Fatalf("balanced day: %+v host %+v", rep, rep.Host)
	}
	calls := r.host.Calls()
	last := calls[len(calls)-1]
	if last.Kind != hostfake.Reconcile || last.Recon.STAN != rep.STAN || last.Recon.Day != day || last.Recon.Currency != "156" || last.Recon.TerminalID != "ATM00001" {
		t.Fatalf("0500 sent as %+v (report STAN %s)", last, rep.STAN)
	}
	got := journalFrom(t, r.db, seq)
	if k := kinds(got); !slices.Equal(k, []string{"BALANCE REQUESTED", "DAILY BALANCE"}) || got[0].Data["stan"] != rep.STAN ||
		got[1].Data["operator"] != "op-7" || got[1].Data["differences"] != "" {
		t.Fatalf("journal %q %+v", k, got)
	}

	// The host's books disagree: no reversal applied.
	r.host.SetFaults(hostfake.Faults{Totals: &host.Totals{Approved: host.Count{Count: 2, Amount: 65000},
		Advices: host.Count{Count: 1, Amount: 35000}, NetDebit: 65000}})
	seq = journalSeq(t, r.db)
	rep, err = r.core.Balance(ctx, "op-7", day)
	if err != nil {
		t.Fatal(err)
	}
	wantDiff := []atm.Difference{{Item: "reversal_count", ATM: 1, Host: 0}, {Item: "reversal_amount", ATM: 10000, Host: 0},
		{Item: "net_debit", ATM: 55000, Host: 65000}, {Item: "cash_out", ATM: 55000, Host: 65000}}
	if !slices.Equal(rep.Differences, wantDiff) || rep.Balanced() {
		t.Fatalf("differences %+v", rep.Differences)
	}
	got = journalFrom(t, r.db, seq)
	if len(got) != 2 || got[1].Kind != "DAILY BALANCE" || got[1].Data["differences"] != "4" || got[1].Data["operator"] != "op-7" || got[1].Data["host_net"] != "65000" {
		t.Fatalf("journal %+v", got)
	}

	// An advice the host has not acknowledged yet.
	r.host.SetFaults(hostfake.Faults{SAFErr: host.ErrOutcomeUnknown})
	if res := r.command(r.session(5000), "000004"); res.ResponseCode != "00" {
		t.Fatalf("paid: %+v", res)
	}
	rep, err = r.core.Balance(ctx, "op-7", day)
	if err != nil {
		t.Fatal(err)
	}
	wantDiff = []atm.Difference{{Item: "advice_count", ATM: 2, Host: 1}, {Item: "advice_amount", ATM: 40000, Host: 35000}}
	if !slices.Equal(rep.Differences, wantDiff) || rep.PendingAdvices != (host.Count{Count: 1, Amount: 5000}) || rep.CashOut != 60000 {
		t.Fatalf("pending advice: differences %+v pending %+v cash out %d", rep.Differences, rep.PendingAdvices, rep.CashOut)
	}

	// No host totals: the terminal's side, and why.
	r.host.SetFaults(hostfake.Faults{ReconErr: host.ErrUnavailable, SAFErr: host.ErrOutcomeUnknown})
	rep, err = r.core.Balance(ctx, "op-7", day)
	if !errors.Is(err, host.ErrUnavailable) || rep == nil || rep.Host != nil || rep.HostError == "" || rep.ATM.Approved.Count != 3 {
		t.Fatalf("no host: %+v %v", rep, err)
	}
	if _, err := r.core.Balance(ctx, "op-7", "21.11.2026"); !errors.Is(err, atm.ErrBadDay) {
		t.Fatalf("a malformed day: %v", err)
	}
	far := r.clk.Now().AddDate(0, -7, 0).In(time.UTC).Format(time.DateOnly)
	if _, err := r.core.Balance(ctx, "op-7", far); !errors.Is(err, atm.ErrBadDay) {
		t.Fatalf("a day 7 months back: %v", err)
	}
	if _, err := r.core.Balance(ctx, "", day); err == nil {
		t.Fatal("a balance without an operator")
	}
}

// TestSearchJournal: the journal entries of a session (by its short ID)
// and of a day, the newest up to the limit.
func TestSearchJournal(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	ctx := context.Background()
	s := r.session(20000)
	if err := r.core.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.core.TakeOutOfService(ctx, "op-7"); err != nil {
		t.Fatal(err)
	}
	day := r.core.Day(r.clk.Now())
	got, err := r.core.SearchJournal(strings.ToLower(s.ID[:8]), day, 10)
	if err != nil || !slices.Equal(kinds(got), []string{"SESSION CREATED", "CUSTOMER CANCELLED"}) {
		t.Fatalf("by session: %q %v", kinds(got), err)
	}
	if got, err := r.core.SearchJournal("", day, 2); err != nil || !slices.Equal(kinds(got), []string{"CUSTOMER CANCELLED", "OUT OF SERVICE"}) {
		t.Fatalf("by day, the newest 2: %q %v", kinds(got), err)
	}
	next := r.clk.Now().AddDate(0, 0, 1).In(r.core.Config().DayZone).Format(time.DateOnly)
	if got, err := r.core.SearchJournal("", next, 10); err != nil || len(got) != 0 {
		t.Fatalf("the next day: %q %v", kinds(got), err)
	}
	if _, err := r.core.SearchJournal("ABC", "", 10); err == nil {
		t.Fatal("a 3-character session ID searched")
	}
}

// TestReplenishDeviceRefuses: a dispenser that refuses the new counts
// (offline) leaves them in the counters only: the report says so, the
// journal records it, and the terminal stays out of service; the operator
// replenishes again once the device answers, counting the cassettes just
// put in, and the counts agree.
func TestReplenishDeviceRefuses(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	ctx := context.Background()
	waitServing(t, r.core, r, true, "")
	r.sim.SetFaults(dispensersim.Faults{Offline: true})
	load := []atm.CassetteLoad{{UnitID: "CST2", Denomination: 5000, Currency: "CNY", Notes: 250}}
	rep, err := r.core.Replenish(ctx, "op-7", atm.Replenishment{Removed: []atm.CassetteCount{{UnitID: "CST2", Notes: 50}}, Loaded: load})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Device != atm.DeviceCountsFail || rep.DeviceError == "" || !slices.Equal(rep.Mismatches, []string{"CST2: ATM 250, device 50"}) {
		t.Fatalf("report %+v", rep)
	}
	if k := r.journalKinds(); !slices.Equal(k[len(k)-3:], []string{"CASSETTE LOADED", "REPLENISHED", "COUNTERS MISMATCH"}) {
		t.Fatalf("journal ends %q", k[len(k)-3:])
	}
	if v := r.core.View(); v.InService {
		t.Fatalf("in service with the counts not in the device: %+v", v)
	}
	r.sim.SetFaults(dispensersim.Faults{})
	rep, err = r.core.Replenish(ctx, "op-7", atm.Replenishment{Removed: []atm.CassetteCount{{UnitID: "CST2", Notes: 250}}, Loaded: load})
	if err != nil || rep.Device != atm.DeviceCountsSet || !rep.CountersChecked || len(rep.Mismatches) != 0 || len(rep.Differences()) != 0 {
		t.Fatalf("second replenishment: %+v %v", rep, err)
	}
	if v, err := r.core.PutInService(ctx, "op-7"); err != nil || !v.InService {
		t.Fatalf("PutInService: %+v %v", v, err)
	}
}
