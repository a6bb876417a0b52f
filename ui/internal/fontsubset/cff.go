package fontsubset

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
)

// The CFF format: Adobe Technical Note #5176, "The Compact Font Format
// Specification". Offsets in a CFF table are relative to its start.

// cffIndex is an INDEX of a CFF table: count items whose offsets (count+1
// of them, relative to the byte before the data) have been read.
type cffIndex struct {
	s       *source
	start   int64 // file offset of the INDEX
	offsets []uint32
	data    int64 // file offset of the byte before the first item
	end     int64 // file offset just past the INDEX
}

// readIndex reads the INDEX at file offset off, which must end at or
// before limit.
func readIndex(s *source, off, limit int64) (*cffIndex, error) {
	x := &cffIndex{s: s, start: off}
	if limit > s.size {
		return nil, malformed("CFF past the end of the file")
	}
	if off < 0 || off+2 > limit {
		return nil, malformed("CFF INDEX at %d outside the table", off)
	}
	b, err := s.read(off, 2)
	if err != nil {
		return nil, err
	}
	count := int64(binary.BigEndian.Uint16(b))
	if count == 0 {
		x.end = off + 2
		x.offsets = []uint32{1}
		x.data = x.end - 1
		return x, nil
	}
	if off+3 > limit {
		return nil, malformed("CFF INDEX at %d truncated", off)
	}
	b, err = s.read(off+2, 1)
	if err != nil {
		return nil, err
	}
	offSize := int64(b[0])
	if offSize < 1 || offSize > 4 {
		return nil, malformed("CFF INDEX offset size %d", offSize)
	}
	n := (count + 1) * offSize
	if off+3+n > limit {
		return nil, malformed("CFF INDEX at %d truncated", off)
	}
	raw, err := s.read(off+3, n)
	if err != nil {
		return nil, err
	}
	x.offsets = make([]uint32, count+1)
	prev := uint32(1)
	for i := range x.offsets {
		var v uint32
		for _, c := range raw[int64(i)*offSize : int64(i+1)*offSize] {
			v = v<<8 | uint32(c)
		}
		if v < prev || (i == 0 && v != 1) {
			return nil, malformed("CFF INDEX offsets out of order")
		}
		x.offsets[i], prev = v, v
	}
	x.data = off + 3 + n - 1
	x.end = x.data + int64(x.offsets[count])
	if x.end > limit {
		return nil, malformed("CFF INDEX at %d runs past the table", off)
	}
	return x, nil
}

func (x *cffIndex) count() int { return len(x.offsets) - 1 }

// item returns item i.
func (x *cffIndex) item(i int) ([]byte, error) {
	if i < 0 || i >= x.count() {
		return nil, malformed("CFF INDEX item %d of %d", i, x.count())
	}
	return x.s.read(x.data+int64(x.offsets[i]), int64(x.offsets[i+1]-x.offsets[i]))
}

// raw returns the whole INDEX as it is in the file.
func (x *cffIndex) raw() ([]byte, error) { return x.s.read(x.start, x.end-x.start) }

