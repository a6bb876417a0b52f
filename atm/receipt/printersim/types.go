package printersim

// Faults are the printer's conditions.
type Faults struct {
	PaperLow bool // prints, says near end
	PaperOut bool // prints nothing, says paper end
	Offline  bool // answers nothing, prints nothing
}

// Printed is one receipt, as cut.
type Printed struct {
	Lines []string // text, decoded (GB18030 in two-byte mode)
	QR    []string // QR codes' data, in order
}
