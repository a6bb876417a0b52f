package wire

// This file keeps the implementation of Protector.Seal and Protector.Open
// as it was before the fast paths (commit c9bafa0), verbatim apart from the
// names, as the reference oracle of the differential tests: the current
// Seal must produce the same bytes (or fail when it fails), and the current
// Open must accept exactly the messages it accepts, with the same content.
// Do not change it.

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/moov-io/iso8583"
	iso8583errors "github.com/moov-io/iso8583/errors"
	"github.com/moov-io/iso8583/field"

	"github.com/cardless-atm/cardless/hsm"
)

// sealRef is the old Seal.
func (p *Protector) sealRef(msg *iso8583.Message) ([]byte, error) {
	if msg == nil {
		return nil, errors.New("wire: seal: nil message")
	}
	keys := p.Keys()
	mti, err := msg.GetMTI()
	if err != nil || len(mti) != 4 {
		return nil, fmt.Errorf("wire: seal: message has no valid MTI")
	}
	m := iso8583.NewMessage(Spec)
	m.MTI(mti)
	fields := msg.GetFields()
	secondary := false // a field other than the MAC above 64
	for _, id := range slices.Sorted(maps.Keys(fields)) {
		f := fields[id]
		switch {
		case id < 2, id == FieldMAC64, id == FieldMAC128, id == FieldMACKeyKCV:
			// MTI and bitmap are Seal's; the MAC and KCV are set below.
			continue
		case id == FieldQRPayload || id == FieldCustomerID:
			if err := p.sealFieldRef(m, keys.Data, id, f); err != nil {
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
		secondary = secondary || id > 64
	}

	macKey := keys.macKey(mti)
	kcv, err := p.c.KCV(macKey)
	if err != nil {
		return nil, fmt.Errorf("wire: seal: MAC key: %w", err)
	}
	if err := m.Field(FieldMACKeyKCV, kcv); err != nil {
		return nil, fmt.Errorf("wire: seal: field 96: %w", err)
	}
	secondary = secondary || FieldMACKeyKCV > 64
	mf := FieldMAC64
	if secondary {
		mf = FieldMAC128
	}
	var zero [8]byte
	if err := m.BinaryField(mf, zero[:]); err != nil {
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
	upperHex(packed[body:], mac)
	return packed, nil
}

// sealField sets field id of m to the encryption under key of the value of
// f: 3DES-CBC of the value padded with ISO 9797-1 method 2, as upper-case
// hex.
func (p *Protector) sealFieldRef(m *iso8583.Message, key hsm.KeyName, id int, f field.Field) error {
	plain, err := f.String()
	if err != nil {
		return fmt.Errorf("wire: seal: field %d: %w", id, err)
	}
	if len(plain) > MaxEncryptedPlain {
		return fmt.Errorf("%w: field %d has %d bytes, at most %d", ErrFieldTooLong, id, len(plain), MaxEncryptedPlain)
	}
	ct, err := p.c.Encrypt(key, pad2([]byte(plain)))
	if err != nil {
		return fmt.Errorf("wire: seal: encrypt field %d: %w", id, err)
	}
	h := make([]byte, 2*len(ct))
	upperHex(h, ct)
	if err := m.BinaryField(id, h); err != nil {
		return fmt.Errorf("wire: seal: field %d: %w", id, err)
	}
	return nil
}

// openRef is the old Open.
func (p *Protector) openRef(raw []byte) (msg *iso8583.Message, err error) {
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
	if len(mti) != 4 || !isDigits(mti) {
		return fail(ErrMalformed, 0, nil)
	}
	merr.MTI = mti
	// Canonical form: re-packing must give exactly the bytes received (no
	// trailing bytes, no lower-case hex, no stray bitmap bits).
	again, perr := m.Pack()
	if perr != nil || !bytes.Equal(again, raw) {
		return fail(ErrMalformed, 0, nil)
	}
	for _, id := range numericFields {
		if m.GetField(id) != nil {
			if s, _ := m.GetString(id); !isDigits(s) {
				return fail(ErrMalformed, id, nil)
			}
		}
	}

	fields := m.GetFields()
	present := func(id int) bool { _, ok := fields[id]; return ok }
	mf := macField(fields)
	other := FieldMAC64
	if mf == FieldMAC64 {
		other = FieldMAC128
	}
	if !present(mf) || present(other) {
		return fail(ErrMAC, mf, nil)
	}
	if !present(FieldMACKeyKCV) {
		return fail(ErrMAC, FieldMACKeyKCV, nil)
	}
	kcv, _ := m.GetString(FieldMACKeyKCV)

	p.mu.RLock()
	sets := []KeySet{p.cur}
	if p.prev != nil {
		sets = append(sets, *p.prev)
	}
	p.mu.RUnlock()

	var keys *KeySet
	for i := range sets {
		name := sets[i].macKey(mti)
		if name == "" {
			continue
		}
		k, kerr := p.c.KCV(name)
		if kerr == nil && k == kcv {
			keys = &sets[i]
			break
		}
	}
	if keys == nil {
		return fail(ErrMAC, FieldMACKeyKCV, nil)
	}
	body := len(raw) - 16
	mac := make([]byte, 8)
	if _, herr := hex.Decode(mac, raw[body:]); herr != nil {
		return fail(ErrMAC, mf, nil)
	}
	if verr := p.c.VerifyMAC(keys.macKey(mti), raw[:body], mac, MACPadding); verr != nil {
		var cause error
		if !errors.Is(verr, hsm.ErrMACMismatch) {
			cause = verr
		}
		return fail(ErrMAC, mf, cause)
	}

	// MAC verified: now decrypt.
	for _, id := range encryptedFields {
		if !present(id) {
			continue
		}
		s, _ := m.GetString(id)
		ct, herr := hex.DecodeString(s)
		if herr != nil || len(ct) == 0 || len(ct)%8 != 0 || !isUpperHex(s) {
			return fail(ErrMalformed, id, nil)
		}
		pt, derr := p.c.Decrypt(keys.Data, ct)
		if derr != nil {
			return fail(ErrMalformed, id, derr)
		}
		plain, ok := unpad2(pt)
		if !ok {
			return fail(ErrMalformed, id, nil)
		}
		if serr := m.Field(id, string(plain)); serr != nil {
			return fail(ErrMalformed, id, nil)
		}
	}
	return m, nil
}
