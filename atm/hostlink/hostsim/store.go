package hostsim

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names of the host's bbolt file.
var (
	bucketCustomers = []byte("customers") // customer ID -> account (JSON)
	bucketAuths     = []byte("auths")     // terminal/STAN -> authorization (JSON)
	bucketDaily     = []byte("daily")     // customer/day -> amount used (JSON int)
	bucketTotals    = []byte("totals")    // day/terminal -> Totals (JSON)
	bucketAnchors   = []byte("anchors")   // terminal -> anchorRecord (JSON)
	bucketBindings  = []byte("bindings")  // bindKey(customer, device) -> bindingRecord (JSON)
	bucketBindCodes = []byte("bindcodes") // bindKey(customer, device) -> pendingCode (JSON)
	bucketBindSent  = []byte("bindsent")  // customer/day -> codes sent that day (JSON int)
)

// ErrUnknownCustomer is returned by Balance for a customer ID the host does
// not know.
var ErrUnknownCustomer = errors.New("hostsim: unknown customer")

// maxPINTries is the number of consecutive wrong PINs after which the host
// answers 75 (PIN tries exceeded) until the account is reseeded.
const maxPINTries = 3

// account is a customer's stored record. The PIN is kept only as a salted
// SHA-256 hash.
type account struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	PINSalt     []byte `json:"pinSalt"`
	PINHash     []byte `json:"pinHash"`
	Balance     int64  `json:"balance"`
	DailyLimit  int64  `json:"dailyLimit"`
	PerTxnLimit int64  `json:"perTxnLimit"`
	Blocked     bool   `json:"blocked"`
	BadPINs     int    `json:"badPins"`
}

func hashPIN(salt []byte, pin string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(pin))
	return h.Sum(nil)
}

func (a *account) pinMatches(pin string) bool {
	return subtle.ConstantTimeCompare(hashPIN(a.PINSalt, pin), a.PINHash) == 1
}

// authRecord is what the host remembers of one 0200, keyed by terminal and
// STAN: the answer it gave (so a duplicate gets the same answer) and what
// happened to it since.
type authRecord struct {
	Terminal   string    `json:"terminal"`
	STAN       string    `json:"stan"`
	CustomerID string    `json:"customerId,omitempty"`
	Amount     int64     `json:"amount"`
	Currency   string    `json:"currency"`
	Nonce      string    `json:"nonce,omitempty"`
	Day        string    `json:"day"`
	Time       time.Time `json:"time"`
	// Answer given to the 0200.
	ResponseCode string `json:"responseCode"`
	AuthCode     string `json:"authCode,omitempty"`
	RRN          string `json:"rrn,omitempty"`
	Token        string `json:"token,omitempty"`
	// Debited is true when the account was debited (approved).
	Debited bool `json:"debited"`
	// Completed is set by the first 0220 for this authorization.
	Completed bool `json:"completed"`
	// Reversed is set by the first 0420; Credited is what it gave back.
	Reversed bool  `json:"reversed"`
	Credited int64 `json:"credited"`
	// Tombstone: a 0420 arrived before (or without) its 0200. A 0200 that
	// arrives later with this terminal and STAN is declined.
	Tombstone bool `json:"tombstone,omitempty"`
}

// Totals are one terminal's settlement totals for one day (the day of the
// authorization, UTC). Amounts are in minor units.
type Totals struct {
	Count    int   `json:"count"`    // approved authorizations
	Approved int64 `json:"approved"` // sum of approved amounts
	Reversed int64 `json:"reversed"` // sum credited back by reversals
	Net      int64 `json:"net"`      // Approved - Reversed
}

// authKey identifies an authorization as ISO 8583 does: terminal, STAN and
// the transmission date-time of the original (both are in field 90 of its
// advice or reversal). The STAN alone wraps after 999999 transactions.
func authKey(terminal, stan, transmitDT string) []byte {
	return []byte(terminal + "/" + stan + "/" + transmitDT)
}

func dayKey(id, day string) []byte { return []byte(id + "/" + day) }

