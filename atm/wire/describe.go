package wire

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/field"
)

// redacted lists the fields never shown: keys (48), the credential (52),
// the encrypted fields in clear or cipher form (62, 120, 123) and the dispense
// token (122, a bearer authorization for one dispense).
var redacted = map[int]bool{
	FieldAdditionalData: true,
	FieldPINBlock:       true,
	FieldQRPayload:      true,
	FieldCustomerID:     true,
	FieldDeviceID:       true,
	FieldDispenseToken:  true,
}

// filters returns the iso8583 field filters of Describe and LogValue,
// the one masking rule: the library's defaults (account numbers in fields
// 2 and 20 keep their first and last four digits; tracks 35, 36 and 45
// have their account number masked; EMV data 55 is shortened), then the
// redacted fields, which show only their length (52 replaces the
// library's PIN filter).
func filters() []iso8583.FieldFilter {
	fs := iso8583.DefaultFilters()
	for _, id := range slices.Sorted(maps.Keys(redacted)) {
		fs = append(fs, iso8583.FilterField(strconv.Itoa(id), redact))
	}
	return fs
}

func redact(in string, _ field.Field) string {
	return fmt.Sprintf("[redacted, %d chars]", len(in))
}

// filterFuncs is filters() as the map iso8583.Describe builds from them,
// for LogValue.
var filterFuncs = sync.OnceValue(func() map[string]iso8583.FilterFunc {
	m := make(map[string]iso8583.FilterFunc)
	for _, f := range filters() {
		f(m)
	}
	return m
})

// maskField returns the value s of field f (id) as Describe shows it.
func maskField(id int, f field.Field, s string) string {
	if fn, ok := filterFuncs()[strconv.Itoa(id)]; ok {
		return fn(s, f)
	}
	return s
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
		attrs = append(attrs, slog.String("f"+strconv.Itoa(id), maskField(id, fields[id], s)))
	}
	return slog.GroupValue(attrs...)
}

// Loggable wraps msg so that slog formats it with LogValue, lazily.
func Loggable(msg *iso8583.Message) slog.LogValuer { return loggable{msg} }

type loggable struct{ m *iso8583.Message }

func (l loggable) LogValue() slog.Value { return LogValue(l.m) }
