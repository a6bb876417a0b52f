package hsm

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"github.com/cardless-atm/cardless/hsm/tr31"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// keyKind says what a stored key may be used for.
type keyKind byte

const (
	kindTDES keyKind = 1 // double- or triple-length 3DES key
	kindHMAC keyKind = 2 // HMAC-SHA256 key
	// kindTDESUsage marks, in the key store file only, a 3DES key bound to
	// a TR-31 usage (stored after the key).
	kindTDESUsage keyKind = 3
)

// MinHMACKeyLen is the shortest HMAC-SHA256 key ImportClearHMACKey accepts.
const MinHMACKeyLen = 16

// maxKeyNameLen bounds a key name (it is stored with a one-byte length).
const maxKeyNameLen = 255

type entry struct {
	kind  keyKind
	key   []byte
	usage Usage // bound by a TR-31 key block; zero: unrestricted

	// sched holds the expanded key schedules of a 3DES key and its KCV,
	// built when the entry is made (import, derivation or store load) so
	// that no MAC, encryption or KCV call pays for a DES key setup. Nil for
	// HMAC keys and after wipe.
	sched *schedule
}

// newTDESEntry returns the entry of the clear 3DES key k with its key
// schedules built. k becomes the entry's; on error the caller still owns
// (and zeroes) it.
func newTDESEntry(k []byte) (*entry, error) {
	ks, err := newSchedule(k)
	if err != nil {
		return nil, err
	}
	return &entry{kind: kindTDES, key: k, sched: ks}, nil
}

// wipe zeroes the key bytes and drops the key schedules (crypto/des cannot
// overwrite its subkeys; they are left unreachable for the garbage
// collector). The caller holds s.mu for writing, or owns e alone.
func (e *entry) wipe() {
	zero(e.key)
	e.sched = nil
}

// KeyInfo describes a stored key without revealing it.
type KeyInfo struct {
	Name KeyName
	// Type is "3DES-2" (double length), "3DES-3" (triple length) or
	// "HMAC-SHA256".
	Type string
	// KCV is the key check value of a 3DES key; empty for HMAC keys, which
	// have no standard check value.
	KCV string
	// Usage is the TR-31 key usage and mode of use bound to a key that
	// came in a key block ("M3C", "D0B"); empty when unrestricted.
	Usage string
}

// Soft is a software security module: keys live in process memory and,
// when opened with OpenStore, in a file encrypted with AES-256-GCM under a
// storage key. It implements Module, ClearKeyImporter and HMACer and is
// safe for concurrent use.
type Soft struct {
	mu         sync.RWMutex
	keys       map[KeyName]*entry
	closed     bool
	path       string // "" for an in-memory module
	storageKey []byte
	lock       *os.File // the key store's lock (OpenStore), released by Close
}

var (
	_ Module            = (*Soft)(nil)
	_ ClearKeyImporter  = (*Soft)(nil)
	_ HMACer            = (*Soft)(nil)
	_ KeyBlockImporter  = (*Soft)(nil)
	_ KeyBlockGenerator = (*Soft)(nil)
)

// NewSoft returns an empty in-memory module. Nothing is written to disk.
func NewSoft() *Soft {
	return &Soft{keys: make(map[KeyName]*entry)}
}

// Close zeroes every key held in memory (and the storage key) and drops
// the cached DES key schedules, which crypto/des gives no way to zero:
// they become garbage. Every call after Close, including a second Close,
// returns ErrClosed.
func (s *Soft) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, e := range s.keys {
		e.wipe()
	}
	clear(s.keys)
	zero(s.storageKey)
	s.closed = true
	if s.lock != nil {
		s.lock.Close() // releases the flock
		s.lock = nil
	}
	return nil
}

// Keys lists the stored keys sorted by name, with their types and KCVs.
func (s *Soft) Keys() ([]KeyInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	names := slices.Sorted(maps.Keys(s.keys))
	out := make([]KeyInfo, 0, len(names))
	for _, n := range names {
		e := s.keys[n]
		info := KeyInfo{Name: n}
		switch e.kind {
		case kindHMAC:
			info.Type = "HMAC-SHA256"
		default:
			info.Type = fmt.Sprintf("3DES-%d", len(e.key)/8)
			info.KCV = e.sched.kcv
			if e.usage.Restricted() {
				info.Usage = e.usage.KeyUsage + string(e.usage.Mode)
			}
		}
		out = append(out, info)
	}
	return out, nil
}