func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		// The key is not quoted: in the customer and daily buckets it is
		// the customer's ID, and this error reaches the log.
		return false, fmt.Errorf("hostsim: corrupt record in bucket: %w", err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

// openDB opens (creating if needed) the host's bbolt file, seeds the
// customers when the customer bucket is new and the bound phones when the
// bindings bucket is new (a database from before binding gets them too).
func openDB(path string, customers []Customer, devices []BoundDevice, now time.Time) (*bolt.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("hostsim: database directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, openErr(path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketAuths, bucketDaily, bucketTotals, bucketAnchors, bucketBindCodes, bucketBindSent} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if err := seedBindings(tx, devices, now); err != nil {
			return err
		}
		if tx.Bucket(bucketCustomers) != nil {
			return nil // seeded on first start only
		}
		b, err := tx.CreateBucket(bucketCustomers)
		if err != nil {
			return err
		}
		for _, c := range customers {
			salt := make([]byte, 16)
			if _, err := rand.Read(salt); err != nil {
				return err
			}
			a := account{ID: c.ID, Name: c.Name, PINSalt: salt, PINHash: hashPIN(salt, c.PIN),
				Balance: c.Balance, DailyLimit: c.DailyLimit, PerTxnLimit: c.PerTxnLimit, Blocked: c.Blocked}
			if err := putJSON(b, []byte(c.ID), &a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("hostsim: initialise %s: %w", path, err)
	}
	return db, nil
}

// openReadOnly opens the host database at path read-only, for the
// offline readers below.
func openReadOnly(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return nil, openErr(path, err)
	}
	return db, nil
}

// ReadTotals returns the totals of terminalID for day (YYYY-MM-DD) from the
// host database at path, opened read-only (the server must not be running
// on it, as bbolt locks the file).
func ReadTotals(path, day, terminalID string) (Totals, error) {
	db, err := openReadOnly(path)
	if err != nil {
		return Totals{}, err
	}
	defer db.Close()
	return readTotals(db, day, terminalID)
}

// ReadAllTotals returns every terminal's totals for day, keyed by terminal.
func ReadAllTotals(path, day string) (map[string]Totals, error) {
	db, err := openReadOnly(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	out := map[string]Totals{}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTotals)
		if b == nil {
			return nil
		}
		prefix := []byte(day + "/")
		c := b.Cursor()
		for k, v := c.Seek(prefix); len(k) > len(prefix) && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var t Totals
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("hostsim: corrupt totals %q: %w", k, err)
			}
			out[string(k[len(prefix):])] = t
		}
		return nil
	})
	return out, err
}

func readTotals(db *bolt.DB, day, terminalID string) (Totals, error) {
	var t Totals
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTotals)
		if b == nil {
			return nil
		}
		_, err := getJSON(b, dayKey(day, terminalID), &t)
		return err
	})
	return t, err
}

func addTotals(tx *bolt.Tx, day, terminal string, count int, approved, reversed int64) error {
	b := tx.Bucket(bucketTotals)
	var t Totals
	if _, err := getJSON(b, dayKey(day, terminal), &t); err != nil {
		return err
	}
	t.Count += count
	t.Approved += approved
	t.Reversed += reversed
	t.Net = t.Approved - t.Reversed
	return putJSON(b, dayKey(day, terminal), &t)
}

// addDaily adds delta (negative for a credit) to a customer's amount
// withdrawn on day, never going below zero.
func addDaily(tx *bolt.Tx, customer, day string, delta int64) error {
	b := tx.Bucket(bucketDaily)
	var used int64
	if _, err := getJSON(b, dayKey(customer, day), &used); err != nil {
		return err
	}
	used += delta
	if used < 0 {
		used = 0
	}
	return putJSON(b, dayKey(customer, day), used)
}

func dailyUsed(tx *bolt.Tx, customer, day string) (int64, error) {
	var used int64
	_, err := getJSON(tx.Bucket(bucketDaily), dayKey(customer, day), &used)
	return used, err
}

// openErr explains bbolt's lock timeout: another process (a running
// hostsim) holds the file.
func openErr(path string, err error) error {
	if errors.Is(err, bolt.ErrTimeout) {
		return fmt.Errorf("hostsim: open %s: the file is locked by another process (a running hostsim?); stop it first: %w", path, err)
	}
	return fmt.Errorf("hostsim: open %s: %w", path, err)
}
