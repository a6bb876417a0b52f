package wire

import (
	"fmt"
	"slices"
	"strings"
)

// NetStatus (ATM → proxy, link P, 0800/283) reports the terminal's
// alarms: field 48 holds FormatAlarms of the alarms standing now (all of
// them, so the latest report is the whole truth). The proxy keeps the
// latest report of every terminal for the bank's operations centre
// (docs/protocol.md §5).
const NetStatus = "283"

// maxAlarms bounds a report (field 48 holds at most 999 characters).
const maxAlarms = 40

// FormatAlarms encodes alarm names for field 48: "ALARMS=" then the names,
// sorted, comma-separated ("ALARMS=" alone when none stands). A name is
// 1-40 characters of a-z, 0-9, '_', ':' and upper-case letters and digits
// after the colon (a unit ID: cash_low:CST2).
func FormatAlarms(alarms []string) (string, error) {
	if len(alarms) > maxAlarms {
		return "", fmt.Errorf("wire: %d alarms, at most %d", len(alarms), maxAlarms)
	}
	s := slices.Sorted(slices.Values(alarms))
	for _, a := range s {
		if !alarmName(a) {
			return "", fmt.Errorf("wire: alarm name %q", a)
		}
	}
	return "ALARMS=" + strings.Join(slices.Compact(s), ","), nil
}

// ParseAlarms decodes field 48 of an 0800/283.
func ParseAlarms(s string) ([]string, error) {
	rest, ok := strings.CutPrefix(s, "ALARMS=")
	if !ok {
		return nil, fmt.Errorf("wire: status report %q does not start with ALARMS=", s)
	}
	if rest == "" {
		return []string{}, nil
	}
	out := strings.Split(rest, ",")
	if len(out) > maxAlarms {
		return nil, fmt.Errorf("wire: %d alarms, at most %d", len(out), maxAlarms)
	}
	for i, a := range out {
		if !alarmName(a) || i > 0 && out[i-1] >= a {
			return nil, fmt.Errorf("wire: alarm %q (names must be valid, sorted and distinct)", a)
		}
	}
	return out, nil
}

func alarmName(a string) bool {
	if a == "" || len(a) > 40 {
		return false
	}
	name, arg, hasArg := strings.Cut(a, ":")
	if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		return false
	}
	return !hasArg || arg != "" && strings.Trim(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == ""
}
