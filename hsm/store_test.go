package hsm_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/tr31"
)

func storageKey(b byte) []byte { return bytes.Repeat([]byte{b}, hsm.StorageKeyLen) }

func openStore(t *testing.T, path string, sk []byte) *hsm.Soft {
	t.Helper()
	s, err := hsm.OpenStore(path, sk)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return s
}

// populate writes a TMK, a working key under it, a variant and an HMAC key.
func populate(t *testing.T, s *hsm.Soft) {
	t.Helper()
	tmk := mustHex(t, "0123456789ABCDEFFEDCBA9876543210")
	if _, err := s.ImportClearKey(hsm.TMK, tmk); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GenerateKey(hsm.TMK, hsm.TAK); err != nil {
		t.Fatal(err)
	}
	if err := s.DeriveVariant(hsm.TMK, "tmk.v24", 0x24); err != nil {
		t.Fatal(err)
	}
	if err := s.ImportClearHMACKey(hsm.TokenKey, bytes.Repeat([]byte{0x0b}, 20)); err != nil {
		t.Fatal(err)
	}
}

func TestStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.bin")
	s := openStore(t, path, storageKey(1))
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("file created before any change: %v", err)
	}
	populate(t, s)
	before, _ := s.Keys()
	mac1, _ := s.GenerateMAC(hsm.TAK, []byte("hello"), hsm.PaddingMethod2)
	hm1, _ := s.HMACSHA256(hsm.TokenKey, []byte("Hi There"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("store mode %04o, want 0600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, mustHex(t, "0123456789ABCDEF")) || bytes.Contains(raw, bytes.Repeat([]byte{0x0b}, 20)) {
		t.Fatal("clear key bytes in the store file")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if e.Name() != filepath.Base(path) && e.Name() != filepath.Base(path)+".lock" {
			t.Fatalf("leftover file in the store directory: %s", e.Name())
		}
	}

	s2 := openStore(t, path, storageKey(1))
	defer s2.Close()
	after, err := s2.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 4 || len(before) != 4 {
		t.Fatalf("keys before %v, after %v", before, after)
	}
	for i := range after {
		if after[i] != before[i] {
			t.Fatalf("key %d: before %+v, after %+v", i, before[i], after[i])
		}
	}
	// Sorted by name: tak, tmk, tmk.v24, token.hmac.
	if after[1].Name != hsm.TMK || after[1].KCV != refKCV(t, mustHex(t, "0123456789ABCDEFFEDCBA9876543210")) || after[1].Type != "3DES-2" {
		t.Fatalf("tmk entry %+v", after[1])
	}
	if after[3].Name != hsm.TokenKey || after[3].Type != "HMAC-SHA256" || after[3].KCV != "" {
		t.Fatalf("token entry %+v", after[3])
	}
	mac2, _ := s2.GenerateMAC(hsm.TAK, []byte("hello"), hsm.PaddingMethod2)
	hm2, _ := s2.HMACSHA256(hsm.TokenKey, []byte("Hi There"))
	if !bytes.Equal(mac1, mac2) || !bytes.Equal(hm1, hm2) {
		t.Fatal("keys changed across reopen")
	}

	// Deletion persists too.
	if err := s2.DeleteKey(hsm.TAK); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	s3 := openStore(t, path, storageKey(1))
	defer s3.Close()
	if _, err := s3.KCV(hsm.TAK); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("deleted key back after reopen: %v", err)
	}
}

func TestStoreWrongStorageKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.bin")
	s := openStore(t, path, storageKey(1))
	populate(t, s)
	s.Close()
	_, err := hsm.OpenStore(path, storageKey(2))
	if !errors.Is(err, hsm.ErrStoreAuth) {
		t.Fatalf("wrong storage key: %v", err)
	}
	if _, err := hsm.OpenStore(path, storageKey(1)[:16]); !errors.Is(err, hsm.ErrKeyLength) {
		t.Fatalf("16-byte storage key: %v", err)
	}
	// The file is untouched by the failed open.
	s2 := openStore(t, path, storageKey(1))
	defer s2.Close()
	if _, err := s2.KCV(hsm.TMK); err != nil {
		t.Fatal(err)
	}
}