// buildIndex encodes items as an INDEX.
func buildIndex(items [][]byte) []byte {
	if len(items) == 0 {
		return []byte{0, 0}
	}
	total := 1
	for _, it := range items {
		total += len(it)
	}
	offSize := 1
	for total >= 1<<(8*offSize) {
		offSize++
	}
	out := make([]byte, 3, 3+(len(items)+1)*offSize+total-1)
	binary.BigEndian.PutUint16(out, uint16(len(items)))
	out[2] = byte(offSize)
	o := 1
	putOff := func(v int) {
		for k := offSize - 1; k >= 0; k-- {
			out = append(out, byte(v>>(8*k)))
		}
	}
	putOff(o)
	for _, it := range items {
		o += len(it)
		putOff(o)
	}
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

// DICT operators this package reads or rewrites (escaped ones are
// 1200 + the second byte).
const (
	opCharset        = 15
	opEncoding       = 16
	opCharStrings    = 17
	opPrivate        = 18
	opSubrs          = 19
	opCharstringType = 1206
	opROS            = 1230
	opFDArray        = 1236
	opFDSelect       = 1237
)

// dictOp is one operator of a DICT with its operands, and its bytes as
// they are in the file.
type dictOp struct {
	op   int
	args []float64
	raw  []byte
}

// parseDict splits a DICT into its operators.
func parseDict(b []byte) ([]dictOp, error) {
	var ops []dictOp
	var args []float64
	start := 0
	for i := 0; i < len(b); {
		b0 := b[i]
		switch {
		case b0 <= 21:
			op := int(b0)
			i++
			if b0 == 12 {
				if i >= len(b) {
					return nil, malformed("CFF DICT ends in an escape")
				}
				op = 1200 + int(b[i])
				i++
			}
			ops = append(ops, dictOp{op: op, args: args, raw: b[start:i]})
			args, start = nil, i
			continue
		case b0 == 28:
			if i+3 > len(b) {
				return nil, malformed("CFF DICT number truncated")
			}
			args = append(args, float64(int16(binary.BigEndian.Uint16(b[i+1:]))))
			i += 3
		case b0 == 29:
			if i+5 > len(b) {
				return nil, malformed("CFF DICT number truncated")
			}
			args = append(args, float64(int32(binary.BigEndian.Uint32(b[i+1:]))))
			i += 5
		case b0 == 30:
			v, n, err := parseReal(b[i+1:])
			if err != nil {
				return nil, err
			}
			args = append(args, v)
			i += 1 + n
		case b0 >= 32 && b0 <= 246:
			args = append(args, float64(int(b0)-139))
			i++
		case b0 >= 247 && b0 <= 254:
			if i+2 > len(b) {
				return nil, malformed("CFF DICT number truncated")
			}
			v := (int(b0)-247)*256 + int(b[i+1]) + 108
			if b0 >= 251 {
				v = -(int(b0)-251)*256 - int(b[i+1]) - 108
			}
			args = append(args, float64(v))
			i += 2
		default:
			return nil, malformed("CFF DICT byte %d", b0)
		}
		if len(args) > 48 {
			return nil, malformed("CFF DICT with more than 48 operands")
		}
	}
	if len(args) > 0 {
		return nil, malformed("CFF DICT ends with operands and no operator")
	}
	return ops, nil
}

// parseReal decodes the nibbles of a DICT real number (after the 30) and
// returns the value and the number of bytes used.
func parseReal(b []byte) (float64, int, error) {
	var sb strings.Builder
	for i, c := range b {
		for _, nib := range [2]byte{c >> 4, c & 15} {
			switch {
			case nib <= 9:
				sb.WriteByte('0' + nib)
			case nib == 0xa:
				sb.WriteByte('.')
			case nib == 0xb:
				sb.WriteByte('E')
			case nib == 0xc:
				sb.WriteString("E-")
			case nib == 0xe:
				sb.WriteByte('-')
			case nib == 0xf:
				v, err := strconv.ParseFloat(sb.String(), 64)
				if err != nil && sb.Len() > 0 {
					return 0, 0, malformed("CFF DICT real %q", sb.String())
				}
				return v, i + 1, nil
			default:
				return 0, 0, malformed("CFF DICT real nibble %x", nib)
			}
		}
		if sb.Len() > 64 {
			break
		}
	}
	return 0, 0, malformed("CFF DICT real not terminated")
}

// find returns the operator op of ops, if present.
func find(ops []dictOp, op int) (dictOp, bool) {
	for _, o := range ops {
		if o.op == op {
			return o, true
		}
	}
	return dictOp{}, false
}

// intArgs returns the n operands of op as integers.
func intArgs(o dictOp, n int) ([]int64, error) {
	if len(o.args) != n {
		return nil, malformed("CFF DICT operator %d has %d operands, want %d", o.op, len(o.args), n)
	}
	out := make([]int64, n)
	for i, a := range o.args {
		if a != math.Trunc(a) || a < math.MinInt32 || a > math.MaxInt32 {
			return nil, malformed("CFF DICT operator %d operand %v", o.op, a)
		}
		out[i] = int64(a)
	}
	return out, nil
}

// appendInt32 appends v as a 5-byte DICT integer (fixed size, so that a
// DICT's length does not depend on the offsets it holds).
func appendInt32(b []byte, v int) []byte {
	return append(b, 29, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendOp appends a DICT operator.
func appendOp(b []byte, op int) []byte {
	if op >= 1200 {
		return append(b, 12, byte(op-1200))
	}
	return append(b, byte(op))
}

// without returns the bytes of ops other than those listed.
func without(ops []dictOp, drop ...int) []byte {
	var b []byte
	for _, o := range ops {
		skip := false
		for _, d := range drop {
			skip = skip || o.op == d
		}
		if !skip {
			b = append(b, o.raw...)
		}
	}
	return b
}