func checkName(name KeyName) error {
	if name == "" || len(name) > maxKeyNameLen {
		return fmt.Errorf("%w: must be 1 to %d bytes", ErrKeyName, maxKeyNameLen)
	}
	for _, r := range string(name) {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%w: %q contains a space, control or invalid character", ErrKeyName, string(name))
		}
	}
	return nil
}

// lookup returns the named key of the wanted kind. The caller holds s.mu.
func (s *Soft) lookup(name KeyName, kind keyKind) (*entry, error) {
	if s.closed {
		return nil, ErrClosed
	}
	e, ok := s.keys[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrKeyNotFound, string(name))
	}
	if e.kind != kind {
		want := "3DES"
		if kind == kindHMAC {
			want = "HMAC-SHA256"
		}
		return nil, fmt.Errorf("%w: %q is not a %s key", ErrKeyType, string(name), want)
	}
	return e, nil
}

// store puts e under name and persists the new key set. On failure nothing
// changes and e's bytes are zeroed. The caller holds s.mu for writing.
func (s *Soft) store(name KeyName, e *entry) error {
	if s.path == "" {
		// In memory nothing can fail half-way: change the set in place
		// (a copy per key would make a proxy holding thousands of
		// terminals' keys quadratic in its sign-on storm).
		if old, ok := s.keys[name]; ok && old != e {
			old.wipe()
		}
		s.keys[name] = e
		return nil
	}
	next := maps.Clone(s.keys)
	next[name] = e
	if err := s.commit(next); err != nil {
		e.wipe()
		return err
	}
	return nil
}

// commit persists next (for a file-backed module) and then makes it the
// current key set, zeroing keys that were replaced or removed.
func (s *Soft) commit(next map[KeyName]*entry) error {
	if s.path != "" {
		if err := s.persist(next); err != nil {
			return err
		}
	}
	for n, old := range s.keys {
		if cur, ok := next[n]; !ok || cur != old {
			old.wipe()
		}
	}
	s.keys = next
	return nil
}

// KCV implements Module.
func (s *Soft) KCV(name KeyName) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ks, err := s.tdes(name)
	if err != nil {
		return "", err
	}
	return ks.kcv, nil
}

// tdes returns the key schedules of the named 3DES key. The caller holds
// s.mu.
func (s *Soft) tdes(name KeyName) (*schedule, error) {
	e, err := s.lookup(name, kindTDES)
	if err != nil {
		return nil, err
	}
	return e.sched, nil
}

// tdesFor is tdes for a use the key's usage must allow.
func (s *Soft) tdesFor(name KeyName, o Op) (*schedule, error) {
	e, err := s.lookup(name, kindTDES)
	if err != nil {
		return nil, err
	}
	if err := e.usage.Check(name, o); err != nil {
		return nil, err
	}
	return e.sched, nil
}

// ImportClearKey implements ClearKeyImporter. The key must be 16 or 24
// bytes (ErrKeyLength) with odd parity in every byte (ErrKeyParity).
func (s *Soft) ImportClearKey(name KeyName, key []byte) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if err := checkClearTDES(key); err != nil {
		return "", err
	}
	k := append([]byte(nil), key...)
	e, err := newTDESEntry(k)
	if err != nil {
		zero(k)
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		e.wipe()
		return "", ErrClosed
	}
	if err := s.store(name, e); err != nil {
		return "", err
	}
	return e.sched.kcv, nil
}

func checkClearTDES(key []byte) error {
	if len(key) != 16 && len(key) != 24 {
		return fmt.Errorf("%w: 3DES keys are 16 or 24 bytes, got %d", ErrKeyLength, len(key))
	}
	if !HasOddParity(key) {
		return ErrKeyParity
	}
	return nil
}