func TestStoreTampered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.bin")
	s := openStore(t, path, storageKey(1))
	populate(t, s)
	s.Close()
	orig, _ := os.ReadFile(path)

	// Flip one bit in the magic, the nonce, the ciphertext and the tag.
	for _, off := range []int{0, 7, 9, 20, 21, 40, len(orig) - 17, len(orig) - 1} {
		b := append([]byte(nil), orig...)
		b[off] ^= 0x01
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := hsm.OpenStore(path, storageKey(1)); !errors.Is(err, hsm.ErrStoreAuth) {
			t.Errorf("bit flipped at %d: err = %v, want ErrStoreAuth", off, err)
		}
	}
	// A changed version byte is refused (with its own message).
	b := append([]byte(nil), orig...)
	b[8] = 2
	os.WriteFile(path, b, 0o600)
	if _, err := hsm.OpenStore(path, storageKey(1)); err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("version 2: %v", err)
	}
	// Truncated, extended, empty.
	for name, b := range map[string][]byte{
		"truncated": orig[:len(orig)-1],
		"extended":  append(append([]byte(nil), orig...), 0),
		"empty":     {},
		"header":    orig[:9],
	} {
		os.WriteFile(path, b, 0o600)
		if _, err := hsm.OpenStore(path, storageKey(1)); !errors.Is(err, hsm.ErrStoreAuth) {
			t.Errorf("%s file: err = %v, want ErrStoreAuth", name, err)
		}
	}
	// Restored: opens again.
	os.WriteFile(path, orig, 0o600)
	s2 := openStore(t, path, storageKey(1))
	s2.Close()
}

// A change that cannot be written is not applied in memory either.
func TestStorePersistFailureChangesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, filepath.Join(dir, "keys.bin"), storageKey(1))
	defer s.Close()
	if _, err := s.ImportClearKey(hsm.TMK, mustHex(t, "0123456789ABCDEFFEDCBA9876543210")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportClearKey(hsm.TAK, mustHex(t, "89ABCDEF0123456776543210FEDCBA98")); err == nil {
		t.Fatal("import succeeded with the store directory gone")
	}
	if _, err := s.KCV(hsm.TAK); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("unpersisted key visible: %v", err)
	}
	if err := s.DeleteKey(hsm.TMK); err == nil {
		t.Fatal("delete succeeded with the store directory gone")
	}
	if _, err := s.KCV(hsm.TMK); err != nil {
		t.Fatalf("TMK lost after a failed delete: %v", err)
	}
}

func TestStorageKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "storage.key")
	if err := hsm.NewStorageKeyFile(path); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o", fi.Mode().Perm())
	}
	k, err := hsm.ReadStorageKeyFile(path)
	if err != nil || len(k) != 32 {
		t.Fatalf("ReadStorageKeyFile: %d bytes, %v", len(k), err)
	}
	raw, _ := os.ReadFile(path)
	if strings.TrimSpace(string(raw)) != hex.EncodeToString(k) {
		t.Fatal("file does not hold the key in hex")
	}
	if err := hsm.NewStorageKeyFile(path); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("overwrite: %v", err)
	}
	k2, _ := hsm.ReadStorageKeyFile(path)
	if !bytes.Equal(k, k2) {
		t.Fatal("storage key changed")
	}
	// Usable as a store key.
	s := openStore(t, filepath.Join(t.TempDir(), "keys"), k)
	s.Close()

	for _, mode := range []os.FileMode{0o640, 0o604, 0o660} {
		os.Chmod(path, mode)
		if _, err := hsm.ReadStorageKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	os.Chmod(path, 0o600)
	for name, content := range map[string]string{
		"short":   strings.Repeat("ab", 31) + "\n",
		"not hex": strings.Repeat("zz", 32) + "\n",
	} {
		os.WriteFile(path, []byte(content), 0o600)
		_, err := hsm.ReadStorageKeyFile(path)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "zz") {
			t.Errorf("%s: error quotes file content: %v", name, err)
		}
	}
	if _, err := hsm.ReadStorageKeyFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}

