package hsm

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// Key store file format, version 1:
//
//	magic   "CATMKEYS" (8 bytes)
//	version 0x01 (1 byte)
//	nonce   12 random bytes, fresh for every write
//	sealed  AES-256-GCM(storage key, nonce, plaintext, AAD = magic|version)
//
// The plaintext is a sequence of entries, each
//
//	kind (1 byte: 1 = 3DES, 2 = HMAC-SHA256) | name length (1 byte) | name |
//	key length (2 bytes, big-endian) | key
//
// Any change to any byte of the file makes authentication fail.
const (
	storeMagic   = "CATMKEYS"
	storeVersion = 1
	nonceSize    = 12
	headerSize   = len(storeMagic) + 1
)

// StorageKeyLen is the length of the AES-256 storage key in bytes.
const StorageKeyLen = 32

// OpenStore opens (or prepares to create) the key store file at path,
// encrypted under storageKey (32 bytes, AES-256-GCM). A missing file gives
// an empty module; the file is created by the first change. A file that
// does not authenticate under storageKey (wrong key, truncated, tampered
// with) is an error wrapping ErrStoreAuth: the store is never silently
// reset. Every change (import, generate, form, derive, delete) is written
// atomically (temporary file in the same directory, fsync, rename) with
// mode 0600 before the call returns.
//
// The module holds the store's keys in memory and writes them all back on
// every change, so two processes with the same store open would overwrite
// each other's changes. OpenStore therefore locks the store (an exclusive
// flock(2) on path+".lock") until Close, and a store another process has
// open is an error wrapping ErrStoreLocked: key loading with atmctl is done
// with the appliance stopped. The lock goes with the process, so a crash
// leaves none behind.
func OpenStore(path string, storageKey []byte) (*Soft, error) {
	if len(storageKey) != StorageKeyLen {
		return nil, fmt.Errorf("%w: storage key must be %d bytes, got %d", ErrKeyLength, StorageKeyLen, len(storageKey))
	}
	lock, err := lockStore(path)
	if err != nil {
		return nil, err
	}
	s := &Soft{
		keys:       make(map[KeyName]*entry),
		path:       path,
		storageKey: append([]byte(nil), storageKey...),
		lock:       lock,
	}
	fail := func(err error) (*Soft, error) {
		zero(s.storageKey)
		if lock != nil {
			lock.Close()
		}
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return fail(fmt.Errorf("hsm: read key store: %w", err))
	}
	keys, err := openSealed(raw, s.storageKey)
	if err != nil {
		return fail(fmt.Errorf("hsm: key store %s: %w", path, err))
	}
	s.keys = keys
	return s, nil
}

func newGCM(storageKey []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(storageKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func openSealed(raw, storageKey []byte) (map[KeyName]*entry, error) {
	if len(raw) < headerSize+nonceSize {
		return nil, fmt.Errorf("%w (file too short: %d bytes)", ErrStoreAuth, len(raw))
	}
	if string(raw[:len(storeMagic)]) != storeMagic {
		return nil, fmt.Errorf("%w (not a key store file: bad magic)", ErrStoreAuth)
	}
	if v := raw[len(storeMagic)]; v != storeVersion {
		return nil, fmt.Errorf("unsupported key store version %d (this program reads version %d)", v, storeVersion)
	}
	aead, err := newGCM(storageKey)
	if err != nil {
		return nil, err
	}
	header := raw[:headerSize]
	nonce := raw[headerSize : headerSize+nonceSize]
	plain, err := aead.Open(nil, nonce, raw[headerSize+nonceSize:], header)
	if err != nil {
		return nil, ErrStoreAuth
	}
	defer zero(plain)
	return decodeKeys(plain)
}

func decodeKeys(p []byte) (map[KeyName]*entry, error) {
	keys := make(map[KeyName]*entry)
	fail := func(msg string) (map[KeyName]*entry, error) {
		for _, e := range keys {
			e.wipe()
		}
		return nil, fmt.Errorf("hsm: key store content is malformed: %s", msg)
	}
	for len(p) > 0 {
		if len(p) < 2 {
			return fail("truncated entry")
		}
		kind, nlen := keyKind(p[0]), int(p[1])
		p = p[2:]
		var usage Usage
		if kind == kindTDESUsage { // a 3DES key bound to a TR-31 usage: usage (2) and mode (1) follow the key
			kind = kindTDES
			usage.KeyUsage = "?"
		}
		if kind != kindTDES && kind != kindHMAC {
			return fail("unknown key kind")
		}
		if len(p) < nlen+2 {
			return fail("truncated name")
		}
		name := KeyName(p[:nlen])
		klen := int(binary.BigEndian.Uint16(p[nlen:]))
		p = p[nlen+2:]
		if len(p) < klen {
			return fail("truncated key")
		}
		if checkName(name) != nil {
			return fail("bad key name")
		}
		if _, dup := keys[name]; dup {
			return fail("duplicate key name")
		}
		if (kind == kindTDES && klen != 16 && klen != 24) || (kind == kindHMAC && klen < MinHMACKeyLen) {
			return fail("bad key length")
		}
		k := append([]byte(nil), p[:klen]...)
		p = p[klen:]
		if usage.KeyUsage != "" {
			if len(p) < 3 {
				zero(k)
				return fail("truncated key usage")
			}
			usage = Usage{KeyUsage: string(p[:2]), Mode: p[2]}
			p = p[3:]
			if _, ok := supported[usage.KeyUsage]; !ok {
				zero(k)
				return fail("unknown key usage")
			}
		}
		if kind == kindHMAC {
			keys[name] = &entry{kind: kind, key: k}
		} else {
			e, err := newTDESEntry(k)
			if err != nil {
				zero(k)
				return fail("bad 3DES key")
			}
			e.usage = usage
			keys[name] = e
		}
	}
	return keys, nil
}

// encodeKeys serialises keys into one buffer sized up front, so that no
// stray copy of key bytes is left behind by a growing buffer.
func encodeKeys(keys map[KeyName]*entry) []byte {
	n := 0
	for name, e := range keys {
		n += 4 + len(name) + len(e.key) + 3
	}
	b := make([]byte, 0, n)
	for name, e := range keys {
		kind := e.kind
		if e.usage.Restricted() {
			kind = kindTDESUsage
		}
		b = append(b, byte(kind), byte(len(name)))
		b = append(b, name...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.key)))
		b = append(b, e.key...)
		if e.usage.Restricted() {
			b = append(b, e.usage.KeyUsage...)
			b = append(b, e.usage.Mode)
		}
	}
	return b
}