// FormKey implements ClearKeyImporter. Two or three components of the same
// length (16 or 24 bytes), each with odd parity, are XORed together. The
// XOR of an even number of odd-parity bytes has even parity, so the result
// is then adjusted to odd parity (the low bit of each byte is set as
// needed; the 56 key bits are exactly the XOR of the components'). The
// reported KCVs are those of each component and of the adjusted key.
func (s *Soft) FormKey(name KeyName, components ...[]byte) ([]string, string, error) {
	if err := checkName(name); err != nil {
		return nil, "", err
	}
	if len(components) < 2 || len(components) > 3 {
		return nil, "", fmt.Errorf("hsm: a key is formed from 2 or 3 components, got %d", len(components))
	}
	n := len(components[0])
	kcvs := make([]string, len(components))
	for i, c := range components {
		if len(c) != n {
			return nil, "", fmt.Errorf("%w: component %d is %d bytes, component 1 is %d", ErrKeyLength, i+1, len(c), n)
		}
		if err := checkClearTDES(c); err != nil {
			return nil, "", fmt.Errorf("component %d: %w", i+1, err)
		}
		kcv, err := KCVOf(c)
		if err != nil {
			return nil, "", err
		}
		kcvs[i] = kcv
	}
	k := make([]byte, n)
	for _, c := range components {
		subtle.XORBytes(k, k, c)
	}
	AdjustParity(k)
	e, err := newTDESEntry(k)
	if err != nil {
		zero(k)
		return nil, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		e.wipe()
		return nil, "", ErrClosed
	}
	if err := s.store(name, e); err != nil {
		return nil, "", err
	}
	return kcvs, e.sched.kcv, nil
}

// ImportKey implements Module. encrypted is 16 or 24 bytes, 3DES-ECB under
// kek. The recovered key's parity is not checked (DES ignores parity bits
// and some hosts do not set them); its KCV is, and kcv must be six hex
// digits (either case).
func (s *Soft) ImportKey(kek, name KeyName, encrypted []byte, kcv string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if len(encrypted) != 16 && len(encrypted) != 24 {
		return fmt.Errorf("%w: encrypted 3DES keys are 16 or 24 bytes, got %d", ErrKeyLength, len(encrypted))
	}
	if len(kcv) != 6 {
		return fmt.Errorf("%w: expected KCV must be 6 hex digits, got %d characters", ErrKCVMismatch, len(kcv))
	}
	if _, err := hex.DecodeString(kcv); err != nil {
		return fmt.Errorf("%w: expected KCV is not hex", ErrKCVMismatch)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kks, err := s.tdesFor(kek, OpWrap)
	if err != nil {
		return fmt.Errorf("key-encryption key: %w", err)
	}
	k, err := ecbWith(kks.ede, encrypted, false)
	if err != nil {
		return err
	}
	e, err := newTDESEntry(k)
	if err != nil {
		zero(k)
		return err
	}
	if got := e.sched.kcv; subtle.ConstantTimeCompare([]byte(got), []byte(strings.ToUpper(kcv))) != 1 {
		e.wipe()
		return fmt.Errorf("%w: key %q: computed KCV %s, expected %s", ErrKCVMismatch, string(name), got, strings.ToUpper(kcv))
	}
	return s.store(name, e)
}

// GenerateKey implements Module: a random double-length key with odd
// parity from crypto/rand, stored under name and returned 3DES-ECB
// encrypted under kek with its KCV.
func (s *Soft) GenerateKey(kek, name KeyName) ([]byte, string, error) {
	if err := checkName(name); err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kks, err := s.tdesFor(kek, OpWrap)
	if err != nil {
		return nil, "", fmt.Errorf("key-encryption key: %w", err)
	}
	k := make([]byte, 16)
	if _, err := rand.Read(k); err != nil {
		return nil, "", fmt.Errorf("hsm: random source: %w", err)
	}
	AdjustParity(k)
	e, err := newTDESEntry(k)
	if err != nil {
		zero(k)
		return nil, "", err
	}
	enc, err := ecbWith(kks.ede, k, true)
	if err != nil {
		e.wipe()
		return nil, "", err
	}
	if err := s.store(name, e); err != nil {
		return nil, "", err
	}
	return enc, e.sched.kcv, nil
}

// GenerateMAC implements Module.
func (s *Soft) GenerateMAC(name KeyName, data []byte, p Padding) ([]byte, error) {
	return s.mac(name, data, p, OpMACGenerate)
}

func (s *Soft) mac(name KeyName, data []byte, p Padding, o Op) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ks, err := s.tdesFor(name, o)
	if err != nil {
		return nil, err
	}
	return ks.retailMAC(data, p)
}

