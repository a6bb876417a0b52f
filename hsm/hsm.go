package hsm

import "errors"

// KeyName names a key slot inside a Module, for example "tmk", "tak", "tek".
// A name is a handle: callers never see the key bytes behind it.
type KeyName string

// Conventional slot names used across the appliance and the simulators.
const (
	TMK       KeyName = "tmk"        // terminal master key (key-encryption key)
	TAK       KeyName = "tak"        // working MAC key, proxy link
	TEK       KeyName = "tek"        // working data-encryption key, proxy link
	HostMAC   KeyName = "host.mac"   // MAC key, host link
	HostData  KeyName = "host.data"  // data key, host link
	QRMAC     KeyName = "qr.mac"     // key for the MAC carried in the QR code
	TokenKey  KeyName = "token.hmac" // HMAC-SHA256 key for XFS4IoT dispense tokens
	AppPINKey KeyName = "app.pin"    // phone app <-> host credential key
	// JournalKey is the HMAC-SHA256 key that authenticates the head of the
	// ATM's electronic journal (atm/store). It never leaves the ATM.
	JournalKey KeyName = "journal.hmac"
)

// Padding selects the ISO 9797-1 padding method for a MAC.
type Padding int

const (
	// PaddingMethod1 pads with zero bytes (classic ANSI X9.19).
	PaddingMethod1 Padding = 1
	// PaddingMethod2 appends 0x80 then zero bytes (ISO 7816-4, jPOS default).
	PaddingMethod2 Padding = 2
)

// Sentinel errors. Callers compare with errors.Is.
var (
	ErrKeyNotFound = errors.New("hsm: key not found")
	ErrKCVMismatch = errors.New("hsm: key check value mismatch")
	ErrKeyLength   = errors.New("hsm: wrong key length")
	ErrKeyParity   = errors.New("hsm: key does not have odd parity")
	ErrDataLength  = errors.New("hsm: data length is not a multiple of the block size")
	ErrMACMismatch = errors.New("hsm: MAC verification failed")
	ErrClosed      = errors.New("hsm: module closed")
	ErrStoreAuth   = errors.New("hsm: key store cannot be opened: wrong storage key or file tampered with")
	// ErrStoreLocked: another process (the running appliance, another
	// atmctl) has the key store open. Stop it, then try again; a store is
	// never opened by two processes, so that neither overwrites the
	// other's keys.
	ErrStoreLocked = errors.New("hsm: key store is in use by another process")
	// ErrKeyType: a 3DES key used as an HMAC key or the other way round.
	ErrKeyType = errors.New("hsm: key has the wrong type for this operation")
	// ErrKeyName: an empty or otherwise unusable key name.
	ErrKeyName = errors.New("hsm: invalid key name")
)

// Module is a payment security module in the shape of jPOS's SMAdapter.
// Clear keys go in (key ceremony, development configuration) but never come
// out: no method returns key bytes.
//
// Implementations must be safe for concurrent use.
type Module interface {
	// KCV returns the key check value of the named key: 3DES-ECB of eight
	// zero bytes, first three bytes, as six upper-case hex digits.
	KCV(name KeyName) (string, error)

	// ImportKey decrypts encrypted (3DES-ECB under the key-encryption key
	// kek), checks the result against kcv (ErrKCVMismatch on a difference,
	// and then nothing is stored), and stores it under name, replacing any
	// key of that name.
	ImportKey(kek, name KeyName, encrypted []byte, kcv string) error

	// GenerateKey creates a random double-length 3DES key with odd parity,
	// stores it under name and returns it encrypted under kek with its KCV.
	GenerateKey(kek, name KeyName) (encrypted []byte, kcv string, err error)

	// GenerateMAC computes the ISO 9797-1 algorithm 3 (ANSI X9.19 retail)
	// MAC of data with the named key: eight bytes.
	GenerateMAC(name KeyName, data []byte, p Padding) ([]byte, error)

	// VerifyMAC recomputes the MAC and compares in constant time; it
	// returns ErrMACMismatch when they differ.
	VerifyMAC(name KeyName, data, mac []byte, p Padding) error

	// Encrypt and Decrypt are 3DES-CBC with a zero IV; len(data) must be a
	// multiple of 8 (ErrDataLength).
	Encrypt(name KeyName, data []byte) ([]byte, error)
	Decrypt(name KeyName, data []byte) ([]byte, error)

	// DeriveVariant stores under dst the key src with every byte of each
	// eight-byte key part XORed with variant (a key variant, as in the
	// Atalla/IBM schemes): a related key for a separate purpose without
	// exposing src. Both ends of a link derive the same variant.
	DeriveVariant(src, dst KeyName, variant byte) error

	// DeleteKey removes a key; deleting a missing key is not an error.
	DeleteKey(name KeyName) error
}

// ClearKeyImporter is implemented by modules that accept clear keys: the
// key ceremony (components) and development configurations.
type ClearKeyImporter interface {
	// ImportClearKey stores the 3DES key (16 or 24 bytes, odd parity)
	// under name and returns its KCV. HMAC keys go in through
	// HMACer.ImportClearHMACKey.
	ImportClearKey(name KeyName, key []byte) (kcv string, err error)
	// FormKey XORs two or three components into a key stored under name;
	// it reports each component's KCV and the KCV of the result.
	FormKey(name KeyName, components ...[]byte) (componentKCVs []string, kcv string, err error)
}

// HMACer is implemented by modules that compute HMAC-SHA256 (dispense tokens).
type HMACer interface {
	// ImportClearHMACKey stores an HMAC-SHA256 key (at least 16 bytes)
	// under name, replacing any key of that name. A name holds either a
	// 3DES key or an HMAC key; using one as the other fails with ErrKeyType.
	ImportClearHMACKey(name KeyName, key []byte) error
	HMACSHA256(name KeyName, data []byte) ([]byte, error)
	VerifyHMACSHA256(name KeyName, data, mac []byte) error
}