// persist writes keys to s.path atomically. The caller holds s.mu.
func (s *Soft) persist(keys map[KeyName]*entry) error {
	aead, err := newGCM(s.storageKey)
	if err != nil {
		return err
	}
	plain := encodeKeys(keys)
	defer zero(plain)
	var nonce [nonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return fmt.Errorf("hsm: random source: %w", err)
	}
	header := append([]byte(storeMagic), storeVersion)
	out := make([]byte, 0, headerSize+nonceSize+len(plain)+aead.Overhead())
	out = append(out, header...)
	out = append(out, nonce[:]...)
	out = aead.Seal(out, nonce[:], plain, header)
	if err := writeFileAtomic(s.path, out); err != nil {
		return fmt.Errorf("hsm: write key store: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory (mode 0600), fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		// Best effort: make the rename itself durable.
		d.Sync()
		d.Close()
	}
	return nil
}

// NewStorageKeyFile writes a fresh random 32-byte storage key, hex encoded,
// to path with mode 0600. It refuses to overwrite an existing file.
func NewStorageKeyFile(path string) error {
	k := make([]byte, StorageKeyLen)
	defer zero(k)
	if _, err := rand.Read(k); err != nil {
		return fmt.Errorf("hsm: random source: %w", err)
	}
	h := make([]byte, hex.EncodedLen(len(k))+1)
	defer zero(h)
	hex.Encode(h, k)
	h[len(h)-1] = '\n'
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("hsm: storage key file %s already exists; refusing to overwrite it", path)
		}
		return fmt.Errorf("hsm: create storage key file: %w", err)
	}
	if _, err := f.Write(h); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("hsm: write storage key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("hsm: write storage key file: %w", err)
	}
	return f.Close()
}

// ReadStorageKeyFile reads a storage key written by NewStorageKeyFile: 64
// hex digits, surrounding white space ignored. On Unix it refuses a file
// that the group or others may read or write.
func ReadStorageKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("hsm: storage key file: %w", err)
	}
	if runtime.GOOS != "windows" {
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return nil, fmt.Errorf("hsm: storage key file %s is accessible by group or others (mode %04o); run chmod 600 on it", path, perm)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hsm: storage key file: %w", err)
	}
	defer zero(raw)
	h := bytes.TrimSpace(raw)
	if len(h) != 2*StorageKeyLen {
		return nil, fmt.Errorf("hsm: storage key file %s must hold %d hex digits, found %d characters", path, 2*StorageKeyLen, len(h))
	}
	k := make([]byte, StorageKeyLen)
	if _, err := hex.Decode(k, h); err != nil {
		zero(k)
		// The hex error would quote the offending character: not shown.
		return nil, fmt.Errorf("hsm: storage key file %s is not valid hex", path)
	}
	return k, nil
}
