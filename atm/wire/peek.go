package wire

import (
	"strings"

	"github.com/moov-io/iso8583"
)

// PeekTerminal returns field 41 (the terminal ID, trailing spaces removed)
// of a message that has not been opened, only so that a server can choose
// the keys to open it with. Nothing else in an unopened message may be
// trusted, and the caller must still check field 41 of the opened message
// if it relies on it.
//
// It never panics, whatever raw holds: a message that does not unpack on
// Spec (including one that makes the module panic) or has no field 41
// gives a *MessageError wrapping ErrMalformed, carrying only the MTI when
// it can be read.
func PeekTerminal(raw []byte) (tid string, err error) {
	merr := &MessageError{MTI: sniffMTI(raw), Err: ErrMalformed}
	defer func() {
		if recover() != nil {
			tid, err = "", merr
		}
	}()
	m := iso8583.NewMessage(Spec)
	if m.Unpack(raw) != nil {
		return "", merr
	}
	merr.Field = FieldTerminalID
	if m.GetField(FieldTerminalID) == nil {
		return "", merr
	}
	s, gerr := m.GetString(FieldTerminalID)
	if gerr != nil {
		return "", merr
	}
	return strings.TrimRight(s, " "), nil
}
