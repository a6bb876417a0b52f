// Package hsmtest is the conformance suite of hsm.Module: the same tests,
// with published vectors, for every implementation (hsm.Soft, the PKCS#11
// module of hsm/p11 on SoftHSM2, and any vendor module). An implementation
// passes when Run passes.
package hsmtest

import (
	"bytes"
	"crypto/des"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/tr31"
)

// Module is what the suite tests: a security module that takes clear keys
// (the ceremony) and computes HMAC-SHA256.
type Module interface {
	hsm.Module
	hsm.ClearKeyImporter
	hsm.HMACer
}

// Variant is the key variant the suite derives (the protocol's network
// management variant, wire.NetMgmtVariant). A module that prepares
// variants at load (hsm/p11 without CKM_XOR_BASE_AND_DATA) must be opened
// with it.
const Variant byte = 0x24

// Run runs the suite. open returns a new, empty module for one test; the
// suite closes nothing (open registers its own cleanup).
func Run(t *testing.T, open func(t *testing.T) Module) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Module)
	}{
		{"KCVPublishedVector", testKCV},
		{"ClearKeyChecks", testClearKeyChecks},
		{"RetailMACVectors", testRetailMACVectors},
		{"RetailMACEveryLength", testRetailMACLengths},
		{"TDEAVectors", testTDEA},
		{"DataLength", testDataLength},
		{"ImportUnderKEK", testImportKey},
		{"ImportWrongKCVKeepsOldKey", testImportWrongKCV},
		{"Replacement", testReplacement},
		{"GenerateKey", testGenerateKey},
		{"FormKey", testFormKey},
		{"DeriveVariant", testDeriveVariant},
		{"HMACSHA256RFC4231", testHMAC},
		{"KeyTypesDoNotMix", testKeyTypes},
		{"MissingKey", testMissingKey},
		{"DeleteKey", testDeleteKey},
		{"Concurrent", testConcurrent},
		{"KeyBlocks", testKeyBlocks},
		{"KeyBlockGeneration", testKeyBlockGeneration},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(string(bytes.ReplaceAll([]byte(s), []byte(" "), nil)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// published is the key of the ISO 9797-1 examples and of the published
// KCV 08D7B4.
const published = "0123456789ABCDEFFEDCBA9876543210"

func load(t *testing.T, m Module, name hsm.KeyName, key []byte) {
	t.Helper()
	if _, err := m.ImportClearKey(name, key); err != nil {
		t.Fatalf("ImportClearKey(%s): %v", name, err)
	}
}

func testKCV(t *testing.T, m Module) {
	kcv, err := m.ImportClearKey(hsm.TMK, mustHex(t, published))
	if err != nil || kcv != "08D7B4" {
		t.Fatalf("ImportClearKey = %q, %v; want 08D7B4", kcv, err)
	}
	if got, err := m.KCV(hsm.TMK); err != nil || got != "08D7B4" {
		t.Fatalf("KCV = %q, %v", got, err)
	}
}

func testClearKeyChecks(t *testing.T, m Module) {
	if _, err := m.ImportClearKey("k", make([]byte, 15)); !errors.Is(err, hsm.ErrKeyLength) {
		t.Errorf("15-byte key: %v", err)
	}
	if _, err := m.ImportClearKey("k", make([]byte, 16)); !errors.Is(err, hsm.ErrKeyParity) {
		t.Errorf("even-parity key: %v", err)
	}
	if _, err := m.ImportClearKey("", mustHex(t, published)); !errors.Is(err, hsm.ErrKeyName) {
		t.Errorf("empty name: %v", err)
	}
	if _, err := m.KCV("k"); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Errorf("a refused key was stored: %v", err)
	}
}

// ISO/IEC 9797-1 Annex B, MAC algorithm 3 (see hsm's vectors_test.go).
func testRetailMACVectors(t *testing.T, m Module) {
	load(t, m, hsm.TAK, mustHex(t, published))
	for _, tc := range []struct {
		data string
		p    hsm.Padding
		want string
	}{
		{"Now is the time for all ", hsm.PaddingMethod1, "A1C72E74EA3FA9B6"},
		{"Now is the time for all ", hsm.PaddingMethod2, "E9086230CA3BE796"},
		{"Now is the time for it", hsm.PaddingMethod1, "2E2B1428CC78254F"},
		{"Now is the time for it", hsm.PaddingMethod2, "5A692CE64F404145"},
	} {
		got, err := m.GenerateMAC(hsm.TAK, []byte(tc.data), tc.p)
		if err != nil || fmt.Sprintf("%X", got) != tc.want {
			t.Errorf("GenerateMAC(%q, %d) = %X, %v; want %s", tc.data, tc.p, got, err, tc.want)
		}
		if err := m.VerifyMAC(hsm.TAK, []byte(tc.data), mustHex(t, tc.want), tc.p); err != nil {
			t.Errorf("VerifyMAC(%q): %v", tc.data, err)
		}
		if err := m.VerifyMAC(hsm.TAK, []byte(tc.data+"."), mustHex(t, tc.want), tc.p); !errors.Is(err, hsm.ErrMACMismatch) {
			t.Errorf("VerifyMAC of changed data: %v", err)
		}
	}
	if _, err := m.GenerateMAC(hsm.TAK, nil, 3); err == nil {
		t.Error("padding method 3 accepted")
	}
}

// Every length from 0 to 40 bytes, both paddings, a double- and a
// triple-length key, against the package's reference RetailMAC.
func testRetailMACLengths(t *testing.T, m Module) {
	keys := map[hsm.KeyName][]byte{"k2": mustHex(t, published), "k3": mustHex(t, "0123456789ABCDEF 23456789ABCDEF01 456789ABCDEF0123")}
	for name, k := range keys {
		load(t, m, name, k)
	}
	data := []byte("The quick brown fox jumps over the lazy dog")
	for name, k := range keys {
		for n := 0; n <= 40; n++ {
			for _, p := range []hsm.Padding{hsm.PaddingMethod1, hsm.PaddingMethod2} {
				want, _ := hsm.RetailMAC(k, data[:n], p)
				got, err := m.GenerateMAC(name, data[:n], p)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s, %d bytes, method %d: %X, %v; want %X", name, n, p, got, err, want)
				}
			}
		}
	}
}

func testTDEA(t *testing.T, m Module) {
	for _, tc := range []struct{ key, plain, ecb string }{
		// NIST SP 800-67 Rev. 1, Appendix B.
		{"0123456789ABCDEF 23456789ABCDEF01 456789ABCDEF0123", hex.EncodeToString([]byte("The qufck brown fox jump")),
			"A826FD8CE53B855F CCE21C8112256FE6 68D5C05DD9B6B900"},
		// Two-key TDEA of the FIPS 81 text (Bouncy Castle DESede vectors).
		{published, hex.EncodeToString([]byte("Now is the time for all ")),
			"D80A0D8B2BAE5E4E 6A0094171ABCFC27 75D2235A706E232C"},
	} {
		key, plain, ecb := mustHex(t, tc.key), mustHex(t, tc.plain), mustHex(t, tc.ecb)
		load(t, m, "k", key)
		enc, err := m.Encrypt("k", plain)
		if err != nil || !bytes.Equal(enc[:8], ecb[:8]) {
			t.Fatalf("Encrypt: first block %X, %v; want %X", enc, err, ecb[:8])
		}
		want, _ := hsm.EncryptCBC(key, plain)
		if !bytes.Equal(enc, want) {
			t.Fatalf("Encrypt = %X, want (CBC, zero IV) %X", enc, want)
		}
		back, err := m.Decrypt("k", enc)
		if err != nil || !bytes.Equal(back, plain) {
			t.Fatalf("Decrypt = %X, %v", back, err)
		}
	}
}

func testDataLength(t *testing.T, m Module) {
	load(t, m, "k", mustHex(t, published))
	for _, n := range []int{1, 7, 9, 15} {
		if _, err := m.Encrypt("k", make([]byte, n)); !errors.Is(err, hsm.ErrDataLength) {
			t.Errorf("Encrypt %d bytes: %v", n, err)
		}
		if _, err := m.Decrypt("k", make([]byte, n)); !errors.Is(err, hsm.ErrDataLength) {
			t.Errorf("Decrypt %d bytes: %v", n, err)
		}
	}
}

// ecb encrypts key under kek (3DES-ECB), as the far end of a key
// exchange does.
func ecb(t *testing.T, kek, key []byte) []byte {
	t.Helper()
	k := kek
	if len(k) == 16 {
		k = append(append([]byte(nil), kek...), kek[:8]...)
	}
	c, err := des.NewTripleDESCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(key))
	for i := 0; i < len(key); i += 8 {
		c.Encrypt(out[i:], key[i:i+8])
	}
	return out
}