// Run under -race: readers and writers on one file-backed module.
func TestConcurrentUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.bin")
	s := openStore(t, path, storageKey(3))
	defer s.Close()
	populate(t, s)
	tmk := mustHex(t, "0123456789ABCDEFFEDCBA9876543210")
	wantMAC := refRetailMAC(t, tmk, []byte("Now is the time for all "), 1)
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	for g := 0; g < 4; g++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				m, err := s.GenerateMAC(hsm.TMK, []byte("Now is the time for all "), hsm.PaddingMethod1)
				if err != nil || !bytes.Equal(m, wantMAC) {
					errc <- errors.New("MAC under concurrency wrong")
					return
				}
				if _, err := s.HMACSHA256(hsm.TokenKey, []byte("x")); err != nil {
					errc <- err
					return
				}
				if _, err := s.Encrypt(hsm.TAK, make([]byte, 16)); err != nil {
					errc <- err
					return
				}
			}
		}()
		go func(g int) {
			defer wg.Done()
			name := hsm.KeyName("w" + string(rune('0'+g)))
			for i := 0; i < 5; i++ {
				if _, _, err := s.GenerateKey(hsm.TMK, name); err != nil {
					errc <- err
					return
				}
				if err := s.DeriveVariant(name, name+".v", 0x24); err != nil {
					errc <- err
					return
				}
				if _, err := s.Keys(); err != nil {
					errc <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	s.Close() // the store is locked while open
	s2 := openStore(t, path, storageKey(3))
	defer s2.Close()
	keys, _ := s2.Keys()
	if len(keys) != 4+8 {
		t.Fatalf("%d keys after concurrent writes, want 12", len(keys))
	}
}

// The store is locked while a module has it open: a second open (here in
// the same process, through a separate open file description, as another
// process would be) is refused with ErrStoreLocked and reads nothing;
// after Close it opens again.
func TestStoreLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.bin")
	s := openStore(t, path, storageKey(1))
	populate(t, s)
	if _, err := hsm.OpenStore(path, storageKey(1)); !errors.Is(err, hsm.ErrStoreLocked) {
		t.Fatalf("second open while the first is open: %v, want ErrStoreLocked", err)
	}
	fi, err := os.Stat(path + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file mode %04o, want 0600", fi.Mode().Perm())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, path, storageKey(1))
	defer s2.Close()
	if keys, err := s2.Keys(); err != nil || len(keys) == 0 {
		t.Fatalf("reopened store: %d keys, %v", len(keys), err)
	}
	// A failed open (wrong storage key) does not keep the lock.
	s2.Close()
	if _, err := hsm.OpenStore(path, storageKey(2)); !errors.Is(err, hsm.ErrStoreAuth) {
		t.Fatalf("wrong storage key: %v", err)
	}
	s3 := openStore(t, path, storageKey(1))
	s3.Close()
}

// TestStoreKeepsKeyUsage: a key that arrived in a TR-31 block keeps its
// usage across a restart (the store records it), and old-format entries
// (no usage) stay unrestricted.
func TestStoreKeepsKeyUsage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.bin")
	s := openStore(t, path, storageKey(1))
	kbpk := mustHex(t, "0123456789ABCDEFFEDCBA9876543210")
	if _, err := s.ImportClearKey("kbpk", kbpk); err != nil {
		t.Fatal(err)
	}
	block, err := tr31.Wrap(kbpk, tr31.Header{Version: 'B', KeyUsage: "M3", Algorithm: 'T', ModeOfUse: 'C', KeyVersion: "00", Exportability: 'N'},
		mustHex(t, "89ABCDEF0123456776543210FEDCBA98"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ImportKeyBlock("kbpk", hsm.TAK, block); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, path, storageKey(1))
	defer s.Close()
	if _, err := s.GenerateMAC(hsm.TAK, []byte("x"), hsm.PaddingMethod1); err != nil {
		t.Fatalf("MAC after restart: %v", err)
	}
	if _, err := s.Encrypt(hsm.TAK, make([]byte, 8)); !errors.Is(err, hsm.ErrKeyUsage) {
		t.Fatalf("encrypt with the MAC key after restart: %v, want ErrKeyUsage", err)
	}
	if _, err := s.Encrypt("kbpk", make([]byte, 8)); err != nil {
		t.Fatalf("the unrestricted key: %v", err)
	}
}
