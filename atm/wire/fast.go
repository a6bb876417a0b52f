package wire

import (
	"fmt"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/field"

	"github.com/cardless-atm/cardless/hsm"
)

// The fast paths of Seal and Open. They handle every message whose fields
// all have a simple layout (layout.go) and write or read the wire bytes
// directly, instead of copying the message field by field and packing it
// with the module (Seal), or unpacking, re-packing to check the canonical
// form and then setting the decrypted fields (Open). Whenever a fast path
// meets anything it does not model (a field of another layout, a value the
// module's Pack would refuse, a crypto error, or bytes that are not a
// canonical message), it gives up and the general implementation in
// protect.go runs instead, so results and errors are those of the general
// implementation. The differential tests (fast_test.go) and FuzzOpen check
// the fast paths against sealGeneric and openGeneric.

// sealFast appends the sealed form of msg to dst. ok is false when msg
// must go through sealGeneric; out is then meaningless.
func (p *Protector) sealFast(dst []byte, msg *iso8583.Message) (out []byte, ok bool) {
	if !fastOK {
		return dst, false
	}
	mti, err := msg.GetMTI()
	if err != nil || len(mti) != 4 {
		return dst, false
	}
	var fields [maxFieldID + 1]field.Field
	for id, f := range msg.GetFields() {
		if id < 0 || id > maxFieldID || id == 65 {
			return dst, false
		}
		fields[id] = f
	}
	// MTI and bitmap are Seal's; the caller's MAC and KCV fields are
	// replaced.
	fields[0], fields[1], fields[FieldMAC64], fields[FieldMAC128], fields[FieldMACKeyKCV] = nil, nil, nil, nil, nil

	keys := p.Keys()
	macKey := keys.macKey(mti)
	kcv, err := p.c.KCV(macKey)
	if err != nil {
		return dst, false
	}

	var bitmap [16]byte
	for id := 2; id <= maxFieldID; id++ {
		if fields[id] != nil || id == FieldMACKeyKCV || id == FieldMAC128 {
			bitmap[(id-1)/8] |= 0x80 >> ((id - 1) % 8)
		}
	}
	bitmap[0] |= 0x80 // field 96 is always there: secondary bitmap

	start := len(dst)
	out, ok = appendValue(dst, specLayouts[0], mti)
	if !ok {
		return dst, false
	}
	out = appendUpperHex(out, bitmap[:])
	for id := 2; id <= maxFieldID; id++ {
		f := fields[id]
		if id == FieldMACKeyKCV {
			out, ok = appendValue(out, specLayouts[id], kcv)
		}
		if f == nil {
			if !ok {
				return dst, false
			}
			continue
		}
		l := specLayouts[id]
		switch {
		case isEncrypted(id):
			out, ok = p.appendEncrypted(out, keys.Data, l, f)
		case l.kind == layoutUnknown:
			ok = false
		default:
			switch v := f.(type) {
			case *field.String:
				out, ok = appendValue(out, l, v.Value())
			case *field.Binary:
				out, ok = appendValue(out, l, v.Value())
			default:
				b, err := f.Bytes()
				if ok = err == nil; ok {
					out, ok = appendValue(out, l, b)
				}
			}
		}
		if !ok {
			return dst, false
		}
	}
	mac, err := p.c.GenerateMAC(macKey, out[start:], MACPadding)
	if err != nil || len(mac) != 8 {
		return dst, false
	}
	return appendUpperHex(out, mac), true
}

// appendEncrypted appends field f encrypted under key (3DES-CBC of the
// value padded with method 2) in layout l.
func (p *Protector) appendEncrypted(dst []byte, key hsm.KeyName, l fieldLayout, f field.Field) ([]byte, bool) {
	var plain string
	if s, isString := f.(*field.String); isString {
		plain = s.Value()
	} else {
		var err error
		if plain, err = f.String(); err != nil {
			return dst, false
		}
	}
	if len(plain) > MaxEncryptedPlain {
		return dst, false
	}
	ct, err := p.c.Encrypt(key, pad2To(make([]byte, 0, len(plain)+8), plain))
	if err != nil || len(ct) > l.n {
		return dst, false
	}
	dst = appendLength(dst, len(ct), l.digits)
	return append(dst, ct...), true
}

// pad2To appends b padded with ISO 9797-1 method 2 to dst.
func pad2To[T string | []byte](dst []byte, b T) []byte {
	dst = append(dst, b...)
	dst = append(dst, 0x80)
	for len(dst)%8 != 0 {
		dst = append(dst, 0)
	}
	return dst
}

// span is where a field's value lies in the raw message.
type span struct{ off, end int32 }

// scan is the result of parsing a raw message with the fast path.
type scan struct {
	mti     string
	bitmap  []byte
	present [maxFieldID + 1]bool
	val     [maxFieldID + 1]span // value bytes (spaced fields without trailing spaces; hex digits for fixed binary fields)
}

func (s *scan) str(raw []byte, id int) string {
	return string(raw[s.val[id].off:s.val[id].end])
}

