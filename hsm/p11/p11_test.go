//go:build cgo

package p11_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/hsmtest"
	"github.com/cardless-atm/cardless/hsm/p11"
	"github.com/cardless-atm/cardless/hsm/p11/softhsm"
	"github.com/cardless-atm/cardless/hsm/tr31"
	"github.com/miekg/pkcs11"
)

const (
	softhsmLib = softhsm.Library
	testPIN    = softhsm.PIN
)

// softToken makes a fresh SoftHSM2 token for t.
func softToken(t *testing.T, label string) { softhsm.Token(t, label) }

func open(t *testing.T, cfg p11.Config) *p11.Module {
	t.Helper()
	m, err := p11.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func config(label string) p11.Config {
	return p11.Config{Library: softhsmLib, TokenLabel: label, PIN: testPIN, ClearKeyFallback: true, Variants: []byte{hsmtest.Variant}}
}

// TestConformance runs the hsm conformance suite on a SoftHSM2 token.
func TestConformance(t *testing.T) {
	hsmtest.Run(t, func(t *testing.T) hsmtest.Module {
		softToken(t, "conformance")
		return open(t, config("conformance"))
	})
}

// TestSoftHSM2Paths pins what SoftHSM2 2.6 can do inside: no DES3 unwrap
// or wrap under ECB, no key extraction, so import, generation and
// variants take the paths through the clear value, which the
// configuration must allow.
func TestSoftHSM2Paths(t *testing.T) {
	softToken(t, "paths")
	m := open(t, config("paths"))
	if c := m.Capabilities(); c.UnwrapDES3 || c.WrapDES3 || c.ExtractKey {
		t.Fatalf("SoftHSM2 capabilities %+v: the tested paths changed, update the docs", c)
	}
	p := m.Paths()
	if !strings.HasPrefix(p["import"], "C_Decrypt(CKM_DES3_ECB) + C_CreateObject (clear value in memory") {
		t.Fatalf("import path %q", p["import"])
	}
	m.Close()

	cfg := config("paths")
	cfg.ClearKeyFallback = false
	strict := open(t, cfg)
	if _, err := strict.ImportClearKey(hsm.TMK, []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}); err != nil {
		t.Fatal(err)
	}
	if err := strict.ImportKey(hsm.TMK, hsm.TAK, make([]byte, 16), "000000"); !errors.Is(err, p11.ErrMechanism) {
		t.Fatalf("ImportKey without the fallback: %v, want ErrMechanism", err)
	}
	if _, _, err := strict.GenerateKey(hsm.TMK, hsm.QRMAC); !errors.Is(err, p11.ErrMechanism) {
		t.Fatalf("GenerateKey without the fallback: %v, want ErrMechanism", err)
	}
	if _, err := strict.KCV(hsm.TAK); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("a refused import left a key: %v", err)
	}
	if p := strict.Paths()["import"]; !strings.HasPrefix(p, "unavailable") {
		t.Fatalf("import path without the fallback: %q", p)
	}
}

