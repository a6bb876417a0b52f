package wire

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/moov-io/iso8583"
	iso8583errors "github.com/moov-io/iso8583/errors"
	"github.com/moov-io/iso8583/field"

	"github.com/cardless-atm/cardless/hsm"
)

// NetMgmtVariant is the key variant byte that turns the terminal master key
// into the MAC key of network management messages on the proxy link:
// both ends call DeriveVariant(hsm.TMK, <slot>, NetMgmtVariant) so that
// sign-on is MAC'd before any working key exists.
const NetMgmtVariant byte = 0x24

// MACPadding is the ISO 9797-1 padding method of every MAC on every link.
const MACPadding = hsm.PaddingMethod2

// Sentinel errors of message protection. Callers compare with errors.Is.
var (
	// ErrMAC: the MAC is missing, does not verify, or was made with a key
	// whose KCV (field 96) is not one of the accepted keys. The message
	// must be dropped (or answered 63) and nothing in it trusted.
	ErrMAC = errors.New("wire: MAC verification failed")
	// ErrMalformed: the bytes are not a well-formed message on Spec (unpack
	// failure, non-canonical encoding, trailing bytes, a non-digit in a
	// numeric field, an encrypted field that does not decrypt).
	ErrMalformed = errors.New("wire: malformed message")
	// ErrFieldTooLong: a clear value for an encrypted field is longer than
	// MaxEncryptedPlain.
	ErrFieldTooLong = errors.New("wire: field too long to encrypt")
)

// MessageError reports why an incoming message was rejected. It carries the
// MTI and STAN (when they could be read) and never any other content.
type MessageError struct {
	MTI   string // "" when unknown
	STAN  string // "" when unknown
	Field int    // the field at fault, 0 when not one field
	Err   error  // ErrMAC or ErrMalformed
	Cause error  // underlying module error, if any (never message content)
}

func (e *MessageError) Error() string {
	var b strings.Builder
	b.WriteString("wire: message")
	if e.MTI != "" {
		b.WriteString(" " + e.MTI)
	}
	if e.STAN != "" {
		b.WriteString(" stan " + e.STAN)
	}
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "wire: "))
	if e.Field > 0 {
		b.WriteString(" (field " + strconv.Itoa(e.Field) + ")")
	}
	if e.Cause != nil {
		b.WriteString(": " + e.Cause.Error())
	}
	return b.String()
}

// Unwrap returns the sentinel and the cause.
func (e *MessageError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// Crypto is what a Protector needs from a security module; hsm.Module
// satisfies it.
type Crypto interface {
	KCV(name hsm.KeyName) (string, error)
	GenerateMAC(name hsm.KeyName, data []byte, p hsm.Padding) ([]byte, error)
	VerifyMAC(name hsm.KeyName, data, mac []byte, p hsm.Padding) error
	Encrypt(name hsm.KeyName, data []byte) ([]byte, error)
	Decrypt(name hsm.KeyName, data []byte) ([]byte, error)
}

var _ Crypto = hsm.Module(nil)

// KeySet names the keys of one link generation.
type KeySet struct {
	// NetMgmtMAC MACs 08xx messages. On the proxy link it is the TMK
	// variant (NetMgmtVariant), so sign-on works before working keys exist.
	NetMgmtMAC hsm.KeyName
	// MAC MACs every other message (the TAK on the proxy link).
	MAC hsm.KeyName
	// Data encrypts fields 62, 120 and 123 (the TEK on the proxy link).
	Data hsm.KeyName
}

// numEncrypted is the number of encrypted fields.
const numEncrypted = 3

// encryptedFields are encrypted with the Data key in every message type.
var encryptedFields = [numEncrypted]int{FieldQRPayload, FieldCustomerID, FieldDeviceID}

// isEncrypted reports whether field id is one of encryptedFields.
func isEncrypted(id int) bool {
	return id == FieldQRPayload || id == FieldCustomerID || id == FieldDeviceID
}

// numericFields must hold digits only when present.
var numericFields = []int{FieldProcessingCode, FieldAmount, FieldTransmissionDT, FieldSTAN,
	FieldLocalTime, FieldLocalDate, FieldSettlementDate, FieldAcquirerID, FieldCurrency, FieldSettlementCurr,
	FieldNetMgmtCode, FieldDebitsNumber, FieldDebitsRevNumber, FieldDebitsAmount, FieldDebitsRevAmount,
	FieldOriginalData, FieldAdviceTotals}

// Protector seals outgoing and opens incoming messages of one link: MAC,
// field 96 and field encryption. It is safe for concurrent use.
//
// Key rollover: SetKeys makes the current set "previous"; messages whose
// field 96 names a previous key still open (and their fields decrypt with
// the previous Data key) until DropPrevious. Keys of a new generation must
// be imported under new slot names (for example "tak.2"), because the
// previous set refers to its keys by name.
type Protector struct {
	c    Crypto
	mu   sync.RWMutex
	cur  KeySet
	prev *KeySet
}

// NewProtector returns a Protector using the keys k in module c.
func NewProtector(c Crypto, k KeySet) *Protector {
	return &Protector{c: c, cur: k}
}

// Keys returns the current key set.
func (p *Protector) Keys() KeySet {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cur
}

// SetKeys makes next the current set and the current set the previous one
// (replacing any older previous set).
func (p *Protector) SetKeys(next KeySet) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.cur
	p.prev = &old
	p.cur = next
}

