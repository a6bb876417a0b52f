package tr31

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Header is a TR-31 key block header: what the key is and what it may do.
type Header struct {
	// Version is 'B' (TDES key block protection key, CMAC key derivation)
	// or 'D' (AES).
	Version byte
	// KeyUsage, two characters: "M3" ISO 9797-1 MAC algorithm 3 (retail
	// MAC), "D0" symmetric data encryption, "K0" key encryption or
	// wrapping, "P0" PIN encryption, "B0" base derivation key, ...
	KeyUsage string
	// Algorithm of the key inside: 'T' TDES, 'A' AES, 'H' HMAC.
	Algorithm byte
	// ModeOfUse: 'B' encrypt and decrypt, 'C' MAC generate and verify, 'D'
	// decrypt only, 'E' encrypt only, 'G' MAC generate only, 'V' MAC verify
	// only, 'N' no restrictions, 'X' derive keys.
	ModeOfUse byte
	// KeyVersion, two characters ("00": none).
	KeyVersion string
	// Exportability: 'E' exportable under a KEK, 'N' not exportable, 'S'
	// sensitive.
	Exportability byte
	// Blocks are the optional blocks, in order (a padding block "PB" is
	// added and removed by Wrap and Unwrap).
	Blocks []Block
}

// Block is an optional header block: a two-character ID and printable data.
type Block struct {
	ID   string
	Data string
}

// Errors. Callers compare with errors.Is; the messages never contain key
// bytes.
var (
	// ErrFormat: the key block or header is malformed.
	ErrFormat = errors.New("tr31: malformed key block")
	// ErrMAC: the key block's MAC does not verify under the KBPK (a wrong
	// key block protection key, or the block was altered).
	ErrMAC = errors.New("tr31: key block MAC does not verify")
	// ErrKBPK: the key block protection key has a wrong length for the
	// version.
	ErrKBPK = errors.New("tr31: key block protection key")
	// ErrVersion: a version this package does not handle (A and C, the
	// variant methods, are deprecated).
	ErrVersion = errors.New("tr31: unsupported key block version")
)

const headerLen = 16

// blockSize is the cipher block size of the version.
func blockSize(v byte) int {
	if v == 'D' {
		return 16
	}
	return 8
}

func (h Header) check() error {
	if h.Version != 'B' && h.Version != 'D' {
		return fmt.Errorf("%w %q (B and D are)", ErrVersion, h.Version)
	}
	ok := func(s string, n int) bool {
		if len(s) != n {
			return false
		}
		for i := 0; i < n; i++ {
			if s[i] < 0x20 || s[i] > 0x7E {
				return false
			}
		}
		return true
	}
	if !ok(h.KeyUsage, 2) || !ok(string([]byte{h.Algorithm, h.ModeOfUse, h.Exportability}), 3) || !ok(h.KeyVersion, 2) {
		return fmt.Errorf("%w: header fields must be printable ASCII of the right length", ErrFormat)
	}
	if len(h.Blocks) > 99 {
		return fmt.Errorf("%w: more than 99 optional blocks", ErrFormat)
	}
	for _, b := range h.Blocks {
		if !ok(b.ID, 2) || len(b.Data)+4 > 0xFF || !ok(b.Data, len(b.Data)) {
			return fmt.Errorf("%w: optional block %q", ErrFormat, b.ID)
		}
	}
	return nil
}

// optional encodes the optional blocks, with a padding block "PB" to a
// multiple of the cipher block size when needed.
func (h Header) optional() (string, int) {
	var sb strings.Builder
	n := len(h.Blocks)
	for _, b := range h.Blocks {
		fmt.Fprintf(&sb, "%s%02X%s", b.ID, len(b.Data)+4, b.Data)
	}
	if bs := blockSize(h.Version); sb.Len() > 0 && sb.Len()%bs != 0 {
		pad := bs - sb.Len()%bs
		if pad < 4 {
			pad += bs
		}
		fmt.Fprintf(&sb, "PB%02X%s", pad, strings.Repeat("0", pad-4))
		n++
	}
	return sb.String(), n
}

