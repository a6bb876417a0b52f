package hsm_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/cardless-atm/cardless/hsm"
)

// A generated HMAC key lives only inside the module: it computes MACs, is
// listed without a value, survives a key store reopen, and differs from
// every other generated key.
func TestGenerateHMACKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.db")
	sk := storageKey(0x5a)
	s := openStore(t, path, sk)
	if err := s.GenerateHMACKey(hsm.JournalKey); err != nil {
		t.Fatal(err)
	}
	data := []byte("journal head")
	mac1, err := s.HMACSHA256(hsm.JournalKey, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(mac1) != 32 {
		t.Fatalf("MAC is %d bytes, want 32", len(mac1))
	}
	if err := s.VerifyHMACSHA256(hsm.JournalKey, data, mac1); err != nil {
		t.Fatal(err)
	}
	keys, err := s.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Name != hsm.JournalKey || keys[0].Type != "HMAC-SHA256" || keys[0].KCV != "" {
		t.Fatalf("Keys() = %+v", keys)
	}
	if _, err := s.GenerateMAC(hsm.JournalKey, make([]byte, 8), hsm.PaddingMethod1); !errors.Is(err, hsm.ErrKeyType) {
		t.Fatalf("HMAC key used for a 3DES MAC: %v", err)
	}
	// A second generation under another name is a different key.
	if err := s.GenerateHMACKey("other.hmac"); err != nil {
		t.Fatal(err)
	}
	other, err := s.HMACSHA256("other.hmac", data)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other, mac1) {
		t.Fatal("two generated HMAC keys give the same MAC")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Persisted: the reopened store computes the same MAC.
	s = openStore(t, path, sk)
	mac2, err := s.HMACSHA256(hsm.JournalKey, data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mac1, mac2) {
		t.Fatal("generated HMAC key changed across a store reopen")
	}
	// Regenerating replaces the key.
	if err := s.GenerateHMACKey(hsm.JournalKey); err != nil {
		t.Fatal(err)
	}
	mac3, _ := s.HMACSHA256(hsm.JournalKey, data)
	if bytes.Equal(mac1, mac3) {
		t.Fatal("regenerated HMAC key equals the old one")
	}
	if err := s.GenerateHMACKey(""); !errors.Is(err, hsm.ErrKeyName) {
		t.Fatalf("empty name: %v", err)
	}
	s.Close()
}