// AcceptAlso makes ks the previous set (replacing any older previous set)
// and leaves the current set as it is: messages under ks open, and Seal
// still uses the current set. It serves the side that learns of new keys
// before its peer switches to them (the peer answers under the new keys,
// we keep sending under the old ones until it confirms): SetKeys then
// makes them current, or DropPrevious forgets them.
func (p *Protector) AcceptAlso(ks KeySet) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prev = &ks
}

// DropPrevious stops accepting the previous key set.
func (p *Protector) DropPrevious() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prev = nil
}

func isNetMgmt(mti string) bool { return strings.HasPrefix(mti, "08") }

func (k KeySet) macKey(mti string) hsm.KeyName {
	if isNetMgmt(mti) {
		return k.NetMgmtMAC
	}
	return k.MAC
}

// Seal protects a copy of msg (msg itself is not changed) and returns the
// packed bytes: fields 62, 120 and 123 are encrypted with the current Data key
// (3DES-CBC, zero IV, ISO 9797-1 padding method 2, binary), field
// 96 is set to the KCV of the MAC key, and the MAC (ISO 9797-1 algorithm 3,
// padding method 2, over every byte from the MTI up to but excluding the
// MAC field) goes in field 128, or 64 when no field above 64 is present.
// Because field 96 is always present, in practice the MAC is in field 128.
//
// Messages whose fields all have a simple layout on Spec (every field the
// system uses) are written straight to bytes (fast.go); any other message
// goes through sealGeneric. Both give the same bytes.
func (p *Protector) Seal(msg *iso8583.Message) ([]byte, error) {
	return p.appendSeal(nil, msg)
}

// appendSeal appends the sealed form of msg to dst (Seal; the Codec seals
// straight into its frame buffer).
func (p *Protector) appendSeal(dst []byte, msg *iso8583.Message) ([]byte, error) {
	if msg == nil {
		return nil, errors.New("wire: seal: nil message")
	}
	if out, ok := p.sealFast(dst, msg); ok {
		return out, nil
	}
	packed, err := p.sealGeneric(msg)
	if err != nil {
		return nil, err
	}
	return append(dst, packed...), nil
}

// sealGeneric is Seal through the iso8583 module: the message is copied
// field by field (each value moved with Bytes/SetBytes, the encrypted
// fields set straight to their ciphertext) and packed once; the MAC is
// then written over the packed placeholder. msg is not nil (appendSeal
// checks).
func (p *Protector) sealGeneric(msg *iso8583.Message) ([]byte, error) {
	keys := p.Keys()
	mti, err := msg.GetMTI()
	if err != nil || len(mti) != 4 {
		return nil, fmt.Errorf("wire: seal: message has no valid MTI")
	}
	m := iso8583.NewMessage(Spec)
	m.MTI(mti)
	fields := msg.GetFields()
	for _, id := range slices.Sorted(maps.Keys(fields)) {
		f := fields[id]
		switch {
		case id < 2, id == FieldMAC64, id == FieldMAC128, id == FieldMACKeyKCV:
			// MTI and bitmap are Seal's; the MAC and KCV are set below.
			continue
		case isEncrypted(id):
			if err := p.sealField(m, keys.Data, id, f); err != nil {
				return nil, err
			}
		default:
			b, err := f.Bytes()
			if err != nil {
				return nil, fmt.Errorf("wire: seal: field %d: %w", id, err)
			}
			if err := m.BinaryField(id, b); err != nil {
				return nil, fmt.Errorf("wire: seal: message does not fit Spec: field %d", id)
			}
		}
	}

	macKey := keys.macKey(mti)
	kcv, err := p.c.KCV(macKey)
	if err != nil {
		return nil, fmt.Errorf("wire: seal: MAC key: %w", err)
	}
	if err := m.Field(FieldMACKeyKCV, kcv); err != nil {
		return nil, fmt.Errorf("wire: seal: field 96: %w", err)
	}
	// Field 96 is always set, so there is always a secondary bitmap and
	// the MAC goes in field 128.
	var zero [8]byte
	if err := m.BinaryField(FieldMAC128, zero[:]); err != nil {
		return nil, fmt.Errorf("wire: seal: MAC field: %w", err)
	}
	packed, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("wire: seal: %w", err)
	}
	body := len(packed) - 16
	if body < 0 || string(packed[body:]) != "0000000000000000" {
		return nil, fmt.Errorf("wire: seal: MAC field is not last")
	}
	mac, err := p.c.GenerateMAC(macKey, packed[:body], MACPadding)
	if err != nil {
		return nil, fmt.Errorf("wire: seal: MAC: %w", err)
	}
	if len(mac) != 8 {
		return nil, fmt.Errorf("wire: seal: MAC has %d bytes, want 8", len(mac))
	}
	return appendUpperHex(packed[:body], mac), nil
}

