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
// reads. Schema 2 is schema 1 plus the journal head MAC: a store created or
// opened with Options.JournalAuth is schema 2; a store created without it
// stays schema 1 (unkeyed journal), as it always was.
const SchemaVersion uint64 = 2

const (
	schemaUnkeyed uint64 = 1 // journal chained with SHA-256 only
	schemaKeyed   uint64 = 2 // plus the head MAC (keyJournalMAC)
)

// Bucket and key names (schema versions 1 and 2).
var (
	bucketMeta       = []byte("meta")
	bucketSessions   = []byte("sessions")
	bucketJournal    = []byte("journal")
	bucketQueue      = []byte("queue")
	bucketQueueKeys  = []byte("queue_keys")
	bucketQueueAcked = []byte("queue_acked")
	bucketCounters   = []byte("counters")
	bucketUnits      = []byte("units")
	bucketDaily      = []byte("daily")
	bucketNonces     = []byte("nonces")

	keyMagic       = []byte("magic")
	keySchema      = []byte("schema")
	keyJournalSeq  = []byte("journal_head_seq")
	keyJournalHash = []byte("journal_head_hash")
	keyJournalMAC  = []byte("journal_head_mac") // schema 2
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
// With Options.JournalAuth a new file is created as schema 2 with a head MAC
// over the empty journal. An existing schema-1 file is upgraded to schema 2
// (same rule: head MAC over the empty journal) only if its journal is
// empty; one holding journal entries is refused with
// ErrJournalUnauthenticated and left as it was, because signing it now
// would vouch for entries nobody can check any more. Without JournalAuth a
// schema-2 file opens: VerifyJournal then checks the unkeyed chain only, and
// AppendJournal fails with ErrJournalKeyRequired.
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
	if keyed && schema < schemaKeyed {
		// A pristine schema-1 file (checkJournalAuth): start
		// authenticating it, in one transaction.
		if err := bdb.Update(func(btx *bolt.Tx) error { return initJournalAuth(btx.Bucket(bucketMeta), opts.JournalAuth) }); err != nil {
			_ = bdb.Close()
			return nil, fmt.Errorf("store: open %s: start journal authentication: %w", path, err)
		}
		schema = schemaKeyed
	}
	db := &DB{bolt: bdb, path: path, opts: opts, keyed: schema >= schemaKeyed, journalFrom: journalFrom}
	db.fileChecked = journalFrom == 0
	return db, nil
}

// checkJournalAuth returns the file's schema version and, when the caller
// has a journal key (keyed), refuses a schema-1 file that is not pristine
// (ErrJournalUnauthenticated). It only reads.
//
// Pristine means exactly what create writes: no record in any bucket but
// the magic and schema records in meta. Only such a file is upgraded to
// schema 2, so an attacker who deletes a keyed journal, its head records
// and MAC and sets the schema back to 1 gets a refusal, not a freshly
// signed empty journal beside the live sessions, queue and counters.
func checkJournalAuth(path string, btx *bolt.Tx, keyed bool) (uint64, error) {
	meta := btx.Bucket(bucketMeta)
	schema := binary.BigEndian.Uint64(meta.Get(keySchema)) // length checked by checkIdentity
	if !keyed || schema >= schemaKeyed {
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
// the magic and schema records in meta, every other bucket empty.
func pristine(btx *bolt.Tx) bool {
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

// initJournalAuth makes an empty-journal store schema 2: it records the
// schema and the head MAC over the empty journal (seq 0, GenesisHash).
func initJournalAuth(meta *bolt.Bucket, auth JournalAuthenticator) error {
	if err := putHeadMAC(meta, auth, 0, GenesisHash); err != nil {
		return err
	}
	return meta.Put(keySchema, u64(schemaKeyed))
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