var (
	kekClear = "0123456789ABCDEFFEDCBA9876543210"
	wkClear  = "89ABCDEF0123456776543210FEDCBA98"
	wk2Clear = "0E329232EA6D0D73FEDCBA9876543210"
)

func testImportKey(t *testing.T, m Module) {
	kek, wk := mustHex(t, kekClear), mustHex(t, wkClear)
	load(t, m, hsm.TMK, kek)
	kcv, _ := hsm.KCVOf(wk)
	if err := m.ImportKey(hsm.TMK, hsm.TAK, ecb(t, kek, wk), kcv); err != nil {
		t.Fatalf("ImportKey: %v", err)
	}
	if got, err := m.KCV(hsm.TAK); err != nil || got != kcv {
		t.Fatalf("KCV = %q, %v; want %s", got, err, kcv)
	}
	want, _ := hsm.RetailMAC(wk, []byte("imported"), hsm.PaddingMethod2)
	if got, err := m.GenerateMAC(hsm.TAK, []byte("imported"), hsm.PaddingMethod2); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("MAC with the imported key = %X, %v; want %X", got, err, want)
	}
	if err := m.ImportKey(hsm.TMK, "odd", make([]byte, 12), kcv); !errors.Is(err, hsm.ErrKeyLength) {
		t.Fatalf("12-byte cryptogram: %v", err)
	}
	if err := m.ImportKey("no.such.kek", "x", ecb(t, kek, wk), kcv); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("missing KEK: %v", err)
	}
}