// sealField sets field id of m to the encryption under key of the value of
// f: 3DES-CBC of the value padded with ISO 9797-1 method 2.
func (p *Protector) sealField(m *iso8583.Message, key hsm.KeyName, id int, f field.Field) error {
	plain, err := f.String()
	if err != nil {
		return fmt.Errorf("wire: seal: field %d: %w", id, err)
	}
	if len(plain) > MaxEncryptedPlain {
		return fmt.Errorf("%w: field %d has %d bytes, at most %d", ErrFieldTooLong, id, len(plain), MaxEncryptedPlain)
	}
	ct, err := p.c.Encrypt(key, pad2To(nil, plain))
	if err != nil {
		return fmt.Errorf("wire: seal: encrypt field %d: %w", id, err)
	}
	if err := m.BinaryField(id, ct); err != nil {
		return fmt.Errorf("wire: seal: field %d: %w", id, err)
	}
	return nil
}

// Open checks that raw is a canonical message on Spec, verifies its MAC
// and decrypts fields 62, 120 and 123. It fails closed: a missing MAC, a wrong
// MAC, an unknown key KCV in field 96 or a malformed message all give a
// *MessageError (ErrMAC or ErrMalformed) and no message. Nothing is
// decrypted before the MAC verifies. The returned message has fields 62,
// 120 and 123 in clear.
//
// Canonical messages whose fields all have a simple layout are parsed
// once, directly from raw (fast.go): the canonical form is checked while
// parsing, which is equivalent to the general path's unpack and re-pack;
// everything else goes through openGeneric. Both accept the same inputs
// and give the same message or error.
func (p *Protector) Open(raw []byte) (*iso8583.Message, error) {
	if m, err, ok := p.openFast(raw); ok {
		return m, err
	}
	return p.openGeneric(raw)
}

// openGeneric is Open through the iso8583 module: unpack, re-pack to check
// the canonical form, verify, decrypt. Open uses it for every input the
// fast path does not take (anything that is not a canonical message of
// fields with simple layouts, so in practice only malformed input).
func (p *Protector) openGeneric(raw []byte) (msg *iso8583.Message, err error) {
	merr := &MessageError{MTI: sniffMTI(raw)}
	defer func() {
		if r := recover(); r != nil {
			merr.Err, merr.Field = ErrMalformed, 0
			msg, err = nil, merr
		}
	}()
	fail := func(sentinel error, field int, cause error) (*iso8583.Message, error) {
		merr.Err, merr.Field, merr.Cause = sentinel, field, cause
		return nil, merr
	}

	m := iso8583.NewMessage(Spec)
	if uerr := m.Unpack(raw); uerr != nil {
		var ue *iso8583errors.UnpackError
		f := 0
		if errors.As(uerr, &ue) {
			f, _ = strconv.Atoi(ue.FieldID)
		}
		merr.STAN = digitsOnly(STAN(m), 6)
		return fail(ErrMalformed, f, nil)
	}
	merr.STAN = digitsOnly(STAN(m), 6)
	mti, _ := m.GetMTI()
	if len(mti) != 4 || !IsDigits(mti) {
		return fail(ErrMalformed, 0, nil)
	}
	merr.MTI = mti
	// Canonical form: re-packing must give exactly the bytes received (no
	// trailing bytes, no lower-case hex, no stray bitmap bits).
	again, perr := m.Pack()
	if perr != nil || !bytes.Equal(again, raw) {
		return fail(ErrMalformed, 0, nil)
	}
	fields := m.GetFields()
	plain, err := p.openVerified(raw, mti, merr.STAN, func(id int) ([]byte, bool) {
		f, ok := fields[id]
		if !ok {
			return nil, false
		}
		s, _ := f.String()
		return []byte(s), true
	})
	if err != nil {
		return nil, err
	}
	for i, id := range encryptedFields {
		if _, ok := fields[id]; ok {
			if serr := m.Field(id, plain[i]); serr != nil {
				return fail(ErrMalformed, id, nil)
			}
		}
	}
	return m, nil
}

