package wire

import (
	"errors"
	"testing"

	"github.com/cardless-atm/cardless/hsm/tr31"
)

const annexB = "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E"

func TestTR31KeysField48(t *testing.T) {
	k := TR31Keys{TAK: annexB, TEK: annexB}
	s := k.String()
	if s != "TAKB="+annexB+";TEKB="+annexB || KeyFormatOf(s) != KeyFormatTR31 {
		t.Fatalf("String = %q, format %q", s, KeyFormatOf(s))
	}
	if got, err := ParseTR31Keys(s); err != nil || got != k {
		t.Fatalf("ParseTR31Keys = %+v, %v", got, err)
	}
	legacy := KeyBlock{TAK: make([]byte, 16), TAKKCV: "000000", TEK: make([]byte, 16), TEKKCV: "000000"}.String()
	if KeyFormatOf(legacy) != KeyFormatLegacy || KeyFormatOf("XYZ") != "" {
		t.Fatal("KeyFormatOf")
	}
	for name, bad := range map[string]string{
		"legacy":       legacy,
		"order":        "TEKB=" + annexB + ";TAKB=" + annexB,
		"one block":    "TAKB=" + annexB,
		"not a block":  "TAKB=B0016;TEKB=" + annexB,
		"version D":    "TAKB=D" + annexB[1:] + ";TEKB=" + annexB,
		"length lies":  "TAKB=B0081" + annexB[5:] + ";TEKB=" + annexB,
		"three blocks": s + ";TEKB=" + annexB,
	} {
		if _, err := ParseTR31Keys(bad); !errors.Is(err, ErrFieldFormat) {
			t.Errorf("%s: %v, want ErrFieldFormat", name, err)
		}
	}
	if f, err := ParseKeyFormat(""); err != nil || f != KeyFormatTR31 {
		t.Fatal("the default key format is not TR-31")
	}
	if _, err := ParseKeyFormat("tr-31"); err == nil {
		t.Fatal("an unknown key format was accepted")
	}
	if !SameUse(TAKHeader, TAKHeader) || SameUse(TAKHeader, TEKHeader) || SameUse(tr31.Header{KeyUsage: "M3", Algorithm: 'T', ModeOfUse: 'G'}, TAKHeader) {
		t.Fatal("SameUse")
	}
}

func FuzzParseTR31Keys(f *testing.F) {
	f.Add(TR31Keys{TAK: annexB, TEK: annexB}.String())
	f.Add("TAKB=;TEKB=")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseTR31Keys(s)
		if err != nil {
			return
		}
		if again, err := ParseTR31Keys(k.String()); err != nil || again != k {
			t.Fatalf("re-parse of %q: %+v, %v", k.String(), again, err)
		}
	})
}

// TestResponseText: every response code the system sends has words.
func TestResponseText(t *testing.T) {
	for _, rc := range []string{RCApproved, RCDoNotHonour, RCInvalidTransaction, RCInvalidAmount, RCFormatError, RCInvalidAccount,
		RCInsufficientFunds, RCExpired, RCIncorrectPIN, RCExceedsLimit, RCIssuerInoperative, RCDuplicate, RCSystemMalfunction,
		RCSecurityViolation, "65", "75"} {
		if ResponseText(rc) == "" {
			t.Errorf("no text for %s", rc)
		}
	}
	if ResponseText("51") != "insufficient funds" || ResponseText("XX") != "" {
		t.Fatal("ResponseText")
	}
}