func testImportWrongKCV(t *testing.T, m Module) {
	kek, wk, wk2 := mustHex(t, kekClear), mustHex(t, wkClear), mustHex(t, wk2Clear)
	load(t, m, hsm.TMK, kek)
	kcv, _ := hsm.KCVOf(wk)
	if err := m.ImportKey(hsm.TMK, hsm.TAK, ecb(t, kek, wk), kcv); err != nil {
		t.Fatal(err)
	}
	err := m.ImportKey(hsm.TMK, hsm.TAK, ecb(t, kek, wk2), kcv) // wk2 with wk's KCV
	if !errors.Is(err, hsm.ErrKCVMismatch) {
		t.Fatalf("wrong KCV: %v", err)
	}
	if got, err := m.KCV(hsm.TAK); err != nil || got != kcv {
		t.Fatalf("after a refused import KCV = %q, %v; want the old key's %s", got, err, kcv)
	}
	if err := m.ImportKey(hsm.TMK, "new", ecb(t, kek, wk2), kcv); !errors.Is(err, hsm.ErrKCVMismatch) {
		t.Fatalf("wrong KCV, new name: %v", err)
	}
	if _, err := m.KCV("new"); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("a key refused for its KCV was stored: %v", err)
	}
}

func testReplacement(t *testing.T, m Module) {
	wk, wk2 := mustHex(t, wkClear), mustHex(t, wk2Clear)
	load(t, m, hsm.TEK, wk)
	load(t, m, hsm.TEK, wk2)
	kcv, _ := hsm.KCVOf(wk2)
	if got, err := m.KCV(hsm.TEK); err != nil || got != kcv {
		t.Fatalf("KCV after replacement = %q, %v; want %s", got, err, kcv)
	}
	want, _ := hsm.EncryptCBC(wk2, make([]byte, 16))
	if got, err := m.Encrypt(hsm.TEK, make([]byte, 16)); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Encrypt after replacement = %X, %v", got, err)
	}
	mac, _ := hsm.RetailMAC(wk2, []byte("x"), hsm.PaddingMethod1)
	if err := m.VerifyMAC(hsm.TEK, []byte("x"), mac, hsm.PaddingMethod1); err != nil {
		t.Fatalf("MAC after replacement: %v", err)
	}
}

