package fontsubset

import (
	"encoding/binary"
	"math"
)

// Type 2 charstrings: Adobe Technical Note #5177. flatten inlines every
// subroutine call of a charstring, so that the subset needs no Subrs.

// subrs is a loaded subroutine INDEX.
type subrs struct {
	data    []byte
	offsets []uint32 // relative to data, count+1 of them
}

func loadSubrs(x *cffIndex) (*subrs, error) {
	if x == nil || x.count() == 0 {
		return &subrs{offsets: []uint32{0}}, nil
	}
	data, err := x.s.read(x.data+1, int64(x.offsets[x.count()]-1))
	if err != nil {
		return nil, err
	}
	offs := make([]uint32, len(x.offsets))
	for i, o := range x.offsets {
		offs[i] = o - 1
	}
	return &subrs{data: data, offsets: offs}, nil
}

func (s *subrs) count() int { return len(s.offsets) - 1 }

// get returns the subroutine numbered n as charstrings number it: n plus
// the bias for the INDEX's size.
func (s *subrs) get(n int) ([]byte, bool) {
	switch c := s.count(); {
	case c < 1240:
		n += 107
	case c < 33900:
		n += 1131
	default:
		n += 32768
	}
	if n < 0 || n >= s.count() {
		return nil, false
	}
	return s.data[s.offsets[n]:s.offsets[n+1]], true
}

// Charstring operators flatten treats specially.
const (
	csHstem     = 1
	csVstem     = 3
	csCallsubr  = 10
	csReturn    = 11
	csEscape    = 12
	csEndchar   = 14
	csHstemhm   = 18
	csHintmask  = 19
	csCntrmask  = 20
	csVstemhm   = 23
	csCallgsubr = 29
)

// flattener inlines the subroutine calls of one charstring.
type flattener struct {
	global, local *subrs
	out           []byte
	args          int     // operands on the argument stack
	lastAt        int     // where in out the last operand starts
	last          float64 // the last operand
	stems         int     // stem hints declared so far
	ended         bool    // endchar seen
}

// flatten returns charstring cs with its subroutines inlined.
func flatten(cs []byte, global, local *subrs) ([]byte, error) {
	f := &flattener{global: global, local: local, out: make([]byte, 0, 2*len(cs))}
	if err := f.run(cs, 0); err != nil {
		return nil, err
	}
	if !f.ended {
		return nil, malformed("charstring without endchar")
	}
	return f.out, nil
}

func (f *flattener) run(cs []byte, depth int) error {
	if depth > 10 {
		return malformed("charstring subroutines nested deeper than 10")
	}
	for i := 0; i < len(cs); {
		b0 := cs[i]
		if b0 == 28 || b0 >= 32 {
			n, v, err := number(cs[i:])
			if err != nil {
				return err
			}
			if f.args++; f.args > 48 {
				return malformed("charstring with more than 48 operands")
			}
			f.lastAt, f.last = len(f.out), v
			f.out = append(f.out, cs[i:i+n]...)
			i += n
			continue
		}
		switch b0 {
		case csCallsubr, csCallgsubr:
			if f.args == 0 || f.last != math.Trunc(f.last) || math.Abs(f.last) > 1<<16 {
				return malformed("charstring subroutine call without a subroutine number")
			}
			set := f.local
			if b0 == csCallgsubr {
				set = f.global
			}
			sub, ok := set.get(int(f.last))
			if !ok {
				return malformed("charstring calls subroutine %v of %d", f.last, set.count())
			}
			f.out = f.out[:f.lastAt] // the number is the call's, not the outline's
			f.args--
			if err := f.run(sub, depth+1); err != nil {
				return err
			}
			if f.ended {
				return nil
			}
			i++
			continue
		case csReturn:
			if depth == 0 {
				return malformed("charstring return outside a subroutine")
			}
			return nil
		case csEndchar:
			f.out = append(f.out, b0)
			f.ended = true
			return nil
		case csHstem, csVstem, csHstemhm, csVstemhm:
			f.stems += f.args / 2
		case csHintmask, csCntrmask:
			// Operands left before a mask are an implied vstemhm.
			f.stems += f.args / 2
			n := (f.stems + 7) / 8
			if i+1+n > len(cs) {
				return malformed("charstring hint mask truncated")
			}
			f.out = append(f.out, cs[i:i+1+n]...)
			f.args = 0
			i += 1 + n
			continue
		case csEscape:
			if i+1 >= len(cs) {
				return malformed("charstring ends in an escape")
			}
			if op := cs[i+1]; op < 34 || op > 37 { // only hflex, flex, hflex1, flex1
				return unsupported("charstring operator 12 %d", op)
			}
			f.out = append(f.out, cs[i:i+2]...)
			f.args = 0
			i += 2
			continue
		case 0, 2, 9, 13, 15, 16, 17:
			return malformed("charstring reserved operator %d", b0)
		}
		f.out = append(f.out, b0)
		f.args = 0
		i++
	}
	return nil // the charstring ends (a subroutine may end without return)
}

// number decodes the charstring operand at the start of b: its length and
// value.
func number(b []byte) (int, float64, error) {
	switch b0 := b[0]; {
	case b0 == 28:
		if len(b) < 3 {
			return 0, 0, malformed("charstring number truncated")
		}
		return 3, float64(int16(binary.BigEndian.Uint16(b[1:]))), nil
	case b0 <= 246:
		return 1, float64(int(b0) - 139), nil
	case b0 <= 250:
		if len(b) < 2 {
			return 0, 0, malformed("charstring number truncated")
		}
		return 2, float64((int(b0)-247)*256 + int(b[1]) + 108), nil
	case b0 <= 254:
		if len(b) < 2 {
			return 0, 0, malformed("charstring number truncated")
		}
		return 2, float64(-(int(b0)-251)*256 - int(b[1]) - 108), nil
	default:
		if len(b) < 5 {
			return 0, 0, malformed("charstring number truncated")
		}
		return 5, float64(int32(binary.BigEndian.Uint32(b[1:]))) / 65536, nil
	}
}