// encode is the header as it goes on the wire, for a block of total length.
func (h Header) encode(total, nblocks int) string {
	return fmt.Sprintf("%c%04d%s%c%c%s%c%02d00", h.Version, total, h.KeyUsage, h.Algorithm, h.ModeOfUse, h.KeyVersion, h.Exportability, nblocks)
}

// keys derives the key block encryption and MAC keys from the KBPK
// (ANSI X9.143 / TR-31: NIST SP 800-108 counter mode with CMAC).
func keys(version byte, kbpk []byte) (enc, mac cipher.Block, err error) {
	var newCipher func([]byte) (cipher.Block, error)
	var alg uint16
	switch version {
	case 'B':
		switch len(kbpk) {
		case 16:
			alg = 0x0000
		case 24:
			alg = 0x0001
		default:
			return nil, nil, fmt.Errorf("%w: version B takes a double- or triple-length TDES key, got %d bytes", ErrKBPK, len(kbpk))
		}
		newCipher = tdes
	case 'D':
		switch len(kbpk) {
		case 16:
			alg = 0x0002
		case 24:
			alg = 0x0003
		case 32:
			alg = 0x0004
		default:
			return nil, nil, fmt.Errorf("%w: version D takes an AES-128, -192 or -256 key, got %d bytes", ErrKBPK, len(kbpk))
		}
		newCipher = aes.NewCipher
	default:
		return nil, nil, fmt.Errorf("%w %q", ErrVersion, version)
	}
	base, err := newCipher(kbpk)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrKBPK, err)
	}
	encData, macData := derivation(len(kbpk), alg)
	derive := func(data [][]byte) (cipher.Block, error) {
		var out []byte
		for _, d := range data {
			out = append(out, CMAC(base, d)...)
		}
		defer clear(out)
		return newCipher(out[:len(kbpk)])
	}
	if enc, err = derive(encData); err != nil {
		return nil, nil, err
	}
	mac, err = derive(macData)
	return enc, mac, err
}

// derivation returns the SP 800-108 derivation data whose CMACs under the
// KBPK, concatenated and cut to the KBPK's length, are the key block
// encryption key and the key block MAC key.
func derivation(n int, alg uint16) (enc, mac [][]byte) {
	bits := uint16(n * 8)
	blocks := 2
	if alg >= 0x0002 { // AES: 16-byte CMACs
		blocks = (n + 15) / 16
	} else if n == 24 {
		blocks = 3
	}
	for _, usage := range []uint16{0x0000, 0x0001} {
		var data [][]byte
		for counter := byte(1); int(counter) <= blocks; counter++ {
			data = append(data, []byte{counter, byte(usage >> 8), byte(usage), 0, byte(alg >> 8), byte(alg), byte(bits >> 8), byte(bits)})
		}
		if usage == 0 {
			enc = data
		} else {
			mac = data
		}
	}
	return enc, mac
}

// DerivationB returns, for a version B KBPK of n bytes (16 or 24), the
// derivation data blocks whose TDES-CMACs under the KBPK, concatenated
// and cut to n bytes, are the key block encryption key (enc) and MAC key
// (mac). A security module that holds the KBPK computes the CMACs and
// passes the keys to UnwrapDerived or WrapDerived.
func DerivationB(n int) (enc, mac [][]byte, err error) {
	switch n {
	case 16:
		enc, mac = derivation(16, 0x0000)
	case 24:
		enc, mac = derivation(24, 0x0001)
	default:
		return nil, nil, fmt.Errorf("%w: version B takes a double- or triple-length TDES key, got %d bytes", ErrKBPK, n)
	}
	return enc, mac, nil
}

// UnwrapDerived is Unwrap of a version B block with the key block
// encryption and MAC keys given (see DerivationB).
func UnwrapDerived(kbek, kbmk []byte, block string) (Header, []byte, error) {
	enc, err := tdes(kbek)
	if err != nil {
		return Header{}, nil, fmt.Errorf("%w: %v", ErrKBPK, err)
	}
	mac, err := tdes(kbmk)
	if err != nil {
		return Header{}, nil, fmt.Errorf("%w: %v", ErrKBPK, err)
	}
	h, pos, err := parseHeader(block)
	if err != nil {
		return Header{}, nil, err
	}
	if h.Version != 'B' {
		return Header{}, nil, fmt.Errorf("%w %q: derived keys are for version B", ErrVersion, h.Version)
	}
	return unwrapWith(enc, mac, h, pos, block)
}