// openVerified is the part of Open that follows parsing: openFast and
// openGeneric call it once raw has been parsed and found canonical
// (scanCanonical, or the module's unpack and re-pack), so that the checks,
// their order and the errors are the same on both paths. value returns the
// bytes of field id as parsed (for an encrypted field, its cipher text)
// and whether the field is present; it may return a slice of raw, which is
// only read.
//
// It checks that the numeric fields hold digits, that the message has its
// MAC field (128 when a field 65-127 is present, else 64; not the other
// one) and field 96, finds the key set whose MAC key field 96 names,
// verifies the MAC (the last 16 bytes of raw, upper-case hex in a
// canonical message) over the bytes before it, and only then decrypts the
// encrypted fields. It returns their clear values in the order of
// encryptedFields ("" for an absent field). On failure it returns a
// *MessageError with the message's mti and stan (as digitsOnly gives it).
func (p *Protector) openVerified(raw []byte, mti, stan string, value func(id int) ([]byte, bool)) (plain [numEncrypted]string, err error) {
	fail := func(sentinel error, field int, cause error) ([numEncrypted]string, error) {
		return [numEncrypted]string{}, &MessageError{MTI: mti, STAN: stan, Err: sentinel, Field: field, Cause: cause}
	}
	for _, id := range numericFields {
		if v, ok := value(id); ok && !IsDigits(v) {
			return fail(ErrMalformed, id, nil)
		}
	}
	mf, other := FieldMAC64, FieldMAC128
	for id := 65; id < FieldMAC128; id++ {
		if _, ok := value(id); ok {
			mf, other = FieldMAC128, FieldMAC64
			break
		}
	}
	if _, ok := value(mf); !ok {
		return fail(ErrMAC, mf, nil)
	}
	if _, ok := value(other); ok {
		return fail(ErrMAC, mf, nil)
	}
	kcv, ok := value(FieldMACKeyKCV)
	if !ok {
		return fail(ErrMAC, FieldMACKeyKCV, nil)
	}
	keys, ok := p.keySetFor(mti, kcv)
	if !ok {
		return fail(ErrMAC, FieldMACKeyKCV, nil)
	}
	body := len(raw) - 16
	var mac [8]byte
	if body < 0 || !decodeUpperHex(mac[:], raw[body:]) {
		return fail(ErrMAC, mf, nil)
	}
	if verr := p.c.VerifyMAC(keys.macKey(mti), raw[:body], mac[:], MACPadding); verr != nil {
		var cause error
		if !errors.Is(verr, hsm.ErrMACMismatch) {
			cause = verr
		}
		return fail(ErrMAC, mf, cause)
	}

	// MAC verified: now decrypt.
	for i, id := range encryptedFields {
		ct, ok := value(id)
		if !ok {
			continue
		}
		if len(ct) == 0 || len(ct)%8 != 0 {
			return fail(ErrMalformed, id, nil)
		}
		pt, derr := p.c.Decrypt(keys.Data, ct)
		if derr != nil {
			return fail(ErrMalformed, id, derr)
		}
		v, good := unpad2(pt)
		if !good {
			return fail(ErrMalformed, id, nil)
		}
		plain[i] = string(v)
	}
	return plain, nil
}

// unpad2 removes ISO 9797-1 padding method 2 (see pad2To); false if b
// is not padded that way (no 0x80, or more than 8 padding bytes).
func unpad2(b []byte) ([]byte, bool) {
	i := len(b) - 1
	for i >= 0 && b[i] == 0 {
		i--
	}
	if i < 0 || b[i] != 0x80 || len(b)-i > 8 {
		return nil, false
	}
	return b[:i], true
}

func sniffMTI(raw []byte) string {
	if len(raw) >= 4 && IsDigits(string(raw[:4])) {
		return string(raw[:4])
	}
	return ""
}

func digitsOnly(s string, n int) string {
	if len(s) == n && IsDigits(s) {
		return s
	}
	return ""
}

// keySetFor returns the key set (current, else previous) whose MAC key
// for mti has the check value kcv, the one field 96 names; false if none
// has. It takes the key sets under the lock and asks the module for the
// check values after releasing it.
func (p *Protector) keySetFor(mti string, kcv []byte) (KeySet, bool) {
	p.mu.RLock()
	sets := [2]KeySet{p.cur}
	n := 1
	if p.prev != nil {
		sets[1] = *p.prev
		n = 2
	}
	p.mu.RUnlock()
	for _, k := range sets[:n] {
		name := k.macKey(mti)
		if name == "" {
			continue
		}
		if c, err := p.c.KCV(name); err == nil && c == string(kcv) {
			return k, true
		}
	}
	return KeySet{}, false
}
