package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Magic identifies a bbolt file as a cardless ATM store.
const Magic = "cardless-atm-store"

// SchemaVersion is the newest layout version this package writes and
// reads. Schema 1: the journal chained with SHA-256 only, for a store
// without a journal key (Options.JournalAuth). Schema 2 added the journal
// head MAC and the session records' MACs, kept in a bucket nested in the
// sessions bucket, beside the open-session index. Schema 3, which every
// store with a journal key is now, keeps each session record's MAC in the
// record's own value and the open-session index in a top-level bucket:
// three B+trees fewer on a commit's path (docs/performance.md). Open
// migrates a schema-2 file to schema 3 when given the key (migrate.go); a
// store created without a key stays schema 1, as it always was. A program
// of an earlier version refuses a schema-3 file with ErrSchemaVersion.
const SchemaVersion uint64 = 3

const (
	schemaUnkeyed uint64 = 1 // journal chained with SHA-256 only
	schemaKeyedV2 uint64 = 2 // plus the head MAC; session MACs in a nested bucket (migrated at Open)
	schemaSealed  uint64 = 3 // session MACs sealed in the records' values, top-level open-session index
)

// Bucket and key names. bucketOpenSessions is schema 3's; every other
// name is the same in all three schemas.
var (
	bucketMeta         = []byte("meta")
	bucketSessions     = []byte("sessions")
	bucketJournal      = []byte("journal")
	bucketQueue        = []byte("queue")
	bucketQueueKeys    = []byte("queue_keys")
	bucketQueueAcked   = []byte("queue_acked")
	bucketCounters     = []byte("counters")
	bucketUnits        = []byte("units")
	bucketDaily        = []byte("daily")
	bucketNonces       = []byte("nonces")
	bucketOpenSessions = []byte("open_sessions") // schema 3, created with the first index

	keyMagic       = []byte("magic")
	keySchema      = []byte("schema")
	keyJournalSeq  = []byte("journal_head_seq")
	keyJournalHash = []byte("journal_head_hash")
	keyJournalMAC  = []byte("journal_head_mac") // schema 2 and 3
	keySTAN        = []byte("stan")

	allBuckets = [][]byte{bucketMeta, bucketSessions, bucketJournal, bucketQueue,
		bucketQueueKeys, bucketQueueAcked, bucketCounters, bucketUnits,
		bucketDaily, bucketNonces}
)

