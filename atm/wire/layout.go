package wire

import (
	"bytes"
	"reflect"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/padding"
	"github.com/moov-io/iso8583/prefix"
)

// This file describes the wire encoding of the fields of Spec in a form the
// fast paths of Seal and Open (fast.go) can use without going through the
// iso8583 module's per-field Pack and Unpack. The layouts are derived from
// Spec itself at start-up; a field whose definition is not one of the four
// simple kinds below gets layoutUnknown, and any message that uses such a
// field is handled by the general (module-based) implementation instead.

type layoutKind uint8

const (
	layoutUnknown layoutKind = iota
	// layoutFixed: a String field, ASCII, exactly n bytes, no padding.
	layoutFixed
	// layoutSpaced: a String field, ASCII, n bytes, right-padded with
	// spaces (the value is seen without its trailing spaces).
	layoutSpaced
	// layoutVar: a String field, ASCII, a prefix of `digits` decimal
	// digits giving the length, at most n bytes.
	layoutVar
	// layoutVarBin: a String field whose bytes go on the wire as they are
	// (encoding.Binary), after a prefix of `digits` decimal digits giving
	// the length, at most n bytes.
	layoutVarBin
	// layoutBinHex: a Binary field of exactly n bytes carried as 2n hex
	// digits (upper-case on the wire).
	layoutBinHex
)

type fieldLayout struct {
	kind   layoutKind
	n      int
	digits int // layoutVar and layoutVarBin only: 2 (LL) or 3 (LLL)
}

// maxFieldID is the highest field number of Spec (primary and secondary
// bitmaps).
const maxFieldID = 128

// specLayouts is the layout of every field of Spec, indexed by field
// number; fastOK is false when the MTI, the bitmap or one of the fields the
// protection itself writes (62, 96, 120, 128) is not of the expected
// layout, in which case every message takes the general path.
var specLayouts, fastOK = newLayouts(Spec)

func newLayouts(s *iso8583.MessageSpec) (ls [maxFieldID + 1]fieldLayout, ok bool) {
	for id := 0; id <= maxFieldID; id++ {
		if f, found := s.Fields[id]; found && id != 1 {
			ls[id] = classify(f)
		}
	}
	bm, isBitmap := s.Fields[1].(*field.Bitmap)
	ok = isBitmap && bm.Spec().Length == 8 && bm.Spec().Enc == encoding.BytesToASCIIHex &&
		bm.Spec().Pref == prefix.Hex.Fixed && !bm.Spec().DisableAutoExpand &&
		ls[0] == fieldLayout{kind: layoutFixed, n: 4} &&
		ls[FieldMACKeyKCV] == fieldLayout{kind: layoutFixed, n: 6} &&
		ls[FieldMAC64] == fieldLayout{kind: layoutBinHex, n: 8} &&
		ls[FieldMAC128] == fieldLayout{kind: layoutBinHex, n: 8}
	for _, id := range encryptedFields {
		// The largest cipher text, of MaxEncryptedPlain, must fit.
		l := ls[id]
		ok = ok && l.kind == layoutVarBin && l.digits == 3 && l.n >= (MaxEncryptedPlain/8+1)*8
	}
	return ls, ok
}

var spacePadderType = reflect.TypeOf(padding.Right(' '))

// classify returns the layout of a field definition, or layoutUnknown.
func classify(f field.Field) fieldLayout {
	s := f.Spec()
	if s == nil || s.Packer != nil || s.Unpacker != nil || s.Length <= 0 {
		return fieldLayout{}
	}
	switch f.(type) {
	case *field.String:
		if s.Enc == encoding.Binary && s.Pad == nil {
			switch {
			case s.Pref == prefix.ASCII.LL && s.Length <= 99:
				return fieldLayout{kind: layoutVarBin, n: s.Length, digits: 2}
			case s.Pref == prefix.ASCII.LLL && s.Length <= 999:
				return fieldLayout{kind: layoutVarBin, n: s.Length, digits: 3}
			}
			return fieldLayout{}
		}
		if s.Enc != encoding.ASCII {
			return fieldLayout{}
		}
		switch {
		case s.Pref == prefix.ASCII.Fixed && s.Pad == nil:
			return fieldLayout{kind: layoutFixed, n: s.Length}
		case s.Pref == prefix.ASCII.Fixed && reflect.TypeOf(s.Pad) == spacePadderType && bytes.Equal(s.Pad.Inspect(), []byte{' '}):
			return fieldLayout{kind: layoutSpaced, n: s.Length}
		case s.Pref == prefix.ASCII.LL && s.Pad == nil && s.Length <= 99:
			return fieldLayout{kind: layoutVar, n: s.Length, digits: 2}
		case s.Pref == prefix.ASCII.LLL && s.Pad == nil && s.Length <= 999:
			return fieldLayout{kind: layoutVar, n: s.Length, digits: 3}
		}
	case *field.Binary:
		if s.Enc == encoding.BytesToASCIIHex && s.Pref == prefix.ASCII.Fixed && s.Pad == nil {
			return fieldLayout{kind: layoutBinHex, n: s.Length}
		}
	}
	return fieldLayout{}
}

// appendValue appends the wire encoding of value v (the field's Bytes)
// under layout l, exactly as the module's Pack of a Spec field holding v
// would produce it. ok is false when that Pack would fail (wrong length,
// a byte above 127); nothing useful is appended then.
func appendValue[T string | []byte](dst []byte, l fieldLayout, v T) ([]byte, bool) {
	switch l.kind {
	case layoutFixed, layoutSpaced:
		if len(v) > l.n || (l.kind == layoutFixed && len(v) != l.n) || !isASCII(v) {
			return dst, false
		}
		dst = append(dst, v...)
		for i := len(v); i < l.n; i++ {
			dst = append(dst, ' ')
		}
	case layoutVar, layoutVarBin:
		if len(v) > l.n || (l.kind == layoutVar && !isASCII(v)) {
			return dst, false
		}
		dst = appendLength(dst, len(v), l.digits)
		dst = append(dst, v...)
	case layoutBinHex:
		if len(v) != l.n {
			return dst, false
		}
		dst = appendUpperHex(dst, v)
	default:
		return dst, false
	}
	return dst, true
}

// appendLength appends n as exactly digits decimal digits (n < 10^digits).
func appendLength(dst []byte, n, digits int) []byte {
	if digits == 3 {
		dst = append(dst, byte('0'+n/100))
	}
	return append(dst, byte('0'+n/10%10), byte('0'+n%10))
}

func appendUpperHex[T string | []byte](dst []byte, src T) []byte {
	const digits = "0123456789ABCDEF"
	for i := 0; i < len(src); i++ {
		b := src[i]
		dst = append(dst, digits[b>>4], digits[b&0x0F])
	}
	return dst
}

func isASCII[T string | []byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if v[i] > 127 {
			return false
		}
	}
	return true
}

// upperHexVal is the value of an upper-case hex digit, or 0xFF.
func upperHexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0xFF
}

// decodeUpperHex decodes len(dst) bytes from the upper-case hex digits
// src (2*len(dst) bytes); false if any digit is not 0-9 or A-F.
func decodeUpperHex(dst []byte, src []byte) bool {
	for i := range dst {
		hi, lo := upperHexVal(src[2*i]), upperHexVal(src[2*i+1])
		if hi > 15 || lo > 15 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}
