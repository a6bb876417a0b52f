package atm

import (
	"fmt"
	"strings"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/host"
)

// The supervisor's reports as plain lines, in English ("en") or Chinese
// ("zh"), for the receipt or journal printer and for a text export. The
// JSON of the report structs is the machine-readable export.

// ReportLanguages are the languages Lines accepts.
var ReportLanguages = []string{"en", "zh"}

var reportWords = map[string]map[string]string{
	"en": {
		"replenishment": "REPLENISHMENT REPORT", "balance": "DAILY BALANCE", ":": ": ",
		"terminal": "Terminal", "time": "Time", "operator": "Operator", "day": "Business day",
		"removed": "Cassettes taken out", "loaded": "Cassettes put in", "none": "(none)",
		"counters": "counters %d, counted %d", "difference": "DIFFERENCE %+d notes (%s)", "agree": "agrees",
		"notes": "%d notes", "total loaded": "Total put in",
		"device": "Dispenser", DeviceCountsSet: "took the new counts", DeviceOwnCounts: "keeps its own counts",
		DeviceCountsFail: "refused the new counts: %s",
		"check":          "Counters and dispenser", "check ok": "agree", "check no": "differ: %s", "check later": "compared at the dispenser's next report",
		"col": "%-16s %15s %15s", "col head": "ATM", "col host": "HOST",
		"approved": "Approved", "reversals": "Reversals", "advices": "Advices", "net": "Net debit", "cash out": "Cash out",
		"count": " count", "amount": " amount",
		"no host": "No host totals: %s", "balanced": "BALANCED", "differences": "DIFFERENCES: %d",
		"pending advices": "Advices not yet acknowledged: %d (%s)", "pending reversals": "Reversals not yet acknowledged: %d (%s)",
		"in doubt": "Sessions in doubt: %d", "unknown": "Authorizations without an answer (reversed): %d",
		"units": "Cassette counters (since the last replenishment)",
		"unit":  "%s %s: loaded %d, dispensed %d, rejected %d, retracted %d, left %d",
	},
	"zh": {
		"replenishment": "加钞报告", "balance": "日终轧账", ":": "：",
		"terminal": "终端号", "time": "时间", "operator": "操作员", "day": "营业日",
		"removed": "取出的钞箱", "loaded": "装入的钞箱", "none": "（无）",
		"counters": "账面 %d 张，实点 %d 张", "difference": "差异 %+d 张（%s）", "agree": "相符",
		"notes": "%d 张", "total loaded": "装入合计",
		"device": "出钞模块", DeviceCountsSet: "已接受新张数", DeviceOwnCounts: "自行计数",
		DeviceCountsFail: "拒绝新张数：%s",
		"check":          "计数器与出钞模块", "check ok": "相符", "check no": "不符：%s", "check later": "待出钞模块下次报告时核对",
		"col": "%-16s %15s %15s", "col head": "本机", "col host": "主机",
		"approved": "批准", "reversals": "冲正", "advices": "完成通知", "net": "净借记", "cash out": "出钞",
		"count": "笔数", "amount": "金额",
		"no host": "无主机合计：%s", "balanced": "账平", "differences": "差异：%d 项",
		"pending advices": "未确认的完成通知：%d（%s）", "pending reversals": "未确认的冲正：%d（%s）",
		"in doubt": "待处理的可疑交易：%d", "unknown": "无应答的授权（已冲正）：%d",
		"units": "钞箱计数（自上次加钞）",
		"unit":  "%s %s：装入 %d，出钞 %d，废钞 %d，回收 %d，剩余 %d",
	},
}

func reportDict(lang string) (map[string]string, error) {
	w, ok := reportWords[lang]
	if !ok {
		return nil, fmt.Errorf("atm: no report language %q (have %s)", lang, strings.Join(ReportLanguages, ", "))
	}
	return w, nil
}

// money formats minor units with the currency: "-200.00 CNY".
func money(minor int64, exponent int, currency string) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return sign + dispenser.FormatAmount(minor, exponent) + " " + currency
}

// Lines is the report laid out in lang ("en" or "zh").
func (r *ReplenishmentReport) Lines(lang string) ([]string, error) {
	w, err := reportDict(lang)
	if err != nil {
		return nil, err
	}
	amt := func(m int64) string { return money(m, r.Exponent, r.Currency) }
	out := []string{w["replenishment"],
		w["terminal"] + w[":"] + r.TerminalID,
		w["time"] + w[":"] + r.Time.Format("2006-01-02 15:04:05 MST"),
		w["operator"] + w[":"] + r.Operator,
		heading(w, "removed")}
	if len(r.Removed) == 0 {
		out = append(out, "  "+w["none"])
	}
	for _, c := range r.Removed {
		out = append(out, "  "+c.UnitID+" "+amt(c.Denomination))
		line := "    " + fmt.Sprintf(w["counters"], c.Remaining, c.Counted) + w[":"]
		if c.Difference == 0 {
			line += w["agree"]
		} else {
			line += fmt.Sprintf(w["difference"], c.Difference, amt(c.Difference*c.Denomination))
		}
		out = append(out, line)
	}
	out = append(out, heading(w, "loaded"))
	var total int64
	for _, l := range r.Loaded {
		out = append(out, "  "+l.UnitID+" "+amt(l.Denomination)+" x "+fmt.Sprintf(w["notes"], l.Notes)+" = "+amt(l.Notes*l.Denomination))
		total += l.Notes * l.Denomination
	}
	out = append(out, w["total loaded"]+w[":"]+amt(total))
	dev := w[r.Device]
	if r.Device == DeviceCountsFail {
		dev = fmt.Sprintf(dev, r.DeviceError)
	}
	out = append(out, w["device"]+w[":"]+dev)
	switch {
	case !r.CountersChecked:
		out = append(out, w["check"]+w[":"]+w["check later"])
	case len(r.Mismatches) > 0:
		out = append(out, w["check"]+w[":"]+fmt.Sprintf(w["check no"], strings.Join(r.Mismatches, "; ")))
	default:
		out = append(out, w["check"]+w[":"]+w["check ok"])
	}
	return out, nil
}

