package hsm

import (
	"bytes"
	"crypto/des"
	"encoding/hex"
	"errors"
	"testing"
)

// The cached key schedules must follow the key: a replaced key MACs with
// the new key at once, and replacing, deleting or closing drops the old
// schedules as well as zeroing the old key bytes.
func TestScheduleFollowsKey(t *testing.T) {
	s := NewSoft()
	defer s.Close()
	k1, _ := hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	k2, _ := hex.DecodeString("89ABCDEF0123456776543210FEDCBA98")
	data := []byte("0200 cached schedule check")
	for i, k := range [][]byte{k1, k2} {
		if _, err := s.ImportClearKey(TAK, k); err != nil {
			t.Fatal(err)
		}
		got, err := s.GenerateMAC(TAK, data, PaddingMethod2)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := RetailMAC(k, data, PaddingMethod2)
		if !bytes.Equal(got, want) {
			t.Fatalf("key %d: MAC made with a stale schedule", i+1)
		}
		kcv, _ := s.KCV(TAK)
		if wantKCV, _ := KCVOf(k); kcv != wantKCV {
			t.Fatalf("key %d: KCV %s, want %s", i+1, kcv, wantKCV)
		}
	}

	old := s.keys[TAK]
	if _, err := s.ImportClearKey(TAK, k1); err != nil {
		t.Fatal(err)
	}
	if old.sched != nil || !bytes.Equal(old.key, make([]byte, 16)) {
		t.Fatal("replaced key: schedule kept or bytes not zeroed")
	}

	cur := s.keys[TAK]
	if err := s.DeleteKey(TAK); err != nil {
		t.Fatal(err)
	}
	if cur.sched != nil || !bytes.Equal(cur.key, make([]byte, 16)) {
		t.Fatal("deleted key: schedule kept or bytes not zeroed")
	}
	if _, err := s.GenerateMAC(TAK, data, PaddingMethod2); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("MAC with a deleted key: %v", err)
	}
}

func TestCloseDropsSchedules(t *testing.T) {
	s := NewSoft()
	k, _ := hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	if _, err := s.ImportClearKey(TAK, k); err != nil {
		t.Fatal(err)
	}
	if err := s.DeriveVariant(TAK, "tak.v", 0x24); err != nil {
		t.Fatal(err)
	}
	var held []*entry
	for _, e := range s.keys {
		if e.sched == nil {
			t.Fatal("entry has no key schedule")
		}
		held = append(held, e)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i, e := range held {
		if e.sched != nil || !bytes.Equal(e.key, make([]byte, len(e.key))) {
			t.Fatalf("entry %d: schedule kept or key not zeroed after Close", i)
		}
	}
	if _, err := s.GenerateMAC(TAK, []byte("x"), PaddingMethod1); !errors.Is(err, ErrClosed) {
		t.Fatalf("MAC after Close: %v", err)
	}
}

// Keys loaded from a store file get their schedules at load, and those
// schedules MAC and encrypt like the clear key (double and triple length).
func TestScheduleAfterLoad(t *testing.T) {
	path := t.TempDir() + "/keys"
	sk := bytes.Repeat([]byte{0x5A}, StorageKeyLen)
	k, _ := hex.DecodeString("0123456789ABCDEFFEDCBA98765432100123456789ABCDEF")
	s, err := OpenStore(path, sk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportClearKey(TEK, k); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenStore(path, sk)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.keys[TEK].sched == nil {
		t.Fatal("loaded key has no schedule")
	}
	data := bytes.Repeat([]byte("16 bytes of data"), 3)
	ct, err := s.Encrypt(TEK, data)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := EncryptCBC(k, data); !bytes.Equal(ct, want) {
		t.Fatal("Encrypt after load differs from EncryptCBC")
	}
	mac, err := s.GenerateMAC(TEK, data[:21], PaddingMethod1)
	if err != nil {
		t.Fatal(err)
	}
	// Reference: CBC-MAC with K1 over data zero-padded to 24 bytes, then
	// decrypt with K2 and encrypt with K3.
	c1, _ := des.NewCipher(k[:8])
	c2, _ := des.NewCipher(k[8:16])
	c3, _ := des.NewCipher(k[16:])
	padded := make([]byte, 24)
	copy(padded, data[:21])
	var h [8]byte
	for i := 0; i < len(padded); i += 8 {
		for j := range h {
			h[j] ^= padded[i+j]
		}
		c1.Encrypt(h[:], h[:])
	}
	c2.Decrypt(h[:], h[:])
	c3.Encrypt(h[:], h[:])
	if !bytes.Equal(mac, h[:]) {
		t.Fatal("triple-length MAC after load differs from the reference")
	}
}