// TestKeysNotExtractable checks, through a session of its own, that every
// object the module creates is sensitive and not extractable, and that the
// token refuses to return its value.
func TestKeysNotExtractable(t *testing.T) {
	softToken(t, "attrs")
	m := open(t, config("attrs"))
	if _, err := m.ImportClearKey(hsm.TMK, []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.GenerateKey(hsm.TMK, hsm.QRMAC); err != nil {
		t.Fatal(err)
	}
	if err := m.GenerateHMACKey(hsm.JournalKey); err != nil {
		t.Fatal(err)
	}
	m.Close()

	ctx := pkcs11.New(softhsmLib)
	if err := ctx.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer ctx.Destroy()
	defer ctx.Finalize()
	slots, _ := ctx.GetSlotList(true)
	s, err := ctx.OpenSession(slots[0], pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := ctx.Login(s, pkcs11.CKU_USER, testPIN); err != nil {
		t.Fatal(err)
	}
	ctx.FindObjectsInit(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY)})
	objs, _, _ := ctx.FindObjects(s, 100)
	ctx.FindObjectsFinal(s)
	// TMK: key, mac1, variant, variant mac1; QR key the same; journal key.
	if len(objs) != 9 {
		t.Fatalf("%d secret objects in the token, want 9", len(objs))
	}
	for _, o := range objs {
		a, err := ctx.GetAttributeValue(s, o, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil), pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil)})
		if err != nil {
			t.Fatal(err)
		}
		name := string(a[0].Value) + "/" + string(a[1].Value)
		if a[2].Value[0] != 1 || a[3].Value[0] != 0 || a[4].Value[0] != 1 {
			t.Errorf("%s: sensitive %v, extractable %v, token %v", name, a[2].Value, a[3].Value, a[4].Value)
		}
		if _, err := ctx.GetAttributeValue(s, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); err == nil {
			t.Errorf("%s: the token returned the key's value", name)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	softToken(t, "errors")
	for _, tc := range []struct {
		name string
		edit func(*p11.Config)
		want error
		text string
	}{
		{"wrong PIN", func(c *p11.Config) { c.PIN = "0000-wrong" }, p11.ErrPIN, `p11: wrong user PIN: token "errors"`},
		{"missing token", func(c *p11.Config) { c.TokenLabel = "atm-keys" }, p11.ErrNoToken,
			`p11: token not found: no token labelled "atm-keys" in ` + softhsmLib + ` (tokens present: "errors")`},
		{"missing library", func(c *p11.Config) { c.Library = "/nonexistent/libpkcs11.so" }, p11.ErrLibrary,
			"p11: PKCS#11 library: cannot load /nonexistent/libpkcs11.so"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config("errors")
			tc.edit(&cfg)
			m, err := p11.Open(cfg)
			if m != nil || !errors.Is(err, tc.want) || err.Error() != tc.text {
				t.Fatalf("Open = %v, %q; want %q", m, err, tc.text)
			}
			if strings.Contains(err.Error(), testPIN) || strings.Contains(err.Error(), "0000-wrong") {
				t.Fatal("the error shows a PIN")
			}
		})
	}
	m := open(t, config("errors"))
	if _, err := m.KCV(hsm.TMK); !errors.Is(err, hsm.ErrKeyNotFound) || err.Error() != "hsm: key not found: tmk" {
		t.Fatalf("missing key: %v", err)
	}
}

// TestKeysPersist: keys are token objects; a new Module (a restart) finds
// them, and Keys lists them.
func TestKeysPersist(t *testing.T) {
	softToken(t, "persist")
	m := open(t, config("persist"))
	kcv, err := m.ImportClearKey(hsm.TMK, []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.GenerateHMACKey(hsm.JournalKey); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m = open(t, config("persist"))
	keys, err := m.Keys()
	if err != nil {
		t.Fatal(err)
	}
	want := []hsm.KeyInfo{{Name: hsm.JournalKey, Type: "HMAC-SHA256"}, {Name: hsm.TMK, Type: "3DES-2", KCV: kcv}}
	if len(keys) != 2 || keys[0] != want[0] || keys[1] != want[1] {
		t.Fatalf("Keys = %+v, want %+v", keys, want)
	}
}

// TestReplacedElsewhere: a key replaced in the token by another session
// (atmctl, say) after this module cached its objects is found again, and
// the new key is used.
func TestReplacedElsewhere(t *testing.T) {
	softToken(t, "elsewhere")
	k1 := []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}
	k2 := []byte{0x89, 0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67, 0x76, 0x54, 0x32, 0x10, 0xFE, 0xDC, 0xBA, 0x98}
	m1 := open(t, config("elsewhere"))
	if _, err := m1.ImportClearKey(hsm.TAK, k1); err != nil {
		t.Fatal(err)
	}
	if _, err := m1.GenerateMAC(hsm.TAK, []byte("x"), hsm.PaddingMethod1); err != nil {
		t.Fatal(err)
	}
	m2 := open(t, config("elsewhere"))
	if _, err := m2.ImportClearKey(hsm.TAK, k2); err != nil {
		t.Fatal(err)
	}
	want, _ := hsm.RetailMAC(k2, []byte("x"), hsm.PaddingMethod1)
	got, err := m1.GenerateMAC(hsm.TAK, []byte("x"), hsm.PaddingMethod1)
	if err != nil || string(got) != string(want) {
		t.Fatalf("MAC after the replacement elsewhere = %X, %v; want %X (the new key)", got, err, want)
	}
}