// VerifyMAC implements Module. mac must be the full eight bytes.
func (s *Soft) VerifyMAC(name KeyName, data, mac []byte, p Padding) error {
	want, err := s.mac(name, data, p, OpMACVerify)
	if err != nil {
		return err
	}
	if len(mac) != len(want) || subtle.ConstantTimeCompare(mac, want) != 1 {
		return ErrMACMismatch
	}
	return nil
}

// Encrypt implements Module.
func (s *Soft) Encrypt(name KeyName, data []byte) ([]byte, error) {
	return s.crypt(name, data, true)
}

// Decrypt implements Module.
func (s *Soft) Decrypt(name KeyName, data []byte) ([]byte, error) {
	return s.crypt(name, data, false)
}

func (s *Soft) crypt(name KeyName, data []byte, encrypt bool) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o := OpDecrypt
	if encrypt {
		o = OpEncrypt
	}
	ks, err := s.tdesFor(name, o)
	if err != nil {
		return nil, err
	}
	return cbcWith(ks.ede, data, encrypt)
}

// DeriveVariant implements Module: every byte of src is XORed with
// variant and the result is stored under dst. Parity is left as it
// falls: a variant with an even number of set bits (such as 0x24) keeps
// odd parity. Variants 0x00 and 0x01 are refused because DES ignores the
// low (parity) bit, so they would yield the same key as src.
func (s *Soft) DeriveVariant(src, dst KeyName, variant byte) error {
	if err := checkName(dst); err != nil {
		return err
	}
	if variant&0xFE == 0 {
		return fmt.Errorf("hsm: variant 0x%02X leaves the DES key bits unchanged", variant)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookup(src, kindTDES)
	if err != nil {
		return err
	}
	if err := e.usage.Check(src, OpDerive); err != nil {
		return err
	}
	k := make([]byte, len(e.key))
	for i, b := range e.key {
		k[i] = b ^ variant
	}
	ne, err := newTDESEntry(k)
	if err != nil {
		zero(k)
		return err
	}
	return s.store(dst, ne)
}

// DeleteKey implements Module.
func (s *Soft) DeleteKey(name KeyName) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	old, ok := s.keys[name]
	if !ok {
		return nil
	}
	if s.path == "" { // in place, as in store
		delete(s.keys, name)
		old.wipe()
		return nil
	}
	next := maps.Clone(s.keys)
	delete(next, name)
	return s.commit(next)
}

// ImportClearHMACKey implements HMACer.
func (s *Soft) ImportClearHMACKey(name KeyName, key []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if len(key) < MinHMACKeyLen {
		return fmt.Errorf("%w: HMAC keys are at least %d bytes, got %d", ErrKeyLength, MinHMACKeyLen, len(key))
	}
	if len(key) > 0xFFFF {
		return fmt.Errorf("%w: HMAC key of %d bytes is too long", ErrKeyLength, len(key))
	}
	return s.storeHMAC(name, append([]byte(nil), key...))
}

// storeHMAC stores k (which the module now owns) as the HMAC key name.
func (s *Soft) storeHMAC(name KeyName, k []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		zero(k)
		return ErrClosed
	}
	return s.store(name, &entry{kind: kindHMAC, key: k})
}

// GenerateHMACKey stores a random 32-byte HMAC-SHA256 key from
// crypto/rand under name, replacing any key of that name, and persists it
// (for a key store file). The key is never returned: it exists only inside
// the module, for keys that nothing outside the ATM needs (hsm.JournalKey).
func (s *Soft) GenerateHMACKey(name KeyName) error {
	if err := checkName(name); err != nil {
		return err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return fmt.Errorf("hsm: random source: %w", err)
	}
	return s.storeHMAC(name, k)
}