// Open opens the store at path, creating it with the current schema if the
// file does not exist. An existing file is validated before it is opened for
// writing: it must be an intact bbolt file (meta pages, size, bbolt's
// consistency check), carry our Magic and a schema version not newer than
// SchemaVersion. A file that fails is refused (ErrCorrupt, ErrForeign,
// ErrSchemaVersion) and left exactly as it was: Open never resets, repairs
// or recreates an existing file. An existing empty file is refused too.
//
// With Options.JournalAuth a new file is created as schema 3 with a head MAC
// over the empty journal. An existing schema-1 file is upgraded to schema 3
// (same rule: head MAC over the empty journal) only if it is pristine (see
// checkJournalAuth); one holding anything else is refused with
// ErrJournalUnauthenticated and left as it was, because signing it now
// would vouch for contents nobody can check any more. An existing schema-2
// file is migrated to schema 3 (migrateSchema2), in one transaction, after
// every session record's MAC and the open-session index's have been
// verified: one that does not verify stops the Open with
// ErrSessionTampered and the file is left exactly as it was. Without
// JournalAuth a schema-2 or schema-3 file opens as it is (nothing can be
// verified or migrated without the key): VerifyJournal then checks the
// unkeyed chain only, and appends and session writes fail with
// ErrJournalKeyRequired.
func Open(path string, opts Options) (*DB, error) {
	timeout := opts.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		timeout = 0 // bbolt: wait forever
	}

	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := create(path, opts.JournalAuth); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	case fi.IsDir():
		return nil, fmt.Errorf("store: open %s: is a directory", path)
	}

	var sc walkScope
	if opts.DeferFileCheck && opts.JournalAuth != nil {
		sc.journalTail = OpenJournalTail
	}
	journalFrom, err := preflight(path, sc)
	if err != nil {
		return nil, err
	}
	keyed := opts.JournalAuth != nil
	// bbolt's own check reads every page: only when the walk did too.
	if err := validate(path, timeout, keyed, journalFrom == 0); err != nil {
		return nil, err
	}

	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// Re-check identity under the exclusive lock (cheap; the full check ran above).
	var schema uint64
	if err := bdb.View(func(btx *bolt.Tx) (err error) {
		if err := checkIdentity(path, btx); err != nil {
			return err
		}
		schema, err = checkJournalAuth(path, btx, keyed)
		return err
	}); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	var migrated uint64
	switch {
	case keyed && schema < schemaKeyedV2:
		// A pristine schema-1 file (checkJournalAuth): start
		// authenticating it, in one transaction.
		if err := bdb.Update(func(btx *bolt.Tx) error { return initJournalAuth(btx.Bucket(bucketMeta), opts.JournalAuth) }); err != nil {
			_ = bdb.Close()
			return nil, fmt.Errorf("store: open %s: start journal authentication: %w", path, err)
		}
		migrated, schema = schema, schemaSealed
	case keyed && schema == schemaKeyedV2:
		if err := migrateSchema2(bdb, opts.JournalAuth); err != nil {
			_ = bdb.Close()
			return nil, fmt.Errorf("store: open %s: migrating schema %d to %d: %w", path, schemaKeyedV2, schemaSealed, err)
		}
		migrated, schema = schema, schemaSealed
	}
	db := &DB{bolt: bdb, path: path, opts: opts, schema: schema, keyed: schema >= schemaKeyedV2,
		migratedFrom: migrated, journalFrom: journalFrom}
	db.fileChecked = journalFrom == 0
	return db, nil
}

// MigratedFrom returns the schema the file had before Open upgraded it
// to SchemaVersion (a pristine schema-1 file given a journal key, or a
// schema-2 file migrated), 0 when Open changed nothing.
func (db *DB) MigratedFrom() uint64 { return db.migratedFrom }

// checkJournalAuth returns the file's schema version and, when the caller
// has a journal key (keyed), refuses a schema-1 file that is not pristine
// (ErrJournalUnauthenticated). It only reads.
//
// Pristine means exactly what create writes: no record in any bucket but
// the magic and schema records in meta, and no open-session index. Only
// such a file is upgraded to schema 3, so an attacker who deletes a keyed journal, its head records
// and MAC and sets the schema back to 1 gets a refusal, not a freshly
// signed empty journal beside the live sessions, queue and counters.
func checkJournalAuth(path string, btx *bolt.Tx, keyed bool) (uint64, error) {
	meta := btx.Bucket(bucketMeta)
	schema := binary.BigEndian.Uint64(meta.Get(keySchema)) // length checked by checkIdentity
	if !keyed || schema >= schemaKeyedV2 {
		return schema, nil
	}
	if !pristine(btx) {
		seq, _ := readU64(meta.Get(keyJournalSeq))
		return 0, fmt.Errorf("store: open %s: %w: the file (journal head at seq %d) was written without a journal key (schema %d) "+
			"and is not signed now, since that would vouch for contents nobody can check any more; "+
			"keep the file for audit and start a new store (development: delete the data directory, e.g. make sim-clean)",
			path, ErrJournalUnauthenticated, seq, schema)
	}
	return schema, nil
}

// pristine reports whether the file holds nothing but what create writes:
// the magic and schema records in meta, every other bucket empty, no
// schema-3 open-session index.
func pristine(btx *bolt.Tx) bool {
	if btx.Bucket(bucketOpenSessions) != nil {
		return false
	}
	for _, name := range allBuckets {
		b := btx.Bucket(name)
		if b == nil {
			return false
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if !bytes.Equal(name, bucketMeta) || (!bytes.Equal(k, keyMagic) && !bytes.Equal(k, keySchema)) {
				return false
			}
		}
	}
	return true
}

