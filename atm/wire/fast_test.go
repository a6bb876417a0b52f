package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/moov-io/iso8583"
)

// Differential tests of the fast paths (fast.go) against the general
// implementation through the iso8583 module (sealGeneric and openGeneric
// in protect.go), which Seal and Open fall back to.

// randomValue returns a value for field id: usually one that fits its
// layout, sometimes one that does not (too long, too short, non-ASCII,
// lower-case hex, empty).
func randomValue(r *rand.Rand, id int) []byte {
	l := specLayouts[id]
	n := l.n
	switch l.kind {
	case layoutVar, layoutVarBin:
		n = r.IntN(min(l.n, 120) + 1)
	case layoutUnknown:
		n = r.IntN(20)
	}
	alphabet := "0123456789"
	if r.IntN(12) == 0 {
		alphabet = "0123456789ABCDEFabcdef XYZ=|:-"
	}
	v := make([]byte, n)
	for i := range v {
		v[i] = alphabet[r.IntN(len(alphabet))]
	}
	if l.kind == layoutBinHex {
		v = v[:0]
		for range l.n {
			v = append(v, byte(r.IntN(256)))
		}
	}
	switch r.IntN(150) {
	case 0:
		v = append(v, 'x')
	case 1:
		if len(v) > 0 {
			v = v[:len(v)-1]
		}
	case 2:
		if len(v) > 0 {
			v[r.IntN(len(v))] = 0xC3
		}
	case 3:
		v = nil
	case 4:
		v = append(v, "   "...)
	}
	return v
}

// randomMessage returns a message on Spec with a random MTI and a random
// set of fields, mostly the fields the system uses.
func randomMessage(r *rand.Rand) *iso8583.Message {
	mtis := []string{"0200", "0210", "0800", "0810", "0420", "0220", "02X0", "020", "ab\xc3d"}
	mti := mtis[r.IntN(len(mtis))]
	if r.IntN(4) != 0 {
		mti = mtis[r.IntN(4)]
	}
	m := NewMessage(mti)
	used := []int{3, 4, 7, 11, 12, 13, 32, 37, 38, 39, 41, 43, 48, 49, 52, 62, 70, 90, 95, 120, 121, 122, 123}
	for _, id := range used {
		if r.IntN(2) == 0 {
			_ = m.BinaryField(id, randomValue(r, id))
		}
	}
	// Now and then a field the system does not use, a MAC or KCV of the
	// caller, or an over-long value for an encrypted field.
	for range r.IntN(3) {
		id := []int{2, 5, 14, 18, 22, 35, 55, 64, 65, 96, 100, 127, 128}[r.IntN(13)]
		_ = m.BinaryField(id, randomValue(r, id))
	}
	if r.IntN(30) == 0 {
		_ = m.Field(FieldCustomerID, strings.Repeat("c", MaxEncryptedPlain+r.IntN(2)))
	}
	return m
}

func TestSealMatchesReference(t *testing.T) {
	p := NewProtector(newModule(t), gen1)
	r := rand.New(rand.NewPCG(1, 2))
	fastHits := 0
	for i := range 3000 {
		m := randomMessage(r)
		before, _ := m.Pack()
		want, werr := p.sealGeneric(m)
		got, gerr := p.Seal(m)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("message %d: Seal = %q, %v; reference %q, %v", i, got, gerr, want, werr)
		}
		if werr != nil && (errors.Is(werr, ErrFieldTooLong) != errors.Is(gerr, ErrFieldTooLong) || werr.Error() != gerr.Error()) {
			t.Fatalf("message %d: error %v, reference %v", i, gerr, werr)
		}
		if after, _ := m.Pack(); !bytes.Equal(before, after) {
			t.Fatalf("message %d: Seal changed the caller's message", i)
		}
		if _, ok := p.sealFast(nil, m); ok {
			fastHits++
		}
	}
	if fastHits < 1000 {
		t.Fatalf("only %d of 3000 messages took the fast path", fastHits)
	}
}

// mutate returns a variant of raw: a flipped, inserted, deleted or
// lower-cased byte, or a cut.
func mutate(r *rand.Rand, raw []byte) []byte {
	b := bytes.Clone(raw)
	if len(b) == 0 {
		return b
	}
	i := r.IntN(len(b))
	switch r.IntN(6) {
	case 0:
		b[i] ^= byte(1 << r.IntN(8))
	case 1:
		b = append(b[:i], append([]byte{"0A \x80"[r.IntN(4)]}, b[i:]...)...)
	case 2:
		b = append(b[:i], b[i+1:]...)
	case 3:
		b = bytes.ToLower(b)
	case 4:
		b = b[:i]
	case 5:
		b[i] = "0123456789ABCDEF"[r.IntN(16)]
	}
	return b
}