// Lines is the report laid out in lang ("en" or "zh"): the figures side
// by side, the verdict, what explains a difference, the cassette
// counters.
func (r *BalanceReport) Lines(lang string) ([]string, error) {
	w, err := reportDict(lang)
	if err != nil {
		return nil, err
	}
	amt := func(m int64) string { return money(m, r.Exponent, r.Currency) }
	out := []string{w["balance"],
		w["terminal"] + w[":"] + r.TerminalID,
		w["day"] + w[":"] + r.Day + " (" + r.Zone + ")",
		w["time"] + w[":"] + r.Time.Format("2006-01-02 15:04:05 MST"),
		w["operator"] + w[":"] + r.Operator}
	// The figures side by side; the host's column is "-" without totals.
	var h host.Totals
	if r.Host != nil {
		h = *r.Host
	}
	out = append(out, fmt.Sprintf(w["col"], "", w["col head"], w["col host"]))
	for _, row := range []struct {
		label      string
		mine, them int64
		isMoney    bool
	}{
		{w["approved"] + w["count"], r.ATM.Approved.Count, h.Approved.Count, false},
		{w["approved"] + w["amount"], r.ATM.Approved.Amount, h.Approved.Amount, true},
		{w["reversals"] + w["count"], r.ATM.Reversals.Count, h.Reversals.Count, false},
		{w["reversals"] + w["amount"], r.ATM.Reversals.Amount, h.Reversals.Amount, true},
		{w["advices"] + w["count"], r.ATM.Advices.Count, h.Advices.Count, false},
		{w["advices"] + w["amount"], r.ATM.Advices.Amount, h.Advices.Amount, true},
		{w["net"], r.ATM.NetDebit, h.NetDebit, true},
		{w["cash out"], r.CashOut, h.NetDebit, true},
	} {
		mine, them := fmt.Sprint(row.mine), fmt.Sprint(row.them)
		if row.isMoney {
			mine, them = amt(row.mine), amt(row.them)
		}
		if r.Host == nil {
			them = "-"
		}
		out = append(out, fmt.Sprintf(w["col"], row.label, mine, them))
	}
	switch {
	case r.Host == nil:
		out = append(out, fmt.Sprintf(w["no host"], r.HostError))
	case len(r.Differences) == 0:
		out = append(out, w["balanced"])
	default:
		out = append(out, fmt.Sprintf(w["differences"], len(r.Differences)))
		for _, d := range r.Differences {
			label, isMoney := differenceLabel(w, d.Item)
			mine, them := fmt.Sprint(d.ATM), fmt.Sprint(d.Host)
			if isMoney {
				mine, them = amt(d.ATM), amt(d.Host)
			}
			out = append(out, fmt.Sprintf("  "+w["col"], label, mine, them))
		}
	}
	if r.PendingAdvices.Count > 0 {
		out = append(out, fmt.Sprintf(w["pending advices"], r.PendingAdvices.Count, amt(r.PendingAdvices.Amount)))
	}
	if r.PendingReversals.Count > 0 {
		out = append(out, fmt.Sprintf(w["pending reversals"], r.PendingReversals.Count, amt(r.PendingReversals.Amount)))
	}
	if r.InDoubt > 0 {
		out = append(out, fmt.Sprintf(w["in doubt"], r.InDoubt))
	}
	if r.OutcomeUnknown > 0 {
		out = append(out, fmt.Sprintf(w["unknown"], r.OutcomeUnknown))
	}
	out = append(out, heading(w, "units"))
	for _, u := range r.Units {
		out = append(out, "  "+fmt.Sprintf(w["unit"], u.UnitID, amt(u.Denomination), u.Loaded, u.Dispensed, u.Rejected, u.Retracted, u.Remaining))
	}
	return out, nil
}

// differenceLabel names a Difference.Item in the report's words, and
// says whether it is an amount.
func differenceLabel(w map[string]string, item string) (string, bool) {
	what, kind, _ := strings.Cut(item, "_")
	key := map[string]string{"approved": "approved", "reversal": "reversals", "advice": "advices", "net": "net", "cash": "cash out"}[what]
	switch {
	case key == "":
		return item, false
	case kind == "count":
		return w[key] + w["count"], false
	case kind == "amount":
		return w[key] + w["amount"], true
	}
	return w[key], true // net_debit, cash_out
}

// heading is a line that introduces the ones below it.
func heading(w map[string]string, key string) string { return w[key] + strings.TrimRight(w[":"], " ") }
