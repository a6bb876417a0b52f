package lcdm

import (
	"errors"
	"fmt"
)

// Control characters of the LCDM link layer.
const (
	SOH byte = 0x01 // start of a device answer
	STX byte = 0x02 // start of text
	ETX byte = 0x03 // end of text
	EOT byte = 0x04 // start of a host command
	ACK byte = 0x06 // frame received intact
	NAK byte = 0x15 // frame damaged: send it again

	// ID is the communication ID of the LCDM-1000/2000.
	ID byte = 0x50
)

// Commands of the LCDM-2000.
const (
	CmdPurge         byte = 0x44 // move notes left in the transport to the reject tray
	CmdUpperDispense byte = 0x45 // data: two ASCII digits, 00-60
	CmdStatus        byte = 0x46 // sensors and last error
	CmdROMVersion    byte = 0x47
	CmdLowerDispense byte = 0x55 // data: two ASCII digits, 00-60
	CmdDispenseBoth  byte = 0x56 // data: upper then lower, two ASCII digits each
)

// MaxPerCommand is the most notes one dispense command takes from one
// cassette.
const MaxPerCommand = 60

// Frame is one LCDM frame, either a host command (Start EOT) or a device
// answer (Start SOH): Start ID STX Cmd Data... ETX BCC.
type Frame struct {
	Start byte // EOT or SOH
	ID    byte
	Cmd   byte
	Data  []byte
}

// BCC is the block check character: the XOR of every byte of b.
func BCC(b []byte) byte {
	var x byte
	for _, c := range b {
		x ^= c
	}
	return x
}

// Command returns the host frame for cmd with data.
func Command(cmd byte, data ...byte) Frame {
	return Frame{Start: EOT, ID: ID, Cmd: cmd, Data: data}
}

// Answer returns the device frame for cmd with data.
func Answer(cmd byte, data ...byte) Frame {
	return Frame{Start: SOH, ID: ID, Cmd: cmd, Data: data}
}

// Encode returns the frame's bytes with its BCC.
func (f Frame) Encode() []byte {
	b := make([]byte, 0, len(f.Data)+6)
	b = append(b, f.Start, f.ID, STX, f.Cmd)
	b = append(b, f.Data...)
	b = append(b, ETX)
	return append(b, BCC(b))
}

// Frame parse errors.
var (
	ErrShortFrame = errors.New("lcdm: frame too short")
	ErrFrameStart = errors.New("lcdm: frame does not start with EOT or SOH, then ID and STX")
	ErrFrameEnd   = errors.New("lcdm: frame does not end with ETX and BCC")
	ErrBCC        = errors.New("lcdm: bad BCC")
)

// ParseFrame parses exactly one complete frame (host command or device
// answer): Start (EOT or SOH), ID, STX, Cmd, Data, ETX, BCC. The frame's
// length delimits it, so Data may hold any byte, ETX included; the
// command-specific data length is checked by the answer parsers. The
// returned Data does not alias b.
func ParseFrame(b []byte) (Frame, error) {
	if len(b) < 6 {
		return Frame{}, ErrShortFrame
	}
	if (b[0] != EOT && b[0] != SOH) || b[2] != STX {
		return Frame{}, ErrFrameStart
	}
	if b[len(b)-2] != ETX {
		return Frame{}, ErrFrameEnd
	}
	if BCC(b[:len(b)-1]) != b[len(b)-1] {
		return Frame{}, fmt.Errorf("%w: got %#02x, want %#02x", ErrBCC, b[len(b)-1], BCC(b[:len(b)-1]))
	}
	return Frame{Start: b[0], ID: b[1], Cmd: b[3], Data: append([]byte(nil), b[4:len(b)-2]...)}, nil
}

// AnswerLength is the length in bytes of the device's whole answer frame to
// cmd, 0 for a command the LCDM-2000 does not know. An answer of 7 bytes
// (error only, see ErrorAnswerLength) is also possible for any command.
func AnswerLength(cmd byte) int {
	switch cmd {
	case CmdPurge:
		return 7 // SOH ID STX CMD ERROR ETX BCC
	case CmdStatus:
		return 10 // SOH ID STX CMD RSV ERROR SENSOR0 SENSOR1 ETX BCC
	case CmdROMVersion:
		return 14 // SOH ID STX CMD 8 bytes ETX BCC
	case CmdUpperDispense, CmdLowerDispense:
		return 14 // SOH ID STX CMD CHK(2) EXIT(2) ERROR STATUS REJECT(2) ETX BCC
	case CmdDispenseBoth:
		return 21 // SOH ID STX CMD UCHK(2) UEXIT(2) LCHK(2) LEXIT(2) ERROR USTATUS LSTATUS UREJ(2) LREJ(2) ETX BCC
	}
	return 0
}

// ErrorAnswerLength is the length of an error-only answer (SOH ID STX CMD
// ERROR ETX BCC): the purge answer, the answer to a command the device
// does not know (error 0x37), and a possible answer to any other command.
// To a dispense command it carries no counts (DispenseAnswer.ErrorOnly).
const ErrorAnswerLength = 7

