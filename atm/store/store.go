package store

import (
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sentinel errors. Callers test them with errors.Is; the store always wraps
// them with context (path, key, sequence number).
var (
	// ErrNotFound: the session, queue item or counter record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrNonceUsed: the nonce has been registered before (nonces are single-use forever).
	ErrNonceUsed = errors.New("store: nonce already used")
	// ErrCorrupt: the file is not a bbolt database, is truncated or fails
	// bbolt's consistency check. The file is left untouched.
	ErrCorrupt = errors.New("store: database file is corrupt")
	// ErrForeign: the file is a valid bbolt database but not one of ours.
	ErrForeign = errors.New("store: database file belongs to another application")
	// ErrSchemaVersion: the file was written by a newer schema than this program knows.
	ErrSchemaVersion = errors.New("store: unsupported schema version")
	// ErrJournalBroken: the electronic journal's hash chain does not verify.
	// VerifyJournal returns a *JournalError wrapping it.
	ErrJournalBroken = errors.New("store: journal hash chain broken")
	// ErrInvalid: the caller passed an unusable argument (empty id, bad day...).
	ErrInvalid = errors.New("store: invalid argument")
	// ErrJournalUnauthenticated: Open was given Options.JournalAuth but the
	// file holds journal entries written before journal authentication
	// (schema 1). The store refuses to sign such a journal now, since that
	// would vouch for whatever it holds, including entries rewritten by
	// someone who stripped the head MAC. The file is left untouched.
	ErrJournalUnauthenticated = errors.New("store: journal predates journal authentication")
	// ErrJournalKeyRequired: an append to an authenticated journal (schema
	// 2 or 3), or a session record or open-session index written to such a
	// store, through a DB opened without Options.JournalAuth. Without the
	// key the new head, record or index cannot be authenticated, so nothing
	// is written.
	ErrJournalKeyRequired = errors.New("store: journal is authenticated and no journal key was given")
	// ErrFileUnchecked: the journal entries asked for lie in the part of
	// the file that Open left to the background check
	// (Options.DeferFileCheck), and DB.CheckFile has not passed yet.
	ErrFileUnchecked = errors.New("store: that part of the file has not been checked yet")
)

// JournalAuthenticator computes the MAC that authenticates the journal
// head. In the appliance it is HMAC-SHA256 under hsm.JournalKey, computed
// inside the security module; the store never sees the key. JournalMAC must
// be deterministic (the same data gives the same MAC) and safe for
// concurrent use.
type JournalAuthenticator interface {
	JournalMAC(data []byte) ([]byte, error)
}

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// Options configure Open. The zero value is usable.
type Options struct {
	// Timeout is how long Open waits for the exclusive file lock held by
	// another process. Zero means DefaultTimeout; negative means wait forever.
	Timeout time.Duration
	// Now is the clock used for journal and queue timestamps. Nil means time.Now.
	Now func() time.Time
	// AfterCommit, if set, is called after every successful Update or
	// UpdateLabeled with the label given to UpdateLabeled ("" for Update).
	// It runs after the bbolt commit (the data is on disk) and outside the
	// transaction; crash tests use it as a failure point.
	AfterCommit func(label string)
	// WriteFault, if set, is asked before every Update; an error it returns
	// fails the Update unwritten, as a full or failing disk would. It is
	// fault injection for tests; the appliance never sets it.
	WriteFault func(label string) error
	// JournalAuth, if set, authenticates the journal: every append also
	// stores, in the same transaction, a MAC over the new head, and
	// VerifyJournal requires it. Nil keeps the journal unkeyed. See Open for
	// how files without a head MAC are treated.
	JournalAuth JournalAuthenticator
	// DeferFileCheck makes Open check only what a start reads and leave
	// the rest of the file to DB.CheckFile, so that opening a large store
	// takes the same time whatever the journal's age. With JournalAuth,
	// Open then reads every page except the journal's older entries: those
	// before both the recorded checkpoint and the newest OpenJournalTail
	// entries (their page numbers are still checked, not their contents),
	// and it does not run bbolt's Tx.Check. Until CheckFile has passed,
	// reading those entries fails with ErrFileUnchecked, so bbolt never
	// reads a page nobody checked. Without JournalAuth (or when nothing
	// could be left out: no checkpoint, a short journal) Open checks the
	// whole file, as without the option.
	// See docs/performance.md for what runs at start and what after.
	DeferFileCheck bool
}

// appendFill is the page fill of buckets written in key order (the
// journal, acknowledged queue items). bbolt splits a page at half full by
// default, which suits keys inserted anywhere; a bucket that only grows at
// its end would keep every page half empty: twice the file, twice the
// pages to check. 1.0 fills each page before starting the next.
const appendFill = 1.0

// DB is the ATM's durable state: one bbolt file. It is safe for concurrent
// use; bbolt serialises writers and lets readers run concurrently.
type DB struct {
	bolt *bolt.DB
	path string
	opts Options
	// schema: the file's layout version (after Open's upgrade, if any).
	schema uint64
	// keyed: the file keeps a journal head MAC (schema 2 or 3). Appends
	// and session writes then need Options.JournalAuth.
	keyed bool
	// migratedFrom: the schema Open upgraded the file from (0: none).
	migratedFrom uint64
	// journalFrom: Open read the journal's pages from this entry on (0:
	// it read the whole file). Older entries are read only once CheckFile
	// has passed (journalReadable).
	journalFrom uint64

	fileMu      sync.Mutex
	fileChecked bool  // the whole file passed its check (at Open or CheckFile)
	fileErr     error // the last CheckFile failure, nil after a pass

	closeOnce sync.Once
	closeErr  error
}

// Tx is one bbolt transaction seen through the store's typed API. A Tx is
// only valid inside the function passed to Update or View; byte slices it
// returns are copies and stay valid afterwards.
type Tx struct {
	tx *bolt.Tx
	db *DB
}

// Path returns the database file path.
func (db *DB) Path() string { return db.path }

// Update runs fn in one read-write transaction. If fn returns an error the
// transaction is rolled back and nothing it wrote is kept; otherwise it is
// committed (and fsynced) before Update returns.
func (db *DB) Update(fn func(tx *Tx) error) error {
	return db.UpdateLabeled("", fn)
}

// UpdateLabeled is Update with a label passed to Options.AfterCommit after
// a successful commit.
func (db *DB) UpdateLabeled(label string, fn func(tx *Tx) error) error {
	if db.opts.WriteFault != nil {
		if err := db.opts.WriteFault(label); err != nil {
			return fmt.Errorf("store: write %q: %w", label, err)
		}
	}
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		return fn(&Tx{tx: btx, db: db})
	})
	if err != nil {
		return err
	}
	if db.opts.AfterCommit != nil {
		db.opts.AfterCommit(label)
	}
	return nil
}

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(tx *Tx) error) error {
	return db.bolt.View(func(btx *bolt.Tx) error {
		return fn(&Tx{tx: btx, db: db})
	})
}

