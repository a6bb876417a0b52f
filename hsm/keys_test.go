package hsm_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/cardless-atm/cardless/hsm"
)

// refOddParity is the test's own parity check (count the bits).
func refOddParity(b byte) bool {
	n := 0
	for i := 0; i < 8; i++ {
		n += int(b>>i) & 1
	}
	return n%2 == 1
}

func refAdjust(k []byte) []byte {
	out := append([]byte(nil), k...)
	for i, b := range out {
		if !refOddParity(b) {
			out[i] = b ^ 1
		}
	}
	return out
}

func xorAll(parts ...[]byte) []byte {
	out := make([]byte, len(parts[0]))
	for _, p := range parts {
		for i := range out {
			out[i] ^= p[i]
		}
	}
	return out
}

func assertNoKeyInError(t *testing.T, err error, key []byte) {
	t.Helper()
	if err == nil {
		return
	}
	msg := strings.ToUpper(err.Error())
	for i := 0; i+4 <= len(key); i++ {
		if strings.Contains(msg, strings.ToUpper(hex.EncodeToString(key[i:i+4]))) {
			t.Fatalf("error message contains key bytes: %q", err.Error())
		}
	}
}

func TestImportClearKeyChecks(t *testing.T) {
	s := hsm.NewSoft()
	defer s.Close()
	good := mustHex(t, "0123456789ABCDEFFEDCBA9876543210")
	for _, n := range []int{0, 8, 15, 17, 23, 25, 32} {
		k := refAdjust(bytes.Repeat([]byte{0x5E}, n))
		_, err := s.ImportClearKey("k", k)
		if !errors.Is(err, hsm.ErrKeyLength) {
			t.Errorf("%d-byte key: %v, want ErrKeyLength", n, err)
		}
	}
	bad := append([]byte(nil), good...)
	bad[5] ^= 1 // one byte with even parity
	_, err := s.ImportClearKey("k", bad)
	if !errors.Is(err, hsm.ErrKeyParity) {
		t.Fatalf("bad parity: %v", err)
	}
	assertNoKeyInError(t, err, bad)
	if _, err := s.KCV("k"); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("a rejected key was stored: %v", err)
	}
	// Triple-length keys are accepted.
	k3 := mustHex(t, "0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123")
	kcv, err := s.ImportClearKey("k3", k3)
	if err != nil || kcv != refKCV(t, k3) {
		t.Fatalf("triple-length: %q, %v", kcv, err)
	}
}

func TestParityHelpers(t *testing.T) {
	for b := 0; b < 256; b++ {
		if got := hsm.HasOddParity([]byte{byte(b)}); got != refOddParity(byte(b)) {
			t.Fatalf("HasOddParity(%02X) = %v", b, got)
		}
		k := []byte{byte(b)}
		hsm.AdjustParity(k)
		if !refOddParity(k[0]) || k[0]&0xFE != byte(b)&0xFE {
			t.Fatalf("AdjustParity(%02X) = %02X", b, k[0])
		}
	}
}