// WrapDerived is Wrap of a version B block with the key block encryption
// and MAC keys given (see DerivationB).
func WrapDerived(kbek, kbmk []byte, h Header, key []byte, random io.Reader) (string, error) {
	if h.Version != 'B' {
		return "", fmt.Errorf("%w %q: derived keys are for version B", ErrVersion, h.Version)
	}
	enc, err := tdes(kbek)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrKBPK, err)
	}
	mac, err := tdes(kbmk)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrKBPK, err)
	}
	return wrapWith(enc, mac, h, key, max(len(key), 24), random)
}

func tdes(k []byte) (cipher.Block, error) {
	if len(k) == 16 {
		k = append(append(make([]byte, 0, 24), k...), k[:8]...)
		defer clear(k)
	}
	return des.NewTripleDESCipher(k)
}

// Wrap protects key under the key block protection key kbpk with header h
// (version B or D), padding the key data with bytes from random (nil:
// crypto/rand). The key's length is hidden: a TDES key is padded as if it
// were triple length, an AES key as if AES-256 (the key length
// obfuscation of X9.143). The result is the printable key block.
func Wrap(kbpk []byte, h Header, key []byte, random io.Reader) (string, error) {
	mask := len(key)
	switch h.Algorithm {
	case 'T':
		mask = max(mask, 24)
	case 'A':
		mask = max(mask, 32)
	}
	return WrapPadded(kbpk, h, key, mask, random)
}

// WrapPadded is Wrap with the key data padded as for a key of maskLen
// bytes (at least the key's length).
func WrapPadded(kbpk []byte, h Header, key []byte, maskLen int, random io.Reader) (string, error) {
	if err := h.check(); err != nil {
		return "", err
	}
	if len(key) == 0 || len(key) > 0xFFF || maskLen > 0xFFF {
		return "", fmt.Errorf("%w: key of %d bytes", ErrFormat, len(key))
	}
	enc, mac, err := keys(h.Version, kbpk)
	if err != nil {
		return "", err
	}
	return wrapWith(enc, mac, h, key, maskLen, random)
}

func wrapWith(enc, mac cipher.Block, h Header, key []byte, maskLen int, random io.Reader) (string, error) {
	if err := h.check(); err != nil {
		return "", err
	}
	if len(key) == 0 || len(key) > 0xFFF || maskLen > 0xFFF {
		return "", fmt.Errorf("%w: key of %d bytes", ErrFormat, len(key))
	}
	if random == nil {
		random = rand.Reader
	}
	bs := blockSize(h.Version)
	n := 2 + max(len(key), maskLen)
	n += (bs - n%bs) % bs
	data := make([]byte, n)
	defer clear(data)
	data[0], data[1] = byte(len(key)*8>>8), byte(len(key)*8)
	copy(data[2:], key)
	if _, err := io.ReadFull(random, data[2+len(key):]); err != nil {
		return "", fmt.Errorf("tr31: random padding: %w", err)
	}
	opt, nblocks := h.optional()
	total := headerLen + len(opt) + 2*n + 2*bs
	if total > 9999 {
		return "", fmt.Errorf("%w: key block of %d characters", ErrFormat, total)
	}
	head := h.encode(total, nblocks) + opt
	tag := CMAC(mac, append([]byte(head), data...))
	out := make([]byte, n)
	cipher.NewCBCEncrypter(enc, tag).CryptBlocks(out, data)
	return head + strings.ToUpper(hex.EncodeToString(out)) + strings.ToUpper(hex.EncodeToString(tag)), nil
}

// ParseHeader reads the header and optional blocks of a key block without
// a key: what it claims to be, before anything is decrypted.
func ParseHeader(block string) (Header, error) {
	h, _, err := parseHeader(block)
	return h, err
}

