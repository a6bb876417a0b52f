package store

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// The open-session index: the IDs of the sessions the caller has marked
// open (MarkSession), so that what a start or an alarm check needs (the
// sessions not finished, the sessions in doubt) is read without reading
// every session the terminal ever had. It is created by IndexSessions
// from a full scan the caller makes once; a store from before it has none
// (OpenSessions reports it), and MarkSession leaves such a store alone.
// With a journal key, a MAC over the sorted IDs (key sessionIndexMAC of
// the index, which sorts before every hex ID) is kept with every change,
// so an open session cannot be hidden from recovery by deleting its ID
// from the file: OpenSessions then fails with ErrSessionTampered.
//
// Schema 3 keeps it in the top-level bucket bucketOpenSessions: a few IDs,
// so bbolt keeps it inline in the root page every commit writes anyway.
// Schemas 1 and 2 nest it in the sessions bucket (sessionIndex, a name no
// session ID can have), where a change also rewrote the path to the
// sessions tree's first leaf; Open moves it with the schema-2 migration.

var (
	sessionIndex    = []byte("\x00open") // schema 1 and 2: nested in the sessions bucket
	sessionIndexMAC = []byte("\x00mac")
)

// sessionIndexBucket returns the open-session index (nil: none yet).
func (tx *Tx) sessionIndexBucket() (*bolt.Bucket, error) {
	if tx.db.schema >= schemaSealed {
		return tx.tx.Bucket(bucketOpenSessions), nil
	}
	b, err := tx.bucket(bucketSessions)
	if err != nil {
		return nil, err
	}
	return b.Bucket(sessionIndex), nil
}

// newSessionIndex replaces the open-session index with an empty one.
func (tx *Tx) newSessionIndex() (*bolt.Bucket, error) {
	parent := bucketCreator(tx.tx)
	name := bucketOpenSessions
	if tx.db.schema < schemaSealed {
		b, err := tx.bucket(bucketSessions)
		if err != nil {
			return nil, err
		}
		parent, name = b, sessionIndex
	}
	if parent.Bucket(name) != nil {
		if err := parent.DeleteBucket(name); err != nil {
			return nil, err
		}
	}
	return parent.CreateBucket(name)
}

// bucketCreator is what a bolt.Tx and a bolt.Bucket have in common.
type bucketCreator interface {
	Bucket(name []byte) *bolt.Bucket
	CreateBucket(name []byte) (*bolt.Bucket, error)
	DeleteBucket(name []byte) error
}

// ErrNoSessionIndex: the store has no open-session index yet (it was
// written before the index existed): scan every session once and give the
// open ones to IndexSessions.
var ErrNoSessionIndex = errors.New("store: no open-session index")

func sessionIndexData(ids [][]byte) []byte {
	d := []byte("cardless open sessions v1\x00")
	for _, id := range ids {
		d = append(append(d, id...), 0)
	}
	return d
}

// indexIDs returns the sorted IDs of index ix (bolt iterates in key order;
// the MAC key sorts before every hex ID and is skipped).
func indexIDs(ix *bolt.Bucket) [][]byte {
	var ids [][]byte
	c := ix.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if !slices.Equal(k, sessionIndexMAC) {
			ids = append(ids, k)
		}
	}
	return ids
}

// sealIndex records the MAC of index ix's IDs (on a store with a journal
// key, which a write then needs: ErrJournalKeyRequired).
func (tx *Tx) sealIndex(ix *bolt.Bucket) error {
	if !tx.db.keyed {
		return nil
	}
	auth := tx.db.opts.JournalAuth
	if auth == nil {
		return fmt.Errorf("store: open-session index: %w (open the store with Options.JournalAuth)", ErrJournalKeyRequired)
	}
	mac, err := auth.JournalMAC(sessionIndexData(indexIDs(ix)))
	if err != nil {
		return fmt.Errorf("store: open-session index: MAC: %w", err)
	}
	return ix.Put(sessionIndexMAC, mac)
}

// IndexSessions creates (or replaces) the open-session index with exactly
// the sessions open.
func (tx *Tx) IndexSessions(open []string) error {
	ix, err := tx.newSessionIndex()
	if err != nil {
		return err
	}
	for _, id := range open {
		if id == "" || id[0] == 0 {
			return fmt.Errorf("store: index sessions: %w: bad id", ErrInvalid)
		}
		if err := ix.Put([]byte(id), []byte{}); err != nil {
			return err
		}
	}
	return tx.sealIndex(ix)
}

// MarkSession records whether session id is open (in the index) or not;
// on a store without an index it does nothing (IndexSessions builds it).
func (tx *Tx) MarkSession(id string, open bool) error {
	ix, err := tx.sessionIndexBucket()
	if err != nil || ix == nil {
		return err
	}
	if id == "" || id[0] == 0 {
		return fmt.Errorf("store: mark session: %w: bad id", ErrInvalid)
	}
	have := ix.Get([]byte(id)) != nil
	switch {
	case open && !have:
		err = ix.Put([]byte(id), []byte{})
	case !open && have:
		err = ix.Delete([]byte(id))
	default:
		return nil // unchanged: no MAC to make
	}
	if err != nil {
		return err
	}
	return tx.sealIndex(ix)
}

// OpenSessions returns the IDs in the open-session index, in order, after
// checking its MAC; ErrNoSessionIndex when the store has none.
func (tx *Tx) OpenSessions() ([]string, error) {
	ix, err := tx.sessionIndexBucket()
	if err != nil {
		return nil, err
	}
	if ix == nil {
		return nil, ErrNoSessionIndex
	}
	ids := indexIDs(ix)
	if auth := tx.db.opts.JournalAuth; auth != nil {
		mac, err := auth.JournalMAC(sessionIndexData(ids))
		if err != nil {
			return nil, fmt.Errorf("store: open-session index: MAC: %w", err)
		}
		if stored := ix.Get(sessionIndexMAC); stored == nil || !hmac.Equal(mac, stored) {
			return nil, fmt.Errorf("store: open-session index: %w: changed outside the ATM", ErrSessionTampered)
		}
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out, nil
}

// VerifySessions checks every session record's MAC and the open-session
// index's, in one read transaction: the start reads only the open
// sessions, so an edit of a finished one is found here (the background
// check runs it with the whole journal, daily), not at the start.
func (db *DB) VerifySessions() (n int, err error) {
	err = db.View(func(tx *Tx) error {
		if err := tx.ForEachSession(func(string, []byte) error { n++; return nil }); err != nil {
			return err
		}
		if _, err := tx.OpenSessions(); err != nil && !errors.Is(err, ErrNoSessionIndex) {
			return err
		}
		return nil
	})
	return n, err
}
