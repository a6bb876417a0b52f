// Package hsm is the appliance's payment security module: it holds the
// keys and performs every cryptographic operation of the ATM links, in the
// shape of jPOS's SMAdapter. Callers name keys (KeyName: "tmk", "tak", ...)
// and never see key bytes: clear keys go in (key ceremony, development
// configuration) but no method returns them.
//
// # Interfaces
//
// Module is the core: key check values, keys imported under a
// key-encryption key, key generation, retail MACs, 3DES-CBC and key
// variants. ClearKeyImporter (clear keys and key components) and HMACer
// (HMAC-SHA256 for dispense tokens) are optional capabilities found by type
// assertion. A vendor's hardware module (for example through PKCS#11) would
// implement the same interfaces.
//
// # Soft
//
// Soft is the software implementation. NewSoft keeps keys in memory only;
// OpenStore keeps them in a file encrypted with AES-256-GCM under a 32-byte
// storage key (see NewStorageKeyFile and ReadStorageKeyFile). The file has
// a versioned header that is authenticated with the contents, is rewritten
// atomically (temporary file, fsync, rename; mode 0600) on every change
// before the call returns, and a file that fails authentication is an error
// wrapping ErrStoreAuth, never a silent reset. An open store is locked
// (flock on the store path plus ".lock") until Close, so a second process
// gets ErrStoreLocked instead of overwriting the first one's keys. Close
// zeroes every key byte
// the module holds. Each 3DES key's expanded crypto/des key schedules (and
// its KCV) are built once and cached beside the key, so MACs, encryption
// and KCVs pay no key setup; replacing or deleting a key and Close drop
// them, but crypto/des gives no way to overwrite its subkeys, so those are
// left unreachable for the garbage collector rather than zeroed.
//
// # Cryptography
//
//   - 3DES keys are double length (16 bytes K1|K2, used as K1|K2|K1) or
//     triple length (24 bytes). Clear keys must have odd parity in every
//     byte (ErrKeyParity); keys recovered from a cryptogram (ImportKey) are
//     checked by KCV instead, since DES ignores parity bits.
//   - Key check value: 3DES-ECB of eight zero bytes, first three bytes as
//     six upper-case hex digits. The published key
//     0123456789ABCDEFFEDCBA9876543210 has KCV 08D7B4.
//   - Key components: FormKey XORs two or three components, each of which
//     must have odd parity; the XOR is then adjusted to odd parity by
//     setting the low bit of each byte as needed (XORing an even number of
//     odd-parity bytes gives even parity). The 56 DES key bits are exactly
//     the XOR of the components'.
//   - MAC: ISO/IEC 9797-1 MAC algorithm 3 (ANSI X9.19 retail MAC) with
//     padding method 1 (zeros; empty data gives one zero block) or method 2
//     (0x80 then zeros). The full eight bytes are returned and verified.
//   - Data encryption: 3DES-CBC with a zero IV, no padding (ErrDataLength).
//   - Keys under a key-encryption key (ImportKey, GenerateKey): 3DES-ECB.
//   - Key variants: DeriveVariant XORs every byte of the key with one
//     variant byte. A variant with an even number of set bits keeps odd
//     parity; 0x00 and 0x01 are refused (they leave the DES key unchanged).
//     Which variant serves which purpose is the protocol's business.
//   - HMAC-SHA256 keys (at least 16 bytes) live in the same name space; a
//     name holds either a 3DES key or an HMAC key and using one as the
//     other fails with ErrKeyType.
//
// KCVOf, RetailMAC, EncryptCBC and DecryptCBC expose the primitives on
// clear keys for tools, simulators and tests; they do not check parity.
//
// Errors never contain key bytes.
package hsm
