package lcdm

import "fmt"

// ErrorCode is the error byte of an LCDM-2000 answer.
type ErrorCode byte

// Error codes of the LCDM-1000/2000 (public sources: the LCDM-2000
// protocol tables reproduced by several open drivers).
const (
	Good              ErrorCode = 0x30
	NormalStop        ErrorCode = 0x31
	PickupError       ErrorCode = 0x32
	JamCHK12          ErrorCode = 0x33
	OverflowBill      ErrorCode = 0x34
	JamExitEJT        ErrorCode = 0x35
	JamDivert         ErrorCode = 0x36
	UndefinedCommand  ErrorCode = 0x37
	UpperBillEnd      ErrorCode = 0x38
	CountingCHK34Div  ErrorCode = 0x3A
	NoteRequestError  ErrorCode = 0x3B
	CountingDivEJT    ErrorCode = 0x3C
	CountingEJTExit   ErrorCode = 0x3D
	RejectTrayMissing ErrorCode = 0x3F
	LowerBillEnd      ErrorCode = 0x40
	MotorStop         ErrorCode = 0x41
	JamDivert2        ErrorCode = 0x42
	TimeoutDivToExit  ErrorCode = 0x43
	OverReject        ErrorCode = 0x44
	UpperMissing      ErrorCode = 0x45
	LowerMissing      ErrorCode = 0x46
	DispensingTimeout ErrorCode = 0x47
	JamEJT            ErrorCode = 0x48
	DiverterSolenoid  ErrorCode = 0x49
	SolenoidSensor    ErrorCode = 0x4A
	JamCHK34          ErrorCode = 0x4C
	PurgeError        ErrorCode = 0x4E
	maxKnownErrorCode           = PurgeError
)

// Class is what an error code means for the notes of a dispense.
type Class int

// Classes of error codes.
const (
	// ClassOK: the command completed (0x30 good, 0x31 normal stop); the
	// counts say what moved.
	ClassOK Class = iota
	// ClassBillEnd: a cassette ran out (0x38, 0x40). The counts are
	// exact; it is a fault of the transport only if notes stayed in it.
	ClassBillEnd
	// ClassFault: the dispense stopped on a fault; the counts are exact
	// (check, exit and reject sensors agree with the notes' positions).
	// The device needs a purge.
	ClassFault
	// ClassExitJam: a jam at or next to the exit sensor (0x35, 0x48) or
	// a counting error between the eject and exit sensors (0x3D): a note
	// may be half out, the exit count cannot be trusted. Count unknown.
	ClassExitJam
)

var codeNames = map[ErrorCode]string{
	Good:              "good",
	NormalStop:        "normal stop",
	PickupError:       "pickup error",
	JamCHK12:          "jam at CHK1,2 sensor",
	OverflowBill:      "overflow bill",
	JamExitEJT:        "jam at EXIT or EJT sensor",
	JamDivert:         "jam at DIV sensor",
	UndefinedCommand:  "undefined command",
	UpperBillEnd:      "upper cassette bill end",
	CountingCHK34Div:  "counting error between CHK3,4 and DIV sensors",
	NoteRequestError:  "note request error",
	CountingDivEJT:    "counting error between DIV and EJT sensors",
	CountingEJTExit:   "counting error between EJT and EXIT sensors",
	RejectTrayMissing: "reject tray not recognised",
	LowerBillEnd:      "lower cassette bill end",
	MotorStop:         "motor stop",
	JamDivert2:        "jam at DIV sensor",
	TimeoutDivToExit:  "timeout from DIV to EJT sensor",
	OverReject:        "over reject",
	UpperMissing:      "upper cassette not recognised",
	LowerMissing:      "lower cassette not recognised",
	DispensingTimeout: "dispensing timeout",
	JamEJT:            "jam at EJT sensor",
	DiverterSolenoid:  "diverter solenoid or SOL sensor error",
	SolenoidSensor:    "SOL sensor error",
	JamCHK34:          "jam at CHK3,4 sensor",
	PurgeError:        "purge error (jam at DIV sensor)",
}

// Known reports whether c is in the LCDM-2000 error table.
func (c ErrorCode) Known() bool { _, ok := codeNames[c]; return ok }

// String returns the code and its meaning, e.g. "0x32 pickup error".
func (c ErrorCode) String() string {
	if n, ok := codeNames[c]; ok {
		return fmt.Sprintf("%#02x %s", byte(c), n)
	}
	return fmt.Sprintf("%#02x unknown error", byte(c))
}

// Class returns what the code means for the notes (see Class). Unknown
// codes are faults with exact counts only if the counts are consistent;
// the driver checks that separately.
func (c ErrorCode) Class() Class {
	switch c {
	case Good, NormalStop:
		return ClassOK
	case UpperBillEnd, LowerBillEnd:
		return ClassBillEnd
	case JamExitEJT, JamEJT, CountingEJTExit:
		return ClassExitJam
	}
	return ClassFault
}

// BeforeNotesMove reports whether the device raises c only before any
// note moves, so that an error-only answer (no counts) with this code to a
// dispense command means "nothing moved". Only 0x37 undefined command
// qualifies: the device did not understand the command, so it did not
// start it. Every other code, unknown ones included, may come after notes
// were picked (bill end after some notes, a cassette or the reject tray
// pulled mid-dispense, 0x56 serving the upper cassette before it finds the
// lower one missing, a note request or counting error found on the way):
// an error-only answer with such a code leaves the count unknown.
func (c ErrorCode) BeforeNotesMove() bool { return c == UndefinedCommand }

// ErrorCodes lists every code of the LCDM-2000 table in order.
func ErrorCodes() []ErrorCode {
	var out []ErrorCode
	for c := Good; c <= maxKnownErrorCode; c++ {
		if c.Known() {
			out = append(out, c)
		}
	}
	return out
}
