package hsm

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// Close must overwrite the key bytes themselves, not only drop references.
func TestCloseZeroesKeys(t *testing.T) {
	dir := t.TempDir()
	sk := bytes.Repeat([]byte{0xA5}, StorageKeyLen)
	s, err := OpenStore(dir+"/keys", sk)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	if _, err := s.ImportClearKey(TMK, k); err != nil {
		t.Fatal(err)
	}
	if err := s.ImportClearHMACKey(TokenKey, bytes.Repeat([]byte{0x42}, 32)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeriveVariant(TMK, "tmk.v", 0x24); err != nil {
		t.Fatal(err)
	}
	var held [][]byte
	for _, e := range s.keys {
		held = append(held, e.key)
	}
	storage := s.storageKey
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i, b := range append(held, storage) {
		if !bytes.Equal(b, make([]byte, len(b))) || len(b) == 0 {
			t.Fatalf("buffer %d not zeroed after Close", i)
		}
	}
	// The caller's storage key is the caller's: not touched.
	if sk[0] != 0xA5 {
		t.Fatal("Close zeroed the caller's storage key slice")
	}
}

// Replacing or deleting a key zeroes the old bytes.
func TestReplaceZeroesOldKey(t *testing.T) {
	s := NewSoft()
	defer s.Close()
	k, _ := hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	s.ImportClearKey(TAK, k)
	old := s.keys[TAK].key
	k2, _ := hex.DecodeString("89ABCDEF0123456776543210FEDCBA98")
	s.ImportClearKey(TAK, k2)
	if !bytes.Equal(old, make([]byte, 16)) {
		t.Fatal("replaced key not zeroed")
	}
	cur := s.keys[TAK].key
	s.DeleteKey(TAK)
	if !bytes.Equal(cur, make([]byte, 16)) {
		t.Fatal("deleted key not zeroed")
	}
}

// TDEA-ECB of the FIPS 81 text under the two-key 0123456789ABCDEF
// FEDCBA9876543210, as in the Bouncy Castle DESede test vectors: checks
// the ECB path used for keys under a KEK.
func TestECB(t *testing.T) {
	k, _ := hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	c, err := tdesCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ecbWith(c, []byte("Now is the time for all "), true)
	if err != nil || hex.EncodeToString(got) != "d80a0d8b2bae5e4e6a0094171abcfc2775d2235a706e232c" {
		t.Fatalf("ECB = %x, %v", got, err)
	}
	back, _ := ecbWith(c, got, false)
	if string(back) != "Now is the time for all " {
		t.Fatalf("ECB decrypt = %q", back)
	}
}