func testGenerateKey(t *testing.T, m Module) {
	kek := mustHex(t, kekClear)
	load(t, m, hsm.TMK, kek)
	enc, kcv, err := m.GenerateKey(hsm.TMK, hsm.QRMAC)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != 16 {
		t.Fatalf("generated key cryptogram is %d bytes", len(enc))
	}
	// Decrypt the cryptogram as the far end would.
	k := append(append([]byte(nil), kek...), kek[:8]...)
	c, _ := des.NewTripleDESCipher(k)
	clear := make([]byte, 16)
	c.Decrypt(clear, enc)
	c.Decrypt(clear[8:], enc[8:])
	if !hsm.HasOddParity(clear) {
		t.Fatal("generated key does not have odd parity")
	}
	if got, _ := hsm.KCVOf(clear); got != kcv {
		t.Fatalf("KCV %s, the cryptogram's key has %s", kcv, got)
	}
	want, _ := hsm.RetailMAC(clear, []byte("generated"), hsm.PaddingMethod1)
	if got, err := m.GenerateMAC(hsm.QRMAC, []byte("generated"), hsm.PaddingMethod1); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("MAC = %X, %v; want %X", got, err, want)
	}
	enc2, _, err := m.GenerateKey(hsm.TMK, "other")
	if err != nil || bytes.Equal(enc, enc2) {
		t.Fatalf("two generated keys: %X %X %v", enc, enc2, err)
	}
}

func testFormKey(t *testing.T, m Module) {
	c1, c2 := mustHex(t, published), mustHex(t, wkClear)
	kcvs, kcv, err := m.FormKey(hsm.TMK, c1, c2)
	if err != nil {
		t.Fatal(err)
	}
	k := make([]byte, 16)
	for i := range k {
		k[i] = c1[i] ^ c2[i]
	}
	hsm.AdjustParity(k)
	w1, _ := hsm.KCVOf(c1)
	w2, _ := hsm.KCVOf(c2)
	w, _ := hsm.KCVOf(k)
	if len(kcvs) != 2 || kcvs[0] != w1 || kcvs[1] != w2 || kcv != w {
		t.Fatalf("FormKey = %v, %s; want [%s %s], %s", kcvs, kcv, w1, w2, w)
	}
	if _, _, err := m.FormKey("x", c1); err == nil {
		t.Fatal("one component accepted")
	}
	if _, _, err := m.FormKey("x", c1, make([]byte, 16)); !errors.Is(err, hsm.ErrKeyParity) {
		t.Fatalf("even-parity component: %v", err)
	}
}