// initJournalAuth makes an empty store schema 3: it records the schema
// and the head MAC over the empty journal (seq 0, GenesisHash). An empty
// store has no session records to seal and no open-session index.
func initJournalAuth(meta *bolt.Bucket, auth JournalAuthenticator) error {
	if err := putHeadMAC(meta, auth, 0, GenesisHash); err != nil {
		return err
	}
	return meta.Put(keySchema, u64(schemaSealed))
}

// create writes a fresh store beside path and links it into place, so a
// crash never leaves a half-initialised file at path.
func create(path string, auth JournalAuthenticator) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".init-*")
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	tmpPath := tmp.Name()
	_ = tmp.Close()
	_ = os.Remove(tmpPath) // bbolt initialises a file only when it creates or finds it empty
	defer os.Remove(tmpPath)

	bdb, err := bolt.Open(tmpPath, 0o600, &bolt.Options{Timeout: DefaultTimeout})
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	err = bdb.Update(func(btx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := btx.CreateBucket(name); err != nil {
				return err
			}
		}
		meta := btx.Bucket(bucketMeta)
		if err := meta.Put(keyMagic, []byte(Magic)); err != nil {
			return err
		}
		if err := meta.Put(keySchema, u64(schemaUnkeyed)); err != nil {
			return err
		}
		if auth != nil {
			return initJournalAuth(meta, auth)
		}
		return nil
	})
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	// Link fails if path appeared meanwhile: never clobber an existing file.
	if err := os.Link(tmpPath, path); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// bbolt on-disk meta page layout (bbolt file format version 2): a 16-byte
// page header followed by the meta fields, in native byte order.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16
	metaSize       = 64
	metaChecksumAt = 56

	noFreelist       = ^uint64(0)
	freelistPageFlag = 0x10
)

type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64
	txid     uint64
}

func parseMeta(buf []byte) (boltMeta, error) {
	if len(buf) < pageHeaderSize+metaSize {
		return boltMeta{}, bolt.ErrInvalid
	}
	m := buf[pageHeaderSize : pageHeaderSize+metaSize]
	ne := binary.NativeEndian
	if ne.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, bolt.ErrInvalid
	}
	if ne.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, bolt.ErrVersionMismatch
	}
	h := fnv.New64a()
	h.Write(m[:metaChecksumAt])
	if h.Sum64() != ne.Uint64(m[metaChecksumAt:]) {
		return boltMeta{}, bolt.ErrChecksum
	}
	return boltMeta{pageSize: ne.Uint32(m[8:]), root: ne.Uint64(m[16:]), freelist: ne.Uint64(m[32:]), pgid: ne.Uint64(m[40:]), txid: ne.Uint64(m[48:])}, nil
}

// preflight reads the meta pages with plain file I/O, checks that the file
// is long enough for the pages they reference and verifies the page
// structure (verifyStructure) within sc. bbolt memory-maps the file and
// would fault (SIGBUS) on a truncated one, so this runs first. It returns
// the first journal entry whose pages it read (0: it read the whole file).
func preflight(path string, sc walkScope) (journalFrom uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("store: open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("store: open %s: %w", path, err)
	}
	size := fi.Size()
	if size == 0 {
		return 0, fmt.Errorf("store: open %s: %w: file is empty (refusing to initialise an existing file)", path, ErrCorrupt)
	}
	read := func(off int64) []byte {
		buf := make([]byte, pageHeaderSize+metaSize)
		if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return nil
		}
		return buf
	}
	m0, err0 := parseMeta(read(0))
	var best boltMeta
	var firstErr error = err0
	if err0 == nil {
		best = m0
		if m1, err1 := parseMeta(read(int64(m0.pageSize))); err1 == nil && m1.txid > m0.txid {
			best = m1
		}
	} else {
		// Meta page 0 is damaged: look for meta page 1 at the possible page sizes, like bbolt does.
		for i := 0; i < 15; i++ {
			off := int64(1024) << i
			if off+pageHeaderSize+metaSize > size {
				break
			}
			if m1, err1 := parseMeta(read(off)); err1 == nil && int64(m1.pageSize) == off {
				best, firstErr = m1, nil
				break
			}
		}
	}
	if firstErr != nil {
		return 0, fmt.Errorf("store: open %s: %w: not a bbolt database or both meta pages damaged: %w", path, ErrCorrupt, firstErr)
	}
	if err := checkMetaSize(best, size); err != nil {
		return 0, fmt.Errorf("store: open %s: %w: %w", path, ErrCorrupt, err)
	}
	from, err := verifyStructure(f, best, sc, nil)
	if err != nil {
		return 0, fmt.Errorf("store: open %s: %w: %w: %w", path, ErrCorrupt, err, bolt.ErrInvalid)
	}
	return from, nil
}