// twoDigits encodes n (0-99) as two ASCII digits.
func twoDigits(n int) [2]byte {
	return [2]byte{byte('0' + n/10%10), byte('0' + n%10)}
}

// parseTwoDigits decodes two ASCII digits.
func parseTwoDigits(b []byte) (int, bool) {
	if len(b) != 2 || b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

// DispenseCommand returns the host frame that dispenses upper notes from
// the upper cassette and lower from the lower one (0x45, 0x55 or 0x56).
// Each count must be 0-60 and not both 0.
func DispenseCommand(upper, lower int) (Frame, error) {
	if upper < 0 || lower < 0 || upper > MaxPerCommand || lower > MaxPerCommand || upper+lower == 0 {
		return Frame{}, fmt.Errorf("lcdm: dispense of %d+%d notes: each 0-%d, not both 0", upper, lower, MaxPerCommand)
	}
	u, l := twoDigits(upper), twoDigits(lower)
	switch {
	case lower == 0:
		return Command(CmdUpperDispense, u[:]...), nil
	case upper == 0:
		return Command(CmdLowerDispense, l[:]...), nil
	}
	return Command(CmdDispenseBoth, u[0], u[1], l[0], l[1]), nil
}

// ParseDispenseCommand returns the counts of a host dispense frame (the
// device side, used by the simulator).
func ParseDispenseCommand(f Frame) (upper, lower int, err error) {
	bad := fmt.Errorf("lcdm: bad data for command %#02x", f.Cmd)
	switch f.Cmd {
	case CmdUpperDispense, CmdLowerDispense:
		n, ok := parseTwoDigits(f.Data)
		if !ok || n > MaxPerCommand {
			return 0, 0, bad
		}
		if f.Cmd == CmdUpperDispense {
			return n, 0, nil
		}
		return 0, n, nil
	case CmdDispenseBoth:
		if len(f.Data) != 4 {
			return 0, 0, bad
		}
		u, ok1 := parseTwoDigits(f.Data[:2])
		l, ok2 := parseTwoDigits(f.Data[2:])
		if !ok1 || !ok2 || u > MaxPerCommand || l > MaxPerCommand {
			return 0, 0, bad
		}
		return u, l, nil
	}
	return 0, 0, fmt.Errorf("lcdm: %#02x is not a dispense command", f.Cmd)
}

// CassetteCount is what one cassette did in a dispense command.
type CassetteCount struct {
	Check  int  // notes that passed the check sensors: left the cassette
	Exit   int  // notes that passed the exit sensor: in the customer's tray
	Reject int  // notes diverted to the reject tray (doubles, skewed, ...)
	Status byte // 0x30 normal, 0x31 near end
}

// Stuck is the notes that left the cassette but reached neither the exit
// nor the reject tray: still in the transport (a purge moves them to the
// reject tray).
func (c CassetteCount) Stuck() int { return c.Check - c.Exit - c.Reject }

// Cassette status bytes in a dispense answer.
const (
	CassetteNormal  byte = 0x30
	CassetteNearEnd byte = 0x31
)

// DispenseAnswer is the device's answer to a dispense command.
type DispenseAnswer struct {
	Cmd   byte // the command answered: 0x45, 0x55 or 0x56
	Error byte // error code, see ErrorCode
	// ErrorOnly: the device sent the 7-byte error-only form (SOH ID STX
	// CMD ERROR ETX BCC). It carries no counts: Upper and Lower are zero
	// because nothing was reported, not because nothing moved.
	ErrorOnly bool
	Upper     CassetteCount
	Lower     CassetteCount
}

// Frame encodes the answer (the simulator's side). Counts must be 0-99.
// An ErrorOnly answer encodes as the 7-byte error-only frame.
func (a DispenseAnswer) Frame() Frame {
	if a.ErrorOnly {
		return Answer(a.Cmd, a.Error)
	}
	var d []byte
	put := func(n int) { t := twoDigits(n); d = append(d, t[:]...) }
	switch a.Cmd {
	case CmdDispenseBoth:
		put(a.Upper.Check)
		put(a.Upper.Exit)
		put(a.Lower.Check)
		put(a.Lower.Exit)
		d = append(d, a.Error, a.Upper.Status, a.Lower.Status)
		put(a.Upper.Reject)
		put(a.Lower.Reject)
	default:
		c := a.Upper
		if a.Cmd == CmdLowerDispense {
			c = a.Lower
		}
		put(c.Check)
		put(c.Exit)
		d = append(d, a.Error, c.Status)
		put(c.Reject)
	}
	return Answer(a.Cmd, d...)
}

// ParseDispenseAnswer decodes a device answer to a dispense command. An
// error-only answer (one data byte) comes back with ErrorOnly set and no
// counts: the device did not say what moved (see ErrorCode.BeforeNotesMove
// for the codes that imply nothing did).
func ParseDispenseAnswer(f Frame) (DispenseAnswer, error) {
	a := DispenseAnswer{Cmd: f.Cmd}
	bad := func() (DispenseAnswer, error) {
		return DispenseAnswer{}, fmt.Errorf("lcdm: malformed answer to dispense command %#02x (%d data bytes)", f.Cmd, len(f.Data))
	}
	if f.Start != SOH || f.ID != ID {
		return bad()
	}
	if len(f.Data) == 1 {
		switch f.Cmd {
		case CmdUpperDispense, CmdLowerDispense, CmdDispenseBoth:
		default:
			return bad()
		}
		a.Error, a.ErrorOnly = f.Data[0], true
		return a, nil
	}
	num := func(i int, dst *int) bool {
		n, ok := parseTwoDigits(f.Data[i : i+2])
		*dst = n
		return ok
	}
	switch f.Cmd {
	case CmdUpperDispense, CmdLowerDispense:
		if len(f.Data) != 8 {
			return bad()
		}
		var c CassetteCount
		if !num(0, &c.Check) || !num(2, &c.Exit) || !num(6, &c.Reject) {
			return bad()
		}
		a.Error, c.Status = f.Data[4], f.Data[5]
		if f.Cmd == CmdUpperDispense {
			a.Upper = c
		} else {
			a.Lower = c
		}
	case CmdDispenseBoth:
		if len(f.Data) != 15 {
			return bad()
		}
		if !num(0, &a.Upper.Check) || !num(2, &a.Upper.Exit) || !num(4, &a.Lower.Check) || !num(6, &a.Lower.Exit) ||
			!num(11, &a.Upper.Reject) || !num(13, &a.Lower.Reject) {
			return bad()
		}
		a.Error, a.Upper.Status, a.Lower.Status = f.Data[8], f.Data[9], f.Data[10]
	default:
		return bad()
	}
	return a, nil
}

// Status sensor bits. Sensor0 is the first sensor byte of the status
// answer, Sensor1 the second. A set bit means a note is over the sensor
// (path sensors), near end, or a missing part (cassette, reject tray).
const (
	S0Check1       byte = 1 << 0
	S0Check2       byte = 1 << 1
	S0Divert1      byte = 1 << 2
	S0Divert2      byte = 1 << 3
	S0Eject        byte = 1 << 4
	S0Exit         byte = 1 << 5
	S0UpperNearEnd byte = 1 << 6
	S0Default      byte = 1 << 7 // always set

	S1Solenoid         byte = 1 << 0
	S1UpperMissing     byte = 1 << 1
	S1LowerMissing     byte = 1 << 2
	S1Check3           byte = 1 << 3
	S1Check4           byte = 1 << 4
	S1LowerNearEnd     byte = 1 << 5
	S1RejectMissing    byte = 1 << 6
	s0PathSensors           = S0Check1 | S0Check2 | S0Divert1 | S0Divert2 | S0Eject | S0Exit
	s1PathSensors           = S1Check3 | S1Check4
	statusReservedByte      = 0x30
)

// StatusAnswer is the device's answer to the status command.
type StatusAnswer struct {
	Error   byte // the device's current error code (0x30: none)
	Sensor0 byte
	Sensor1 byte
}

// Frame encodes the answer (the simulator's side).
func (s StatusAnswer) Frame() Frame {
	return Answer(CmdStatus, statusReservedByte, s.Error, s.Sensor0|S0Default, s.Sensor1)
}

// ParseStatusAnswer decodes the answer to the status command.
func ParseStatusAnswer(f Frame) (StatusAnswer, error) {
	if f.Start != SOH || f.ID != ID || f.Cmd != CmdStatus || len(f.Data) != 4 {
		return StatusAnswer{}, fmt.Errorf("lcdm: malformed status answer (%d data bytes)", len(f.Data))
	}
	return StatusAnswer{Error: f.Data[1], Sensor0: f.Data[2], Sensor1: f.Data[3]}, nil
}

// NotesInPath reports whether a path sensor sees a note.
func (s StatusAnswer) NotesInPath() bool {
	return s.Sensor0&s0PathSensors != 0 || s.Sensor1&s1PathSensors != 0
}

// ROMAnswer builds the (assumed) answer to the ROM version command: a
// reserved byte, two ASCII version digits, a reserved byte and four ASCII
// hex digits of the ROM checksum.
func ROMAnswer(version int, checksum uint16) Frame {
	v := twoDigits(version)
	const hexd = "0123456789ABCDEF"
	return Answer(CmdROMVersion, '0', v[0], v[1], '0',
		hexd[checksum>>12&15], hexd[checksum>>8&15], hexd[checksum>>4&15], hexd[checksum&15])
}

// ParseROMAnswer returns the version digits and checksum text.
func ParseROMAnswer(f Frame) (version, checksum string, err error) {
	if f.Start != SOH || f.Cmd != CmdROMVersion || len(f.Data) != 8 {
		return "", "", fmt.Errorf("lcdm: malformed ROM version answer (%d data bytes)", len(f.Data))
	}
	return string(f.Data[1:3]), string(f.Data[4:8]), nil
}