func testDeriveVariant(t *testing.T, m Module) {
	k := mustHex(t, published)
	load(t, m, hsm.TMK, k)
	if err := m.DeriveVariant(hsm.TMK, "tmk.net", Variant); err != nil {
		t.Fatal(err)
	}
	v := make([]byte, len(k))
	for i := range k {
		v[i] = k[i] ^ Variant
	}
	want, _ := hsm.RetailMAC(v, []byte("sign-on"), hsm.PaddingMethod2)
	if got, err := m.GenerateMAC("tmk.net", []byte("sign-on"), hsm.PaddingMethod2); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("MAC with the variant = %X, %v; want %X", got, err, want)
	}
	if w, _ := hsm.KCVOf(v); func() bool { g, _ := m.KCV("tmk.net"); return g != w }() {
		t.Fatal("variant KCV differs")
	}
	for _, bad := range []byte{0x00, 0x01} {
		if err := m.DeriveVariant(hsm.TMK, "x", bad); err == nil {
			t.Fatalf("variant 0x%02X accepted", bad)
		}
	}
	if err := m.DeriveVariant("missing", "x", Variant); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("variant of a missing key: %v", err)
	}
}

// RFC 4231 test case 6: a 131-byte key (SoftHSM2 takes HMAC keys of 32
// bytes or more, so the short-key cases are not portable).
func testHMAC(t *testing.T, m Module) {
	key := bytes.Repeat([]byte{0xaa}, 131)
	if err := m.ImportClearHMACKey(hsm.TokenKey, key); err != nil {
		t.Fatal(err)
	}
	data := []byte("Test Using Larger Than Block-Size Key - Hash Key First")
	want := mustHex(t, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
	got, err := m.HMACSHA256(hsm.TokenKey, data)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("HMACSHA256 = %x, %v", got, err)
	}
	if err := m.VerifyHMACSHA256(hsm.TokenKey, data, want); err != nil {
		t.Fatal(err)
	}
	if err := m.VerifyHMACSHA256(hsm.TokenKey, data[1:], want); !errors.Is(err, hsm.ErrMACMismatch) {
		t.Fatalf("changed data: %v", err)
	}
	if err := m.VerifyHMACSHA256(hsm.TokenKey, data, want[:16]); !errors.Is(err, hsm.ErrMACMismatch) {
		t.Fatalf("truncated MAC: %v", err)
	}
	if err := m.ImportClearHMACKey("short", make([]byte, 15)); !errors.Is(err, hsm.ErrKeyLength) {
		t.Fatalf("15-byte HMAC key: %v", err)
	}
}

func testKeyTypes(t *testing.T, m Module) {
	load(t, m, hsm.TAK, mustHex(t, published))
	if err := m.ImportClearHMACKey(hsm.TokenKey, bytes.Repeat([]byte{0x42}, 32)); err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{}
	_, checks["HMAC with a 3DES key"] = m.HMACSHA256(hsm.TAK, nil)
	_, checks["MAC with an HMAC key"] = m.GenerateMAC(hsm.TokenKey, nil, hsm.PaddingMethod1)
	_, checks["encrypt with an HMAC key"] = m.Encrypt(hsm.TokenKey, make([]byte, 8))
	_, checks["KCV of an HMAC key"] = m.KCV(hsm.TokenKey)
	_, _, checks["an HMAC key as KEK"] = m.GenerateKey(hsm.TokenKey, "x")
	for name, err := range checks {
		if !errors.Is(err, hsm.ErrKeyType) {
			t.Errorf("%s: %v, want ErrKeyType", name, err)
		}
	}
}

func testMissingKey(t *testing.T, m Module) {
	checks := map[string]error{}
	_, checks["KCV"] = m.KCV("missing")
	_, checks["MAC"] = m.GenerateMAC("missing", nil, hsm.PaddingMethod1)
	_, checks["Encrypt"] = m.Encrypt("missing", make([]byte, 8))
	_, checks["HMAC"] = m.HMACSHA256("missing", nil)
	for name, err := range checks {
		if !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("%s: %v, want ErrKeyNotFound", name, err)
		}
	}
}

