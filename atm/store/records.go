package store

import (
	"crypto/hmac"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func readU64(b []byte) (uint64, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: %d-byte integer record", ErrCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// ---- Sessions ----

// Session records are authenticated like the journal: with a journal key
// (Options.JournalAuth) each record is stored with a MAC over its ID and
// bytes, and every read checks it. A record edited in the file (a paid
// session turned "in doubt" to be settled again, say), one without its
// MAC, or one moved to another ID is refused with ErrSessionTampered; the
// appliance then does not start, as with a broken journal.
//
// Schema 3 seals the MAC into the record's own value (sealSession), so a
// commit writes the sessions tree only. Schema 2 kept the MACs in the
// bucket sessionMACs nested in the sessions bucket: a second B+tree on
// every commit's path; Open migrates it (migrate.go). Schema 1 (no
// journal key) stores the bare records.

// ErrSessionTampered: a session record does not verify under the journal
// key (edited in the file, or written before session records were
// authenticated).
var ErrSessionTampered = errors.New("store: session record does not verify")

// sessionMACs is schema 2's bucket of the records' MACs, nested in the
// sessions bucket; its name cannot be a session ID (IDs are hex).
var sessionMACs = []byte("\x00macs")

func sessionMACData(id string, v []byte) []byte {
	d := make([]byte, 0, len(id)+len(v)+24)
	d = append(d, "cardless session v1\x00"...)
	d = append(d, id...)
	d = append(d, 0)
	return append(d, v...)
}

// sealV1 is the first byte of a sealed session value (schema 3): sealV1,
// the MAC's length in one byte, the MAC, then the record's bytes. The MAC
// is the one schema 2 kept beside the record (sessionMACData), so the
// migration moves it without computing a new one.
const sealV1 = 0x01

func sealSession(mac, v []byte) ([]byte, error) {
	if len(mac) == 0 || len(mac) > 255 {
		return nil, fmt.Errorf("store: session MAC of %d bytes", len(mac))
	}
	out := make([]byte, 0, 2+len(mac)+len(v))
	out = append(out, sealV1, byte(len(mac)))
	out = append(out, mac...)
	return append(out, v...), nil
}

// unsealSession splits a sealed value into its MAC and the record (both
// inside val); ok is false when val is not a sealed value.
func unsealSession(val []byte) (mac, v []byte, ok bool) {
	if len(val) < 2 || val[0] != sealV1 || val[1] == 0 || len(val) < 2+int(val[1]) {
		return nil, nil, false
	}
	n := 2 + int(val[1])
	return val[2:n], val[n:], true
}

// PutSession stores (or replaces) the opaque session record v under id.
// A store with a journal key needs Options.JournalAuth
// (ErrJournalKeyRequired).
func (tx *Tx) PutSession(id string, v []byte) error {
	if id == "" || id[0] == 0 { // schema 1 and 2 nest buckets named with a NUL first
		return fmt.Errorf("store: put session: %w: bad id", ErrInvalid)
	}
	b, err := tx.bucket(bucketSessions)
	if err != nil {
		return err
	}
	if !tx.db.keyed {
		return b.Put([]byte(id), v)
	}
	auth := tx.db.opts.JournalAuth
	if auth == nil {
		return fmt.Errorf("store: put session %q: %w (open the store with Options.JournalAuth)", id, ErrJournalKeyRequired)
	}
	// keyed with a key: Open made the file schema 3.
	mac, err := auth.JournalMAC(sessionMACData(id, v))
	if err != nil {
		return fmt.Errorf("store: session %q: MAC: %w", id, err)
	}
	sealed, err := sealSession(mac, v)
	if err != nil {
		return fmt.Errorf("store: session %q: %w", id, err)
	}
	return b.Put([]byte(id), sealed)
}

// sessionRecord returns the record of session id stored as val (inside
// val), its MAC checked when the store has a journal key. A keyed store
// opened without the key (tools) reads its records unchecked, as its
// journal.
func (tx *Tx) sessionRecord(b *bolt.Bucket, id string, val []byte) ([]byte, error) {
	var stored []byte
	switch {
	case tx.db.schema >= schemaSealed:
		mac, v, ok := unsealSession(val)
		if !ok {
			return nil, fmt.Errorf("store: session %q: %w: no MAC (edited in the file, or written before session records were authenticated)", id, ErrSessionTampered)
		}
		stored, val = mac, v
	case tx.db.keyed: // schema 2, opened without the key (with it, Open migrated it)
		if mb := b.Bucket(sessionMACs); mb != nil {
			stored = mb.Get([]byte(id))
		}
	}
	auth := tx.db.opts.JournalAuth
	if auth == nil {
		return val, nil
	}
	if stored == nil {
		return nil, fmt.Errorf("store: session %q: %w: no MAC (edited in the file, or written before session records were authenticated)", id, ErrSessionTampered)
	}
	mac, err := auth.JournalMAC(sessionMACData(id, val))
	if err != nil {
		return nil, fmt.Errorf("store: session %q: MAC: %w", id, err)
	}
	if !hmac.Equal(mac, stored) {
		return nil, fmt.Errorf("store: session %q: %w: the record was changed outside the ATM", id, ErrSessionTampered)
	}
	return val, nil
}

// GetSession returns a copy of the session record, or ErrNotFound, or
// ErrSessionTampered.
func (tx *Tx) GetSession(id string) ([]byte, error) {
	b, err := tx.bucket(bucketSessions)
	if err != nil {
		return nil, err
	}
	v := b.Get([]byte(id))
	if v == nil || id == "" || id[0] == 0 {
		return nil, fmt.Errorf("store: session %q: %w", id, ErrNotFound)
	}
	if v, err = tx.sessionRecord(b, id, v); err != nil {
		return nil, err
	}
	return clone(v), nil
}

// ForEachSession calls fn for every session in id order. v is a copy. A
// record that does not verify stops the iteration with ErrSessionTampered;
// an error from fn stops it too and is returned.
func (tx *Tx) ForEachSession(fn func(id string, v []byte) error) error {
	b, err := tx.bucket(bucketSessions)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error {
		if v == nil { // a nested bucket: schema 1 and 2's MACs and index
			return nil
		}
		v, err := tx.sessionRecord(b, string(k), v)
		if err != nil {
			return err
		}
		return fn(string(k), clone(v))
	})
}

// ---- Counters ----

// NextSTAN returns the next system trace audit number, "000001" to
// "999999", wrapping back to "000001". The last value is persisted.
func (tx *Tx) NextSTAN() (string, error) {
	b, err := tx.bucket(bucketMeta)
	if err != nil {
		return "", err
	}
	cur, err := readU64(b.Get(keySTAN))
	if err != nil {
		return "", fmt.Errorf("store: stan: %w", err)
	}
	next := cur%999999 + 1
	if err := b.Put(keySTAN, u64(next)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", next), nil
}

// LastSTAN returns the last STAN NextSTAN allocated ("000000" before the
// first), which the ATM reports to the host at sign-on (wire.Anchor).
func (tx *Tx) LastSTAN() (string, error) {
	b, err := tx.bucket(bucketMeta)
	if err != nil {
		return "", err
	}
	cur, err := readU64(b.Get(keySTAN))
	if err != nil {
		return "", fmt.Errorf("store: stan: %w", err)
	}
	return fmt.Sprintf("%06d", cur), nil
}

// Counter returns the named counter's value (0 if never set).
func (tx *Tx) Counter(name string) (int64, error) {
	v, _, err := tx.getInt(bucketCounters, name)
	return v, err
}

// AddCounter adds delta to the named counter and returns the new value.
// Overflow is refused.
func (tx *Tx) AddCounter(name string, delta int64) (int64, error) {
	if name == "" {
		return 0, fmt.Errorf("store: add counter: %w: empty name", ErrInvalid)
	}
	return tx.addInt(bucketCounters, name, delta, false)
}

// getInt returns the integer record name of bucket (0 if absent) and the
// bucket, for a caller that updates it.
func (tx *Tx) getInt(bucket []byte, name string) (int64, *bolt.Bucket, error) {
	b, err := tx.bucket(bucket)
	if err != nil {
		return 0, nil, err
	}
	v, err := readU64(b.Get([]byte(name)))
	if err != nil {
		return 0, nil, fmt.Errorf("store: %s %q: %w", bucket, name, err)
	}
	return int64(v), b, nil
}

func (tx *Tx) addInt(bucket []byte, name string, delta int64, nonNegative bool) (int64, error) {
	cur, b, err := tx.getInt(bucket, name)
	if err != nil {
		return 0, err
	}
	next := cur + delta
	if (delta > 0 && next < cur) || (delta < 0 && next > cur) {
		return 0, fmt.Errorf("store: %s %q: %w: overflow adding %d to %d", bucket, name, ErrInvalid, delta, cur)
	}
	if nonNegative && next < 0 {
		return 0, fmt.Errorf("store: %s %q: %w: adding %d to %d goes negative", bucket, name, ErrInvalid, delta, cur)
	}
	if err := b.Put([]byte(name), u64(uint64(next))); err != nil {
		return 0, err
	}
	return next, nil
}

// ---- Daily totals ----

func checkDay(day string) error {
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return fmt.Errorf("store: daily total: %w: day %q is not YYYY-MM-DD", ErrInvalid, day)
	}
	return nil
}

// AddDailyTotal adds amount (minor units; may be negative for a reversal)
// to the total of day ("YYYY-MM-DD") and returns the new total. A total
// never goes below zero.
func (tx *Tx) AddDailyTotal(day string, amount int64) (int64, error) {
	if err := checkDay(day); err != nil {
		return 0, err
	}
	return tx.addInt(bucketDaily, day, amount, true)
}

// DailyTotal returns the total of day (0 if nothing was added).
func (tx *Tx) DailyTotal(day string) (int64, error) {
	if err := checkDay(day); err != nil {
		return 0, err
	}
	v, _, err := tx.getInt(bucketDaily, day)
	return v, err
}

// ---- Cassette counters ----

// UnitCounters are the counters of one cash unit (cassette). Amounts are
// note counts except Denomination (minor units per note).
type UnitCounters struct {
	UnitID       string
	Denomination int64
	Currency     string
	Loaded       int64
	Dispensed    int64
	Rejected     int64
	Retracted    int64
	Remaining    int64
}

// PutUnitCounters stores (or replaces) the counters of u.UnitID.
func (tx *Tx) PutUnitCounters(u UnitCounters) error {
	if u.UnitID == "" {
		return fmt.Errorf("store: put unit counters: %w: empty unit id", ErrInvalid)
	}
	b, err := tx.bucket(bucketUnits)
	if err != nil {
		return err
	}
	v, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return b.Put([]byte(u.UnitID), v)
}

// UnitCounters returns every unit's counters ordered by UnitID.
func (tx *Tx) UnitCounters() ([]UnitCounters, error) {
	b, err := tx.bucket(bucketUnits)
	if err != nil {
		return nil, err
	}
	var out []UnitCounters
	err = b.ForEach(func(k, v []byte) error {
		var u UnitCounters
		if err := json.Unmarshal(v, &u); err != nil {
			return fmt.Errorf("store: unit %q: %w: %w", k, ErrCorrupt, err)
		}
		out = append(out, u)
		return nil
	})
	return out, err
}

// ---- Nonces ----

// UseNonce registers nonce as used. It returns ErrNonceUsed if the nonce
// was ever registered before; registrations are never removed.
func (tx *Tx) UseNonce(nonce string) error {
	if nonce == "" {
		return fmt.Errorf("store: use nonce: %w: empty nonce", ErrInvalid)
	}
	b, err := tx.bucket(bucketNonces)
	if err != nil {
		return err
	}
	if b.Get([]byte(nonce)) != nil {
		// The nonce itself is not echoed: it is session-sensitive.
		return fmt.Errorf("store: use nonce: %w", ErrNonceUsed)
	}
	return b.Put([]byte(nonce), u64(uint64(tx.db.now().UnixNano())))
}