// checkOpenSame fails unless Open and openGeneric (the reference) agree on raw:
// both reject it with the same error details, or both accept it and give
// the same message.
func checkOpenSame(t testing.TB, p *Protector, raw []byte) (accepted bool) {
	t.Helper()
	want, werr := p.openGeneric(raw)
	got, gerr := p.Open(raw)
	if (werr == nil) != (gerr == nil) || (want == nil) != (got == nil) {
		t.Fatalf("Open(%q) = %v; reference %v", raw, gerr, werr)
	}
	if werr != nil {
		var we, ge *MessageError
		if !errors.As(werr, &we) || !errors.As(gerr, &ge) {
			t.Fatalf("Open(%q): errors %T %T", raw, gerr, werr)
		}
		if we.Err != ge.Err || we.Field != ge.Field || we.MTI != ge.MTI || we.STAN != ge.STAN || (we.Cause == nil) != (ge.Cause == nil) {
			t.Fatalf("Open(%q) = %v; reference %v", raw, gerr, werr)
		}
		return false
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Open(%q): message differs from the reference's", raw)
	}
	// And they behave the same afterwards.
	a, aerr := got.Pack()
	b, berr := want.Pack()
	if (aerr == nil) != (berr == nil) || !bytes.Equal(a, b) || !reflect.DeepEqual(got, want) {
		t.Fatalf("Open(%q): re-packed message differs from the reference's", raw)
	}
	return true
}

func TestOpenMatchesReference(t *testing.T) {
	mod := newModule(t)
	p := NewProtector(mod, gen1)
	p.SetKeys(gen2) // gen1 previous, gen2 current
	senders := []*Protector{NewProtector(mod, gen1), NewProtector(mod, gen2),
		NewProtector(mod, KeySet{NetMgmtMAC: netMAC, MAC: netMAC, Data: "tek.1"})}
	r := rand.New(rand.NewPCG(3, 4))
	accepted, fast := 0, 0
	for range 3000 {
		m := randomMessage(r)
		var raw []byte
		if r.IntN(8) == 0 {
			raw, _ = m.Pack() // no protection at all
		} else {
			var err error
			if raw, err = senders[r.IntN(len(senders))].sealGeneric(m); err != nil {
				continue
			}
		}
		for k := range 4 {
			in := raw
			for range k {
				in = mutate(r, in)
			}
			if checkOpenSame(t, p, in) {
				accepted++
			}
			var s scan
			if scanCanonical(in, &s) {
				fast++
			}
		}
	}
	for _, seed := range seedMessages(t, senders[0]) {
		checkOpenSame(t, p, seed)
	}
	if accepted < 500 || fast < 1000 {
		t.Fatalf("too few accepted (%d) or fast-path (%d) inputs: the test is not testing much", accepted, fast)
	}
}

// TestScanCanonicalIsRepack: scanCanonical accepts exactly the inputs that
// the module unpacks and re-packs to the same bytes (with a digit MTI and
// fields of simple layouts only), on sealed, packed and mutated messages.
func TestScanCanonicalIsRepack(t *testing.T) {
	p := NewProtector(newModule(t), gen1)
	r := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		m := randomMessage(r)
		raw, err := p.sealGeneric(m)
		if err != nil || r.IntN(5) == 0 {
			if raw, err = m.Pack(); err != nil {
				continue
			}
		}
		for range 3 {
			checkScan(t, raw)
			raw = mutate(r, raw)
		}
	}
}

func checkScan(t testing.TB, raw []byte) {
	t.Helper()
	var s scan
	got := scanCanonical(raw, &s)
	m := iso8583.NewMessage(Spec)
	want := false
	if err := m.Unpack(raw); err == nil {
		again, perr := m.Pack()
		want = perr == nil && bytes.Equal(again, raw) && isASCII(raw[:4])
		for id := range m.GetFields() {
			want = want && (id == 1 || specLayouts[id].kind != layoutUnknown)
		}
	}
	if got != want {
		t.Fatalf("scanCanonical(%q) = %v, unpack and re-pack says %v", raw, got, want)
	}
}