func TestImportKeyUnderKEK(t *testing.T) {
	kek := mustHex(t, "0123456789ABCDEFFEDCBA9876543210")
	s := newSoftWith(t, hsm.TMK, kek)
	// A working key, encrypted by the test with crypto/des directly.
	work := mustHex(t, "89ABCDEF0123456776543210FEDCBA98")
	enc := make([]byte, 16)
	c := refTDES(t, kek)
	c.Encrypt(enc[:8], work[:8])
	c.Encrypt(enc[8:], work[8:])
	kcv := refKCV(t, work)

	// Wrong KCV: error, nothing stored.
	wrong := "000000"
	if kcv == wrong {
		wrong = "111111"
	}
	err := s.ImportKey(hsm.TMK, hsm.TAK, enc, wrong)
	if !errors.Is(err, hsm.ErrKCVMismatch) {
		t.Fatalf("wrong KCV: %v", err)
	}
	assertNoKeyInError(t, err, work)
	if _, err := s.KCV(hsm.TAK); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("key stored despite KCV mismatch: %v", err)
	}
	for _, bad := range []string{"", "08D7", "08D7B4A", "ZZZZZZ"} {
		if err := s.ImportKey(hsm.TMK, hsm.TAK, enc, bad); !errors.Is(err, hsm.ErrKCVMismatch) {
			t.Errorf("malformed KCV %q: %v", bad, err)
		}
	}
	if err := s.ImportKey(hsm.TMK, hsm.TAK, enc[:15], kcv); !errors.Is(err, hsm.ErrKeyLength) {
		t.Fatalf("15-byte cryptogram: %v", err)
	}
	if err := s.ImportKey("missing", hsm.TAK, enc, kcv); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("missing KEK: %v", err)
	}

	// Right KCV (lower case accepted): stored and usable.
	if err := s.ImportKey(hsm.TMK, hsm.TAK, enc, strings.ToLower(kcv)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.KCV(hsm.TAK); got != kcv {
		t.Fatalf("KCV after import %s, want %s", got, kcv)
	}
	mac, _ := s.GenerateMAC(hsm.TAK, []byte("abc"), hsm.PaddingMethod2)
	if want := refRetailMAC(t, work, []byte("abc"), 2); !bytes.Equal(mac, want) {
		t.Fatalf("MAC with imported key %X, want %X", mac, want)
	}

	// A later import with a bad KCV leaves the existing key in place.
	enc2 := append([]byte(nil), enc...)
	enc2[0] ^= 0xFF
	if err := s.ImportKey(hsm.TMK, hsm.TAK, enc2, kcv); !errors.Is(err, hsm.ErrKCVMismatch) {
		t.Fatalf("corrupted cryptogram: %v", err)
	}
	if got, _ := s.KCV(hsm.TAK); got != kcv {
		t.Fatalf("existing key changed by a failed import: %s", got)
	}
}

func TestGenerateKey(t *testing.T) {
	kek := mustHex(t, "0123456789ABCDEFFEDCBA9876543210")
	s := newSoftWith(t, hsm.TMK, kek)
	enc, kcv, err := s.GenerateKey(hsm.TMK, hsm.TAK)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != 16 {
		t.Fatalf("cryptogram length %d", len(enc))
	}
	clear := make([]byte, 16)
	c := refTDES(t, kek)
	c.Decrypt(clear[:8], enc[:8])
	c.Decrypt(clear[8:], enc[8:])
	for _, b := range clear {
		if !refOddParity(b) {
			t.Fatalf("generated key lacks odd parity")
		}
	}
	if refKCV(t, clear) != kcv {
		t.Fatalf("returned KCV %s does not match the key under the KEK", kcv)
	}
	if got, _ := s.KCV(hsm.TAK); got != kcv {
		t.Fatalf("stored KCV %s, returned %s", got, kcv)
	}
	// The other end imports it under the same KEK.
	peer := newSoftWith(t, hsm.TMK, kek)
	if err := peer.ImportKey(hsm.TMK, hsm.TAK, enc, kcv); err != nil {
		t.Fatalf("peer import: %v", err)
	}
	m1, _ := s.GenerateMAC(hsm.TAK, []byte("sign-on"), hsm.PaddingMethod2)
	if err := peer.VerifyMAC(hsm.TAK, []byte("sign-on"), m1, hsm.PaddingMethod2); err != nil {
		t.Fatalf("peer verify: %v", err)
	}
	enc2, _, err := s.GenerateKey(hsm.TMK, hsm.TEK)
	if err != nil || bytes.Equal(enc, enc2) {
		t.Fatalf("second generated key equal to the first or error %v", err)
	}
}