// HMACSHA256 implements HMACer.
func (s *Soft) HMACSHA256(name KeyName, data []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, err := s.lookup(name, kindHMAC)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, e.key)
	m.Write(data)
	return m.Sum(nil), nil
}

// VerifyHMACSHA256 implements HMACer; mac must be the full 32 bytes.
func (s *Soft) VerifyHMACSHA256(name KeyName, data, mac []byte) error {
	want, err := s.HMACSHA256(name, data)
	if err != nil {
		return err
	}
	if !hmac.Equal(mac, want) {
		return ErrMACMismatch
	}
	return nil
}

// ImportKeyBlock implements KeyBlockImporter: the TR-31 block is verified
// and opened under kbpk (a 3DES key whose usage allows wrapping), and the
// key is stored under name bound to the block's usage and mode of use.
func (s *Soft) ImportKeyBlock(kbpk, name KeyName, block string) (tr31.Header, string, error) {
	if err := checkName(name); err != nil {
		return tr31.Header{}, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pe, err := s.lookup(kbpk, kindTDES)
	if err != nil {
		return tr31.Header{}, "", fmt.Errorf("key block protection key: %w", err)
	}
	if err := pe.usage.Check(kbpk, OpWrap); err != nil {
		return tr31.Header{}, "", err
	}
	// Version B only: the protection key is a 3DES key, and a version D
	// block would use its bytes as an AES key (one key, two algorithms).
	if hdr, err := tr31.ParseHeader(block); err != nil {
		return tr31.Header{}, "", err
	} else if hdr.Version != 'B' {
		return tr31.Header{}, "", fmt.Errorf("%w %q: a 3DES key block protection key opens version B blocks only", tr31.ErrVersion, hdr.Version)
	}
	h, k, err := tr31.Unwrap(pe.key, block)
	if err != nil {
		return tr31.Header{}, "", err
	}
	u, err := UsageOf(h)
	if err != nil {
		zero(k)
		return tr31.Header{}, "", err
	}
	if len(k) != 16 && len(k) != 24 {
		zero(k)
		return tr31.Header{}, "", fmt.Errorf("%w: the key block holds a %d-byte key", ErrKeyLength, len(k))
	}
	e, err := newTDESEntry(k)
	if err != nil {
		zero(k)
		return tr31.Header{}, "", err
	}
	e.usage = u
	if err := s.store(name, e); err != nil {
		return tr31.Header{}, "", err
	}
	return h, e.sched.kcv, nil
}

// GenerateKeyBlock implements KeyBlockGenerator: a random double-length
// key with odd parity, stored under name with the usage of h, returned in
// a TR-31 block under kbpk.
func (s *Soft) GenerateKeyBlock(kbpk, name KeyName, h tr31.Header) (string, string, error) {
	if err := checkName(name); err != nil {
		return "", "", err
	}
	u, err := UsageOf(h)
	if err != nil {
		return "", "", err
	}
	if h.Version != 'B' {
		return "", "", fmt.Errorf("%w %q: a 3DES key block protection key issues version B blocks only", tr31.ErrVersion, h.Version)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pe, err := s.lookup(kbpk, kindTDES)
	if err != nil {
		return "", "", fmt.Errorf("key block protection key: %w", err)
	}
	if err := pe.usage.Check(kbpk, OpWrap); err != nil {
		return "", "", err
	}
	k := make([]byte, 16)
	if _, err := rand.Read(k); err != nil {
		return "", "", fmt.Errorf("hsm: random source: %w", err)
	}
	AdjustParity(k)
	block, err := tr31.Wrap(pe.key, h, k, nil)
	if err != nil {
		zero(k)
		return "", "", err
	}
	e, err := newTDESEntry(k)
	if err != nil {
		zero(k)
		return "", "", err
	}
	e.usage = u
	if err := s.store(name, e); err != nil {
		return "", "", err
	}
	return block, e.sched.kcv, nil
}
