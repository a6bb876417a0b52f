package store

import (
	"encoding/binary"
	"encoding/json"
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

// PutSession stores (or replaces) the opaque session record v under id.
func (tx *Tx) PutSession(id string, v []byte) error {
	if id == "" {
		return fmt.Errorf("store: put session: %w: empty id", ErrInvalid)
	}
	b, err := tx.bucket(bucketSessions)
	if err != nil {
		return err
	}
	return b.Put([]byte(id), v)
}

// GetSession returns a copy of the session record, or ErrNotFound.
func (tx *Tx) GetSession(id string) ([]byte, error) {
	b, err := tx.bucket(bucketSessions)
	if err != nil {
		return nil, err
	}
	v := b.Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("store: session %q: %w", id, ErrNotFound)
	}
	return clone(v), nil
}

// ForEachSession calls fn for every session in id order. v is a copy.
// An error from fn stops the iteration and is returned.
func (tx *Tx) ForEachSession(fn func(id string, v []byte) error) error {
	b, err := tx.bucket(bucketSessions)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), clone(v)) })
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