func testDeleteKey(t *testing.T, m Module) {
	load(t, m, hsm.TAK, mustHex(t, published))
	if err := m.DeleteKey(hsm.TAK); err != nil {
		t.Fatal(err)
	}
	if _, err := m.KCV(hsm.TAK); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := m.DeleteKey(hsm.TAK); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
}

func testConcurrent(t *testing.T, m Module) {
	k := mustHex(t, published)
	load(t, m, hsm.TAK, k)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				data := []byte(fmt.Sprintf("goroutine %d message %d", g, i))
				want, _ := hsm.RetailMAC(k, data, hsm.PaddingMethod2)
				got, err := m.GenerateMAC(hsm.TAK, data, hsm.PaddingMethod2)
				if err != nil || !bytes.Equal(got, want) {
					errs <- fmt.Errorf("%q: %X, %v", data, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// kbpkClear is the suite's key block protection key: the TR-31:2018
// Annex A version B example KBPK with odd parity.
const kbpkClear = "DC7515F2BFC17F85CE49F2CB25CB20F7"

func header(usage string, mode byte) tr31.Header {
	return tr31.Header{Version: 'B', KeyUsage: usage, Algorithm: 'T', ModeOfUse: mode, KeyVersion: "00", Exportability: 'N'}
}

// testKeyBlocks: a module that takes TR-31 key blocks binds each key to
// the usage of its header: a MAC key never encrypts, a data key never
// MACs, neither wraps keys; a block that does not verify, or carries a
// usage the module does not support, stores nothing.
func testKeyBlocks(t *testing.T, m Module) {
	kb, ok := m.(hsm.KeyBlockImporter)
	if !ok {
		t.Skipf("%T does not take TR-31 key blocks", m)
	}
	kbpk, mk, dk := mustHex(t, kbpkClear), mustHex(t, wkClear), mustHex(t, wk2Clear)
	load(t, m, "kbpk", kbpk)
	wrap := func(h tr31.Header, key []byte) string {
		b, err := tr31.Wrap(kbpk, h, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	macBlock := wrap(header("M3", 'C'), mk)
	h, kcv, err := kb.ImportKeyBlock("kbpk", hsm.TAK, macBlock)
	if want, _ := hsm.KCVOf(mk); err != nil || kcv != want || h.KeyUsage != "M3" {
		t.Fatalf("ImportKeyBlock(M3) = %+v, %q, %v; want KCV %s", h, kcv, err, want)
	}
	if _, _, err := kb.ImportKeyBlock("kbpk", hsm.TEK, wrap(header("D0", 'B'), dk)); err != nil {
		t.Fatal(err)
	}
	want, _ := hsm.RetailMAC(mk, []byte("sign-on"), hsm.PaddingMethod2)
	if got, err := m.GenerateMAC(hsm.TAK, []byte("sign-on"), hsm.PaddingMethod2); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("MAC with the M3 key = %X, %v", got, err)
	}
	if err := m.VerifyMAC(hsm.TAK, []byte("sign-on"), want, hsm.PaddingMethod2); err != nil {
		t.Fatal(err)
	}
	enc, _ := hsm.EncryptCBC(dk, make([]byte, 16))
	if got, err := m.Encrypt(hsm.TEK, make([]byte, 16)); err != nil || !bytes.Equal(got, enc) {
		t.Fatalf("Encrypt with the D0 key = %X, %v", got, err)
	}
	refused := map[string]error{}
	_, refused["encrypt with the MAC key"] = m.Encrypt(hsm.TAK, make([]byte, 8))
	_, refused["decrypt with the MAC key"] = m.Decrypt(hsm.TAK, make([]byte, 8))
	_, refused["MAC with the data key"] = m.GenerateMAC(hsm.TEK, nil, hsm.PaddingMethod1)
	refused["verify with the data key"] = m.VerifyMAC(hsm.TEK, nil, make([]byte, 8), hsm.PaddingMethod1)
	_, _, refused["the MAC key as KEK"] = m.GenerateKey(hsm.TAK, "x")
	refused["import under the data key"] = m.ImportKey(hsm.TEK, "x", make([]byte, 16), "000000")
	refused["a variant of the MAC key"] = m.DeriveVariant(hsm.TAK, "x", Variant)
	_, _, refused["the data key as KBPK"] = kb.ImportKeyBlock(hsm.TEK, "x", macBlock)
	for name, err := range refused {
		if !errors.Is(err, hsm.ErrKeyUsage) {
			t.Errorf("%s: %v, want ErrKeyUsage", name, err)
		}
	}
	// Mode G: generate only.
	if _, _, err := kb.ImportKeyBlock("kbpk", "gen.only", wrap(header("M3", 'G'), mk)); err != nil {
		t.Fatal(err)
	}
	if err := m.VerifyMAC("gen.only", []byte("sign-on"), want, hsm.PaddingMethod2); !errors.Is(err, hsm.ErrKeyUsage) {
		t.Errorf("verify with a generate-only key: %v", err)
	}
	// Relabelling the MAC key as a data key breaks the block's MAC.
	if _, _, err := kb.ImportKeyBlock("kbpk", "relabelled", macBlock[:5]+"D0TB"+macBlock[9:]); !errors.Is(err, tr31.ErrMAC) {
		t.Errorf("relabelled block: %v, want tr31.ErrMAC", err)
	}
	hd := header("M3", 'C')
	hd.Version = 'D' // the 3DES protection key's bytes as an AES key: refused
	if _, _, err := kb.ImportKeyBlock("kbpk", "aes", wrap(hd, mk)); !errors.Is(err, tr31.ErrVersion) {
		t.Errorf("a version D block under a 3DES protection key: %v, want tr31.ErrVersion", err)
	}
	if _, _, err := kb.ImportKeyBlock("kbpk", "pin", wrap(header("P0", 'E'), mk)); !errors.Is(err, hsm.ErrKeyUsage) {
		t.Errorf("a PIN key block: %v, want ErrKeyUsage", err)
	}
	for _, name := range []hsm.KeyName{"relabelled", "pin", "aes", "x"} {
		if _, err := m.KCV(name); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("%s was stored: %v", name, err)
		}
	}
}

// testKeyBlockGeneration: an issued block opens, under the KBPK, to the
// key the module now holds, with the usage asked for.
func testKeyBlockGeneration(t *testing.T, m Module) {
	g, ok := m.(hsm.KeyBlockGenerator)
	if !ok {
		t.Skipf("%T does not issue TR-31 key blocks", m)
	}
	kbpk := mustHex(t, kbpkClear)
	load(t, m, "kbpk", kbpk)
	block, kcv, err := g.GenerateKeyBlock("kbpk", "issued", header("D0", 'B'))
	if err != nil {
		t.Fatal(err)
	}
	h, key, err := tr31.Unwrap(kbpk, block)
	if err != nil || h.KeyUsage != "D0" || h.ModeOfUse != 'B' || len(key) != 16 || !hsm.HasOddParity(key) {
		t.Fatalf("issued block: %+v, %d-byte key, %v", h, len(key), err)
	}
	if want, _ := hsm.KCVOf(key); kcv != want {
		t.Fatalf("KCV %s, the block's key has %s", kcv, want)
	}
	enc, _ := hsm.EncryptCBC(key, make([]byte, 8))
	if got, err := m.Encrypt("issued", make([]byte, 8)); err != nil || !bytes.Equal(got, enc) {
		t.Fatalf("Encrypt with the issued key = %X, %v", got, err)
	}
	if _, err := m.GenerateMAC("issued", nil, hsm.PaddingMethod1); !errors.Is(err, hsm.ErrKeyUsage) {
		t.Fatalf("MAC with the issued data key: %v", err)
	}
}
