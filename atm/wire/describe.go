package wire

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/field"
)

// redacted lists the fields never shown: keys (48), the credential (52),
// the encrypted fields in clear or cipher form (62, 120) and the dispense
// token (122, a bearer authorization for one dispense).
var redacted = map[int]bool{
	FieldAdditionalData: true,
	FieldPINBlock:       true,
	FieldQRPayload:      true,
	FieldCustomerID:     true,
	FieldDispenseToken:  true,
}

// maskField is the one place that decides how a field value is shown in
// logs. Account numbers (2) keep their first and last four digits; the
// redacted fields show only their length.
func maskField(id int, s string) string {
	switch {
	case redacted[id]:
		return fmt.Sprintf("[redacted, %d chars]", len(s))
	case id == 2:
		return iso8583.PANFilter(s, nil)
	}
	return s
}

// filters returns iso8583 field filters applying maskField, on top of the
// library's defaults (tracks 35, 36, 45 and EMV data 55).
func filters() []iso8583.FieldFilter {
	fs := iso8583.DefaultFilters()
	for _, id := range append(slices.Sorted(maps.Keys(redacted)), 2) {
		fs = append(fs, iso8583.FilterField(strconv.Itoa(id), func(in string, _ field.Field) string {
			return maskField(id, in)
		}))
	}
	return fs
}

// Describe writes a human-readable, masked listing of msg to w.
func Describe(msg *iso8583.Message, w io.Writer) error {
	return iso8583.Describe(msg, w, filters()...)
}

// LogValue returns msg as a masked slog group: mti, then f<N> per field.
func LogValue(msg *iso8583.Message) slog.Value {
	if msg == nil {
		return slog.StringValue("<nil>")
	}
	fields := msg.GetFields()
	ids := slices.Sorted(func(yield func(int) bool) {
		for id := range fields {
			if id > 1 && !yield(id) {
				return
			}
		}
	})
	attrs := make([]slog.Attr, 0, len(ids)+1)
	attrs = append(attrs, slog.String("mti", MTI(msg)))
	for _, id := range ids {
		s, err := fields[id].String()
		if err != nil {
			s = "[unreadable]"
		}
		attrs = append(attrs, slog.String("f"+strconv.Itoa(id), maskField(id, s)))
	}
	return slog.GroupValue(attrs...)
}

// Loggable wraps msg so that slog formats it with LogValue, lazily.
func Loggable(msg *iso8583.Message) slog.LogValuer { return loggable{msg} }

type loggable struct{ m *iso8583.Message }

func (l loggable) LogValue() slog.Value { return LogValue(l.m) }