func TestFormKey(t *testing.T) {
	c1 := mustHex(t, "0123456789ABCDEFFEDCBA9876543210")
	c2 := mustHex(t, "1C1C1C1C1C1C1C1CE0E0E0E0E0E0E0E0") // odd parity? adjusted below
	c2 = refAdjust(c2)
	c3 := refAdjust(mustHex(t, "3B3B3B3B3B3B3B3B7A7A7A7A7A7A7A7A"))
	for _, comps := range [][][]byte{{c1, c2}, {c1, c2, c3}} {
		s := hsm.NewSoft()
		kcvs, kcv, err := s.FormKey(hsm.TMK, comps...)
		if err != nil {
			t.Fatal(err)
		}
		if len(kcvs) != len(comps) {
			t.Fatalf("%d component KCVs", len(kcvs))
		}
		for i, c := range comps {
			if kcvs[i] != refKCV(t, c) {
				t.Fatalf("component %d KCV %s, want %s", i+1, kcvs[i], refKCV(t, c))
			}
		}
		want := refAdjust(xorAll(comps...))
		if kcv != refKCV(t, want) {
			t.Fatalf("formed KCV %s, want %s", kcv, refKCV(t, want))
		}
		if got, _ := s.KCV(hsm.TMK); got != kcv {
			t.Fatalf("stored KCV %s", got)
		}
		s.Close()
	}

	s := hsm.NewSoft()
	defer s.Close()
	bad := append([]byte(nil), c2...)
	bad[3] ^= 1
	_, _, err := s.FormKey(hsm.TMK, c1, bad)
	if !errors.Is(err, hsm.ErrKeyParity) || !strings.Contains(err.Error(), "component 2") {
		t.Fatalf("bad parity component: %v", err)
	}
	assertNoKeyInError(t, err, bad)
	if _, _, err := s.FormKey(hsm.TMK, c1, c2[:8]); !errors.Is(err, hsm.ErrKeyLength) {
		t.Fatalf("mismatched lengths: %v", err)
	}
	if _, _, err := s.FormKey(hsm.TMK, c1); err == nil {
		t.Fatal("one component accepted")
	}
	if _, _, err := s.FormKey(hsm.TMK, c1, c2, c3, c1); err == nil {
		t.Fatal("four components accepted")
	}
	if _, err := s.KCV(hsm.TMK); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("failed FormKey stored a key: %v", err)
	}
}

func TestDeriveVariant(t *testing.T) {
	tmk := mustHex(t, "0123456789ABCDEFFEDCBA9876543210")
	s := newSoftWith(t, hsm.TMK, tmk)
	if err := s.DeriveVariant(hsm.TMK, "tmk.v24", 0x24); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(tmk))
	for i := range tmk {
		want[i] = tmk[i] ^ 0x24
	}
	if got, _ := s.KCV("tmk.v24"); got != refKCV(t, want) {
		t.Fatalf("variant KCV %s, want %s", got, refKCV(t, want))
	}
	mac, _ := s.GenerateMAC("tmk.v24", []byte("0800"), hsm.PaddingMethod1)
	if !bytes.Equal(mac, refRetailMAC(t, want, []byte("0800"), 1)) {
		t.Fatal("MAC under the variant differs from the reference")
	}
	for _, v := range []byte{0x00, 0x01} {
		if err := s.DeriveVariant(hsm.TMK, "x", v); err == nil {
			t.Errorf("variant %02X accepted", v)
		}
	}
	if err := s.DeriveVariant("missing", "x", 0x24); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("missing source: %v", err)
	}
}

func TestDeleteKey(t *testing.T) {
	s := newSoftWith(t, hsm.TAK, mustHex(t, "0123456789ABCDEFFEDCBA9876543210"))
	if err := s.DeleteKey(hsm.TAK); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KCV(hsm.TAK); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestClosed(t *testing.T) {
	s := newSoftWith(t, hsm.TAK, mustHex(t, "0123456789ABCDEFFEDCBA9876543210"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	key := mustHex(t, "0123456789ABCDEFFEDCBA9876543210")
	errs := map[string]error{}
	_, errs["KCV"] = s.KCV(hsm.TAK)
	_, errs["MAC"] = s.GenerateMAC(hsm.TAK, nil, hsm.PaddingMethod1)
	_, errs["Encrypt"] = s.Encrypt(hsm.TAK, nil)
	_, errs["ImportClearKey"] = s.ImportClearKey(hsm.TAK, key)
	_, _, errs["FormKey"] = s.FormKey(hsm.TAK, key, key)
	errs["ImportClearHMACKey"] = s.ImportClearHMACKey(hsm.TokenKey, make([]byte, 32))
	errs["GenerateHMACKey"] = s.GenerateHMACKey(hsm.JournalKey)
	_, errs["HMAC"] = s.HMACSHA256(hsm.TokenKey, nil)
	errs["DeleteKey"] = s.DeleteKey(hsm.TAK)
	errs["DeriveVariant"] = s.DeriveVariant(hsm.TAK, "x", 0x24)
	_, errs["Keys"] = s.Keys()
	errs["Close"] = s.Close()
	for name, err := range errs {
		if !errors.Is(err, hsm.ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
}