// Close closes the file. Calling it more than once is harmless.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		if err := db.bolt.Close(); err != nil {
			db.closeErr = fmt.Errorf("store: close %s: %w", db.path, err)
		}
	})
	return db.closeErr
}

func (db *DB) now() time.Time {
	if db.opts.Now != nil {
		return db.opts.Now()
	}
	return time.Now()
}

// bucket returns a top-level bucket that Open guarantees exists.
func (tx *Tx) bucket(name []byte) (*bolt.Bucket, error) {
	b := tx.tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("%w: bucket %q missing", ErrCorrupt, name)
	}
	return b, nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

// ErrInconsistent: bbolt's consistency check (Check) found the file's
// pages inconsistent (a page freed twice, unreachable, or out of order).
var ErrInconsistent = errors.New("store: file is not consistent")

// Check runs bbolt's consistency check over the whole file in one read
// transaction (it reads every page: seconds for a large file) and returns
// ErrInconsistent wrapping the first problems found, or nil. bbolt's check
// compares the pages with the freelist in memory, which another
// transaction's commit changes under it: run Check only while nothing
// writes (tests, tools). CheckFile is the check for a store in use.
func (db *DB) Check() error {
	return db.bolt.View(func(btx *bolt.Tx) error {
		var errs []error
		for err := range btx.Check() {
			if len(errs) < 10 {
				errs = append(errs, err)
			}
		}
		if len(errs) == 0 {
			return nil
		}
		return fmt.Errorf("%w: %w", ErrInconsistent, errors.Join(errs...))
	})
}