// parseHeader returns the header and the length of header plus optional
// blocks.
func parseHeader(block string) (Header, int, error) {
	var h Header
	if len(block) < headerLen {
		return h, 0, fmt.Errorf("%w: %d characters, a header alone is %d", ErrFormat, len(block), headerLen)
	}
	h.Version = block[0]
	if h.Version != 'B' && h.Version != 'D' {
		return h, 0, fmt.Errorf("%w %q (B and D are)", ErrVersion, h.Version)
	}
	total, err := digits(block[1:5])
	if err != nil || total != len(block) {
		return h, 0, fmt.Errorf("%w: the header says %q characters, the block has %d", ErrFormat, block[1:5], len(block))
	}
	h.KeyUsage, h.Algorithm, h.ModeOfUse = block[5:7], block[7], block[8]
	h.KeyVersion, h.Exportability = block[9:11], block[11]
	nblocks, err := digits(block[12:14])
	if err != nil || block[14:16] != "00" {
		return h, 0, fmt.Errorf("%w: optional block count %q or reserved field %q", ErrFormat, block[12:14], block[14:16])
	}
	pos := headerLen
	for i := 0; i < nblocks; i++ {
		if pos+4 > len(block) {
			return h, 0, fmt.Errorf("%w: optional block %d runs past the end", ErrFormat, i+1)
		}
		id := block[pos : pos+2]
		l, err := strconv.ParseUint(block[pos+2:pos+4], 16, 8)
		if err != nil || l < 4 || pos+int(l) > len(block) {
			return h, 0, fmt.Errorf("%w: optional block %q has length %q", ErrFormat, id, block[pos+2:pos+4])
		}
		if id != "PB" {
			h.Blocks = append(h.Blocks, Block{ID: id, Data: block[pos+4 : pos+int(l)]})
		}
		pos += int(l)
	}
	if err := h.check(); err != nil {
		return h, 0, err
	}
	return h, pos, nil
}

func digits(s string) (int, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, ErrFormat
		}
	}
	return strconv.Atoi(s)
}

// Unwrap checks the key block's MAC under kbpk and returns its header and
// the key. A block that does not verify gives ErrMAC and no key.
func Unwrap(kbpk []byte, block string) (Header, []byte, error) {
	h, pos, err := parseHeader(block)
	if err != nil {
		return Header{}, nil, err
	}
	enc, mac, err := keys(h.Version, kbpk)
	if err != nil {
		return Header{}, nil, err
	}
	return unwrapWith(enc, mac, h, pos, block)
}

func unwrapWith(enc, mac cipher.Block, h Header, pos int, block string) (Header, []byte, error) {
	bs := blockSize(h.Version)
	body := block[pos:]
	if len(body) < 4*bs || len(body)%(2*bs) != 0 {
		return Header{}, nil, fmt.Errorf("%w: encrypted key data and MAC of %d characters", ErrFormat, len(body))
	}
	raw, err := hex.DecodeString(body)
	if err != nil {
		return Header{}, nil, fmt.Errorf("%w: encrypted key data and MAC must be hex digits", ErrFormat)
	}
	data, tag := raw[:len(raw)-bs], raw[len(raw)-bs:]
	clearData := make([]byte, len(data))
	cipher.NewCBCDecrypter(enc, tag).CryptBlocks(clearData, data)
	want := CMAC(mac, append([]byte(block[:pos]), clearData...))
	if subtle.ConstantTimeCompare(want, tag) != 1 {
		clear(clearData)
		return Header{}, nil, ErrMAC
	}
	bits := int(clearData[0])<<8 | int(clearData[1])
	if bits == 0 || bits%8 != 0 || 2+bits/8 > len(clearData) {
		clear(clearData)
		return Header{}, nil, fmt.Errorf("%w: key length of %d bits in %d bytes of key data", ErrFormat, bits, len(clearData))
	}
	key := append([]byte(nil), clearData[2:2+bits/8]...)
	clear(clearData)
	return h, key, nil
}