// TestKeyBlockUsagePersists: the usage of a key from a TR-31 block is kept
// in the token (CKA_ID) and enforced after a restart; without
// clearKeyFallback no key block is opened.
func TestKeyBlockUsagePersists(t *testing.T) {
	softToken(t, "usage")
	kbpk := []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}
	m := open(t, config("usage"))
	if _, err := m.ImportClearKey("kbpk", kbpk); err != nil {
		t.Fatal(err)
	}
	block, err := tr31.Wrap(kbpk, tr31.Header{Version: 'B', KeyUsage: "M3", Algorithm: 'T', ModeOfUse: 'C', KeyVersion: "00", Exportability: 'N'},
		[]byte{0x89, 0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67, 0x76, 0x54, 0x32, 0x10, 0xFE, 0xDC, 0xBA, 0x98}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.ImportKeyBlock("kbpk", hsm.TAK, block); err != nil {
		t.Fatal(err)
	}
	m.Close()
	cfg := config("usage")
	cfg.ClearKeyFallback = false
	m = open(t, cfg)
	if _, err := m.GenerateMAC(hsm.TAK, []byte("x"), hsm.PaddingMethod1); err != nil {
		t.Fatalf("MAC after restart: %v", err)
	}
	if _, err := m.Encrypt(hsm.TAK, make([]byte, 8)); !errors.Is(err, hsm.ErrKeyUsage) {
		t.Fatalf("encrypt with the MAC key after restart: %v, want ErrKeyUsage", err)
	}
	if _, _, err := m.ImportKeyBlock("kbpk", hsm.TEK, block); !errors.Is(err, p11.ErrMechanism) {
		t.Fatalf("key block without clearKeyFallback: %v, want ErrMechanism", err)
	}
}

// TestInterruptedRelabelFinished: a replacement stopped while relabelling
// (the new set's other objects already under the name, its "key" object
// still pending) is finished by the next lookup, and the key works whole.
func TestInterruptedRelabelFinished(t *testing.T) {
	softToken(t, "relabel")
	k := []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}
	m := open(t, config("relabel"))
	if _, err := m.ImportClearKey(hsm.TAK, k); err != nil {
		t.Fatal(err)
	}
	m.Close()
	// Move the key object back to the pending label, as a crash between
	// the relabels would leave it.
	ctx := pkcs11.New(softhsmLib)
	if err := ctx.Initialize(); err != nil {
		t.Fatal(err)
	}
	slots, _ := ctx.GetSlotList(true)
	s, _ := ctx.OpenSession(slots[0], pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err := ctx.Login(s, pkcs11.CKU_USER, testPIN); err != nil {
		t.Fatal(err)
	}
	ctx.FindObjectsInit(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, string(hsm.TAK)), pkcs11.NewAttribute(pkcs11.CKA_ID, []byte("key"))})
	objs, _, _ := ctx.FindObjects(s, 2)
	ctx.FindObjectsFinal(s)
	if len(objs) != 1 {
		t.Fatalf("%d key objects", len(objs))
	}
	if err := ctx.SetAttributeValue(s, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, string(hsm.TAK)+"#new")}); err != nil {
		t.Fatal(err)
	}
	ctx.Logout(s)
	ctx.CloseSession(s)
	ctx.Finalize()
	ctx.Destroy()

	m = open(t, config("relabel"))
	want, _ := hsm.RetailMAC(k, []byte("after the crash"), hsm.PaddingMethod2)
	got, err := m.GenerateMAC(hsm.TAK, []byte("after the crash"), hsm.PaddingMethod2)
	if err != nil || string(got) != string(want) {
		t.Fatalf("MAC after recovery = %X, %v; want %X", got, err, want)
	}
	keys, _ := m.Keys()
	if len(keys) != 1 || keys[0].Name != hsm.TAK {
		t.Fatalf("keys after recovery: %+v", keys)
	}
}