// checkMetaSize checks a meta page's page size and that a file of size
// bytes holds every page it references.
func checkMetaSize(m boltMeta, size int64) error {
	if m.pageSize < 1024 || m.pageSize&(m.pageSize-1) != 0 {
		return fmt.Errorf("implausible page size %d: %w", m.pageSize, bolt.ErrInvalid)
	}
	need := int64(m.pgid) * int64(m.pageSize)
	if need < 2*int64(m.pageSize) || size < need {
		return fmt.Errorf("file is %d bytes but its meta page needs %d (truncated?): %w", size, need, bolt.ErrInvalid)
	}
	return nil
}

// validate opens the file read-only (no byte of it changes), checks identity,
// schema and (keyed) whether the journal may be authenticated and, with
// bboltCheck, runs bbolt's consistency check (Tx.Check: nothing else has
// the file open yet, so its comparison with the freelist in memory is
// sound). It runs after preflight, whose bounds-checked walk
// (verifyStructure) has already refused element offsets and page numbers
// that would make bbolt read past the file. Panics and memory faults
// raised by bbolt on damaged pages are still turned into ErrCorrupt.
func validate(path string, timeout time.Duration, keyed, bboltCheck bool) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: open %s: %w: bbolt failed reading the file: %v", path, ErrCorrupt, r)
		}
	}()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout,
		// Load (and so parse) the freelist here, where a panic is recovered,
		// not lazily inside tx.Check's goroutine.
		PreLoadFreelist: true})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return fmt.Errorf("store: open %s: file is locked by another process: %w", path, err)
		}
		return fmt.Errorf("store: open %s: %w: %w", path, ErrCorrupt, err)
	}
	defer bdb.Close()
	return bdb.View(func(btx *bolt.Tx) error {
		if err := checkIdentity(path, btx); err != nil {
			return err
		}
		if _, err := checkJournalAuth(path, btx, keyed); err != nil {
			return err
		}
		if !bboltCheck {
			return nil
		}
		var errs []error
		for cerr := range btx.Check() {
			if len(errs) < 5 {
				errs = append(errs, cerr)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("store: open %s: %w: bbolt consistency check: %w", path, ErrCorrupt, errors.Join(errs...))
		}
		return nil
	})
}

// checkIdentity verifies magic, schema version and the presence of every
// bucket this version uses. Other buckets are allowed: files written by
// earlier versions keep a "seqs" bucket nothing reads any more.
func checkIdentity(path string, btx *bolt.Tx) error {
	meta := btx.Bucket(bucketMeta)
	if meta == nil || !bytes.Equal(meta.Get(keyMagic), []byte(Magic)) {
		return fmt.Errorf("store: open %s: %w: no %q marker (refusing to use or overwrite it)", path, ErrForeign, Magic)
	}
	raw := meta.Get(keySchema)
	if len(raw) != 8 {
		return fmt.Errorf("store: open %s: %w: schema version record malformed", path, ErrCorrupt)
	}
	v := binary.BigEndian.Uint64(raw)
	if v > SchemaVersion {
		return fmt.Errorf("store: open %s: %w: file has schema %d, this program supports up to %d", path, ErrSchemaVersion, v, SchemaVersion)
	}
	if v == 0 {
		return fmt.Errorf("store: open %s: %w: schema version 0", path, ErrCorrupt)
	}
	for _, name := range allBuckets {
		if btx.Bucket(name) == nil {
			return fmt.Errorf("store: open %s: %w: bucket %q missing", path, ErrCorrupt, name)
		}
	}
	return nil
}
