// Package operators keeps the credentials of the people who may act on the
// ATM (settle a session in doubt, adopt cassette counts): an operator ID
// and a PIN or passphrase, stored only as a scrypt hash with a random salt
// per operator, never in clear. Repeated failures lock an operator out for
// a while. The file is JSON, mode 0600, replaced atomically on every
// change, so the failure counts survive a restart.
package operators

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"golang.org/x/crypto/scrypt"
)

// Lockout policy.
const (
	MaxFailures = 5                // consecutive failures before a lockout
	LockoutTime = 15 * time.Minute // how long a lockout lasts
	MinSecret   = 6                // shortest PIN or passphrase accepted
)

// scrypt cost: about 16 MB and a few tens of milliseconds per check.
const (
	scryptN = 1 << 14
	scryptR = 8
	scryptP = 1
	keyLen  = 32
)

var (
	// ErrBadCredentials: unknown operator or wrong secret (not told apart).
	ErrBadCredentials = errors.New("operators: operator ID or secret not accepted")
	// ErrLocked: too many failures; try again after LockoutTime.
	ErrLocked = errors.New("operators: operator locked out after repeated failures")
	// ErrNone: no operator has been set up (atmctl operator add).
	ErrNone = errors.New("operators: no operator is set up")
)

var validID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,16}$`)

type record struct {
	Salt        []byte    `json:"salt"`
	Hash        []byte    `json:"hash"`
	N           int       `json:"n"`
	R           int       `json:"r"`
	P           int       `json:"p"`
	Failures    int       `json:"failures,omitempty"`
	LockedUntil time.Time `json:"lockedUntil,omitzero"`
}

type fileData struct {
	Operators map[string]*record `json:"operators"`
}

// File is an operator credential file. It is safe for concurrent use.
type File struct {
	path string
	now  func() time.Time
	mu   sync.Mutex
	data fileData
}

// Open reads the file at path (a missing file is an empty set); now is
// the clock of lockouts (time.Now when nil).
func Open(path string, now func() time.Time) (*File, error) {
	if now == nil {
		now = time.Now
	}
	f := &File{path: path, now: now, data: fileData{Operators: map[string]*record{}}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return f, nil
	case err != nil:
		return nil, fmt.Errorf("operators: %w", err)
	}
	if err := json.Unmarshal(b, &f.data); err != nil {
		return nil, fmt.Errorf("operators: %s: %w", path, err)
	}
	if f.data.Operators == nil {
		f.data.Operators = map[string]*record{}
	}
	return f, nil
}

// Add sets (or replaces) the secret of operator id and clears its
// lockout.
func (f *File) Add(id, secret string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("operators: operator ID %q must be 1-16 letters, digits, '.', '_' or '-'", id)
	}
	if len(secret) < MinSecret {
		return fmt.Errorf("operators: the PIN or passphrase must have at least %d characters", MinSecret)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return err
	}
	hash, err := scrypt.Key([]byte(secret), salt, scryptN, scryptR, scryptP, keyLen)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data.Operators[id] = &record{Salt: salt, Hash: hash, N: scryptN, R: scryptR, P: scryptP}
	return f.save()
}

// Check verifies operator id's secret. ErrBadCredentials counts a failure
// (of that ID, when it exists); MaxFailures in a row lock it for
// LockoutTime (ErrLocked, even with the right secret). Success clears the
// count.
func (f *File) Check(id, secret string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.data.Operators) == 0 {
		return ErrNone
	}
	r := f.data.Operators[id]
	if r == nil {
		// Spend the same work as for a known ID, so timing does not
		// tell which IDs exist.
		_, _ = scrypt.Key([]byte(secret), make([]byte, 16), scryptN, scryptR, scryptP, keyLen)
		return ErrBadCredentials
	}
	now := f.now()
	if now.Before(r.LockedUntil) {
		return fmt.Errorf("%w until %s", ErrLocked, r.LockedUntil.UTC().Format(time.RFC3339))
	}
	got, err := scrypt.Key([]byte(secret), r.Salt, r.N, r.R, r.P, len(r.Hash))
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(got, r.Hash) == 1 {
		if r.Failures != 0 || !r.LockedUntil.IsZero() {
			r.Failures, r.LockedUntil = 0, time.Time{}
			if err := f.save(); err != nil {
				return err
			}
		}
		return nil
	}
	r.Failures++
	if r.Failures >= MaxFailures {
		r.Failures, r.LockedUntil = 0, now.Add(LockoutTime)
	}
	if err := f.save(); err != nil {
		return err
	}
	if !r.LockedUntil.IsZero() && now.Before(r.LockedUntil) {
		return fmt.Errorf("%w until %s", ErrLocked, r.LockedUntil.UTC().Format(time.RFC3339))
	}
	return ErrBadCredentials
}

// save writes the file atomically (a temporary file, then rename).
func (f *File) save() error {
	b, err := json.MarshalIndent(f.data, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".operators-*")
	if err != nil {
		return fmt.Errorf("operators: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.path)
}