// scanCanonical parses raw as a message on Spec. It returns false unless
// every field has a known layout and raw is exactly what the module's
// Pack gives for the message its Unpack reads from raw: MTI of 4 ASCII
// bytes; primary bitmap (and the secondary one when bit 1 is set) in
// upper-case hex, bit 1 set exactly when a field 66-128 is present, bit
// 65 clear; each field in its layout (ASCII bytes except in the binary
// variable fields, length prefixes of decimal digits only, fixed binary
// fields as upper-case hex); no byte after the
// last field. Under these conditions the module's Unpack succeeds and its
// re-Pack gives raw back, and conversely (see scanCanonical's tests).
func scanCanonical(raw []byte, s *scan) bool {
	if !fastOK || len(raw) < 4+16 || !isASCII(raw[:4]) {
		return false
	}
	off := 4
	var bm [16]byte
	if !decodeUpperHex(bm[:8], raw[off:off+16]) {
		return false
	}
	off += 16
	nbits := 64
	if bm[0]&0x80 != 0 {
		if len(raw) < off+16 || !decodeUpperHex(bm[8:], raw[off:off+16]) {
			return false
		}
		off += 16
		nbits = 128
		if bm[8]&0x80 != 0 { // bit 65: a third bitmap, never canonical here
			return false
		}
		any := false
		for _, b := range bm[8:] {
			any = any || b != 0
		}
		if !any {
			return false
		}
	}
	for id := 2; id <= nbits; id++ {
		if bm[(id-1)/8]&(0x80>>((id-1)%8)) == 0 {
			continue
		}
		l := specLayouts[id]
		rest := raw[off:]
		switch l.kind {
		case layoutFixed, layoutSpaced:
			if len(rest) < l.n || !isASCII(rest[:l.n]) {
				return false
			}
			end := l.n
			if l.kind == layoutSpaced {
				for end > 0 && rest[end-1] == ' ' {
					end--
				}
			}
			s.val[id] = span{int32(off), int32(off + end)}
			off += l.n
		case layoutVar, layoutVarBin:
			if len(rest) < l.digits {
				return false
			}
			n := 0
			for _, c := range rest[:l.digits] {
				if c < '0' || c > '9' {
					return false
				}
				n = n*10 + int(c-'0')
			}
			if n > l.n || len(rest) < l.digits+n || (l.kind == layoutVar && !isASCII(rest[l.digits:l.digits+n])) {
				return false
			}
			s.val[id] = span{int32(off + l.digits), int32(off + l.digits + n)}
			off += l.digits + n
		case layoutBinHex:
			if len(rest) < 2*l.n || !isUpperHex(rest[:2*l.n]) {
				return false
			}
			s.val[id] = span{int32(off), int32(off + 2*l.n)}
			off += 2 * l.n
		default:
			return false
		}
		s.present[id] = true
	}
	if off != len(raw) {
		return false
	}
	s.mti = string(raw[:4])
	s.bitmap = make([]byte, nbits/8)
	copy(s.bitmap, bm[:])
	return true
}

// openFast is Open for the messages scanCanonical accepts; ok is false
// for every other input, which then goes to openGeneric. Its checks and
// their order, and so its errors, are those of openGeneric.
func (p *Protector) openFast(raw []byte) (msg *iso8583.Message, err error, ok bool) {
	var s scan
	if !scanCanonical(raw, &s) || !IsDigits(s.mti) {
		return nil, nil, false
	}
	stan := ""
	if s.present[FieldSTAN] {
		stan = digitsOnly(s.str(raw, FieldSTAN), 6)
	}
	plain, err := p.openVerified(raw, s.mti, stan, func(id int) ([]byte, bool) {
		return raw[s.val[id].off:s.val[id].end], s.present[id]
	})
	if err != nil {
		return nil, err, true
	}
	m, berr := s.message(raw, plain)
	if berr != nil {
		// Not reached for a message scanCanonical accepted; let the general
		// path decide.
		return nil, nil, false
	}
	return m, nil, true
}

// message builds the message Unpack would have produced from raw, with the
// encrypted fields set to plain (in the order of encryptedFields).
func (s *scan) message(raw []byte, plain [numEncrypted]string) (*iso8583.Message, error) {
	m := iso8583.NewMessage(Spec)
	if err := m.Bitmap().SetBytes(s.bitmap); err != nil {
		return nil, err
	}
	str := string(raw)
	nbin := 0
	for id := 2; id <= maxFieldID; id++ {
		if s.present[id] && specLayouts[id].kind == layoutBinHex {
			nbin += specLayouts[id].n
		}
	}
	bin := make([]byte, nbin)
	setString := func(id int, v string) error {
		if err := m.BinaryField(id, nil); err != nil {
			return err
		}
		f, isString := m.GetField(id).(*field.String)
		if !isString {
			return fmt.Errorf("wire: field %d is not a string field", id)
		}
		f.SetValue(v)
		return nil
	}
	if err := setString(0, s.mti); err != nil {
		return nil, err
	}
	for id := 2; id <= maxFieldID; id++ {
		if !s.present[id] {
			continue
		}
		v := s.val[id]
		var err error
		switch {
		case id == encryptedFields[0]:
			err = setString(id, plain[0])
		case id == encryptedFields[1]:
			err = setString(id, plain[1])
		case id == encryptedFields[2]:
			err = setString(id, plain[2])
		case specLayouts[id].kind == layoutBinHex:
			n := specLayouts[id].n
			b := bin[:n:n]
			bin = bin[n:]
			decodeUpperHex(b, raw[v.off:v.end])
			err = m.BinaryField(id, b)
		default:
			err = setString(id, str[v.off:v.end])
		}
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}
