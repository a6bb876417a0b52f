package hsm

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// This file holds the clear-key primitives: TDEA key expansion, parity, KCV,
// the ISO 9797-1 algorithm 3 retail MAC and 3DES-CBC with a zero IV. Soft
// uses them on its stored keys; the package-level exported functions let
// tools (atmctl crypto ...), simulators and tests use them on clear keys.
// None of them checks parity: DES ignores the parity bits, and vendors test
// with arbitrary vectors. Parity is enforced where clear keys enter a Module.

// tdesKey expands a double-length key K1|K2 to K1|K2|K1; a triple-length key
// is copied. The caller zeroes the result.
func tdesKey(key []byte) ([]byte, error) {
	switch len(key) {
	case 16:
		k := make([]byte, 24)
		copy(k, key)
		copy(k[16:], key[:8])
		return k, nil
	case 24:
		return append([]byte(nil), key...), nil
	default:
		return nil, fmt.Errorf("%w: 3DES keys are 16 or 24 bytes, got %d", ErrKeyLength, len(key))
	}
}

func tdesCipher(key []byte) (cipher.Block, error) {
	k, err := tdesKey(key)
	if err != nil {
		return nil, err
	}
	defer zero(k)
	return des.NewTripleDESCipher(k)
}

// zero overwrites b with zero bytes.
func zero(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// HasOddParity reports whether every byte of key has an odd number of set
// bits (the DES parity convention).
func HasOddParity(key []byte) bool {
	for _, b := range key {
		if !oddParity(b) {
			return false
		}
	}
	return true
}

func oddParity(b byte) bool {
	b ^= b >> 4
	b ^= b >> 2
	b ^= b >> 1
	return b&1 == 1
}

// AdjustParity sets the low bit of every byte of key in place so that each
// byte has odd parity. The seven key bits of each byte are unchanged.
func AdjustParity(key []byte) {
	for i, b := range key {
		if !oddParity(b) {
			key[i] = b ^ 1
		}
	}
}

// KCVOf returns the key check value of a clear 3DES key (16 or 24 bytes):
// 3DES-ECB of eight zero bytes, first three bytes, six upper-case hex digits.
func KCVOf(key []byte) (string, error) {
	c, err := tdesCipher(key)
	if err != nil {
		return "", err
	}
	return kcvWith(c), nil
}

func kcvWith(c cipher.Block) string {
	var blk [8]byte
	c.Encrypt(blk[:], blk[:])
	return strings.ToUpper(hex.EncodeToString(blk[:3]))
}

// RetailMAC computes the ISO 9797-1 MAC algorithm 3 (ANSI X9.19 retail MAC)
// of data under a clear double- or triple-length key: single-DES CBC-MAC
// with K1 and a zero IV over the padded data, then the last block is
// decrypted with K2 and encrypted again with K1: the last block goes
// through 3DES-EDE. For a triple-length key the last block goes through
// 3DES-EDE with K1, K2, K3 (final encryption with K3); algorithm 3 itself
// defines only two keys, so use double-length keys for interoperability.
// The result is eight bytes.
func RetailMAC(key, data []byte, p Padding) ([]byte, error) {
	ks, err := newSchedule(key)
	if err != nil {
		return nil, err
	}
	return ks.retailMAC(data, p)
}

// schedule holds the expanded key schedules of one 3DES key, built once:
// the 3DES-EDE block cipher (CBC, ECB, KCV) and the single-DES ciphers of
// K1, K2 and K3 used by the retail MAC (for a double-length key K3 is K1
// and shares its schedule). It also caches the key's KCV.
//
// The schedules are crypto/des values: they hold the DES subkeys, which
// are derived from the key, and crypto/des offers no way to overwrite
// them. Dropping a schedule (see entry.wipe) makes it unreachable; its
// memory is reclaimed by the garbage collector but not zeroed.
type schedule struct {
	ede        cipher.Block
	k1, k2, k3 cipher.Block
	kcv        string
}

// newSchedule expands a clear 16- or 24-byte key. The temporary K1|K2|K1
// copy is zeroed before it returns; key itself is not kept.
func newSchedule(key []byte) (*schedule, error) {
	k, err := tdesKey(key)
	if err != nil {
		return nil, err
	}
	defer zero(k)
	ede, err := des.NewTripleDESCipher(k)
	if err != nil {
		return nil, err
	}
	ks := &schedule{ede: ede}
	if ks.k1, err = des.NewCipher(k[:8]); err != nil {
		return nil, err
	}
	if ks.k2, err = des.NewCipher(k[8:16]); err != nil {
		return nil, err
	}
	if len(key) == 16 {
		ks.k3 = ks.k1
	} else if ks.k3, err = des.NewCipher(k[16:24]); err != nil {
		return nil, err
	}
	ks.kcv = kcvWith(ede)
	return ks, nil
}

func checkPadding(p Padding) error {
	if p != PaddingMethod1 && p != PaddingMethod2 {
		return fmt.Errorf("hsm: unknown MAC padding method %d (want 1 or 2)", int(p))
	}
	return nil
}

// retailMAC is RetailMAC on an expanded key. It chains the whole blocks of
// data in place and pads only the final block (on the stack), which gives
// the same result as padding a copy of data with pad.
func (ks *schedule) retailMAC(data []byte, p Padding) ([]byte, error) {
	if err := checkPadding(p); err != nil {
		return nil, err
	}
	var h [8]byte
	full := len(data) &^ 7
	for i := 0; i < full; i += 8 {
		subtle.XORBytes(h[:], h[:], data[i:i+8])
		ks.k1.Encrypt(h[:], h[:])
	}
	// Method 2 always adds a final block (0x80 then zeros); method 1 adds
	// one only for a partial block or empty data.
	if rest := data[full:]; p == PaddingMethod2 || len(rest) > 0 || len(data) == 0 {
		var last [8]byte
		copy(last[:], rest)
		if p == PaddingMethod2 {
			last[len(rest)] = 0x80
		}
		subtle.XORBytes(h[:], h[:], last[:])
		zero(last[:])
		ks.k1.Encrypt(h[:], h[:])
	}
	ks.k2.Decrypt(h[:], h[:])
	ks.k3.Encrypt(h[:], h[:])
	return append([]byte(nil), h[:]...), nil
}

// EncryptCBC encrypts data under a clear 3DES key in CBC mode with a zero
// IV. len(data) must be a multiple of 8 (ErrDataLength); there is no padding.
func EncryptCBC(key, data []byte) ([]byte, error) {
	return cbc(key, data, true)
}

// DecryptCBC is the inverse of EncryptCBC.
func DecryptCBC(key, data []byte) ([]byte, error) {
	return cbc(key, data, false)
}

func cbc(key, data []byte, encrypt bool) ([]byte, error) {
	c, err := tdesCipher(key)
	if err != nil {
		return nil, err
	}
	return cbcWith(c, data, encrypt)
}

func cbcWith(c cipher.Block, data []byte, encrypt bool) ([]byte, error) {
	if len(data)%des.BlockSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes", ErrDataLength, len(data))
	}
	out := make([]byte, len(data))
	if len(data) == 0 {
		return out, nil
	}
	var iv [des.BlockSize]byte
	if encrypt {
		cipher.NewCBCEncrypter(c, iv[:]).CryptBlocks(out, data)
	} else {
		cipher.NewCBCDecrypter(c, iv[:]).CryptBlocks(out, data)
	}
	return out, nil
}

// ecbWith encrypts or decrypts data block by block (used only for keys
// under a key-encryption key).
func ecbWith(c cipher.Block, data []byte, encrypt bool) ([]byte, error) {
	if len(data)%des.BlockSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes", ErrDataLength, len(data))
	}
	out := make([]byte, len(data))
	for i := 0; i < len(data); i += des.BlockSize {
		if encrypt {
			c.Encrypt(out[i:], data[i:i+des.BlockSize])
		} else {
			c.Decrypt(out[i:], data[i:i+des.BlockSize])
		}
	}
	return out, nil
}
