package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// GenesisHash is the PrevHash of the first journal entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Entry is one electronic journal record. Seq, Time, PrevHash and Hash are
// assigned by AppendJournal; values passed in are ignored.
type Entry struct {
	Seq       uint64
	Time      time.Time
	Kind      string
	SessionID string
	Text      string
	Data      map[string]string `json:",omitempty"`
	PrevHash  string
	Hash      string
}

// JournalError reports where and why the journal's hash chain failed.
type JournalError struct {
	Seq    uint64 // the first sequence number found at fault (0: the head record)
	Reason string
}

func (e *JournalError) Error() string {
	return fmt.Sprintf("store: journal broken at seq %d: %s", e.Seq, e.Reason)
}

// Unwrap returns ErrJournalBroken.
func (e *JournalError) Unwrap() error { return ErrJournalBroken }

// entryHash is SHA-256 over an unambiguous (length-prefixed) encoding of
// every field except Hash.
func entryHash(e *Entry) string {
	h := sha256.New()
	var num [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(num[:], uint64(len(s)))
		h.Write(num[:])
		h.Write([]byte(s))
	}
	field("cardless-atm-journal-v1")
	binary.BigEndian.PutUint64(num[:], e.Seq)
	h.Write(num[:])
	field(e.Time.UTC().Format(time.RFC3339Nano))
	field(e.Kind)
	field(e.SessionID)
	field(e.Text)
	keys := slices.Sorted(maps.Keys(e.Data))
	binary.BigEndian.PutUint64(num[:], uint64(len(keys)))
	h.Write(num[:])
	for _, k := range keys {
		field(k)
		field(e.Data[k])
	}
	field(e.PrevHash)
	return hex.EncodeToString(h.Sum(nil))
}

// JournalSeq returns the sequence number of the newest journal entry (0
// for an empty journal): what the ATM reports to the host at sign-on, so
// that a store put back to an older copy is noticed (docs/protocol.md §5).
func (tx *Tx) JournalSeq() (uint64, error) {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return 0, err
	}
	seq, _, err := journalHead(meta)
	return seq, err
}

func journalHead(meta *bolt.Bucket) (uint64, string, error) {
	seq, err := readU64(meta.Get(keyJournalSeq))
	if err != nil {
		return 0, "", err
	}
	hash := string(meta.Get(keyJournalHash))
	if seq == 0 {
		hash = GenesisHash
	}
	return seq, hash, nil
}

// journalHeadDomain separates head MACs from any other use of the key.
const journalHeadDomain = "cardless-atm-journal-head-v1"

// headMACInput is the unambiguous encoding the head MAC covers: the
// length-prefixed domain string, the head sequence number and the
// length-prefixed head hash.
func headMACInput(seq uint64, hash string) []byte {
	b := make([]byte, 0, 8+len(journalHeadDomain)+8+8+len(hash))
	b = binary.BigEndian.AppendUint64(b, uint64(len(journalHeadDomain)))
	b = append(b, journalHeadDomain...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(len(hash)))
	return append(b, hash...)
}

func headMAC(auth JournalAuthenticator, seq uint64, hash string) ([]byte, error) {
	mac, err := auth.JournalMAC(headMACInput(seq, hash))
	if err != nil {
		return nil, fmt.Errorf("store: journal head MAC: %w", err)
	}
	if len(mac) == 0 {
		return nil, errors.New("store: journal head MAC: the authenticator returned an empty MAC")
	}
	return mac, nil
}

// putHeadMAC records the MAC of the head (seq, hash) in the meta bucket.
func putHeadMAC(meta *bolt.Bucket, auth JournalAuthenticator, seq uint64, hash string) error {
	mac, err := headMAC(auth, seq, hash)
	if err != nil {
		return err
	}
	return meta.Put(keyJournalMAC, mac)
}

// checkHeadMAC verifies the recorded head MAC against the head (seq, hash):
// a *JournalError (Seq 0) when it is missing or does not verify, another
// error when the MAC cannot be computed.
func checkHeadMAC(meta *bolt.Bucket, auth JournalAuthenticator, seq uint64, hash string) error {
	stored := meta.Get(keyJournalMAC)
	if len(stored) == 0 {
		return &JournalError{Seq: 0, Reason: "journal head not authenticated (no head MAC recorded)"}
	}
	want, err := headMAC(auth, seq, hash)
	if err != nil {
		return err
	}
	if !hmac.Equal(stored, want) {
		return &JournalError{Seq: 0, Reason: "journal head MAC does not verify (journal or head rewritten, or the wrong journal key)"}
	}
	return nil
}

// AppendJournal appends e to the journal, chaining it to the previous entry,
// and returns it as stored. Kind must not be empty.
//
// With Options.JournalAuth the current head MAC must verify first (so an
// append never signs a head someone else wrote; failure is a *JournalError)
// and the MAC of the new head is written in the same transaction. On a
// schema-2 store opened without JournalAuth it fails with
// ErrJournalKeyRequired.
func (tx *Tx) AppendJournal(e Entry) (Entry, error) {
	if e.Kind == "" {
		return Entry{}, fmt.Errorf("store: append journal: %w: empty kind", ErrInvalid)
	}
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return Entry{}, err
	}
	jb, err := tx.bucket(bucketJournal)
	if err != nil {
		return Entry{}, err
	}
	seq, prev, err := journalHead(meta)
	if err != nil {
		return Entry{}, fmt.Errorf("store: journal head: %w", err)
	}
	auth := tx.db.opts.JournalAuth
	switch {
	case auth != nil:
		if err := checkHeadMAC(meta, auth, seq, prev); err != nil {
			return Entry{}, err
		}
	case tx.db.keyed:
		return Entry{}, fmt.Errorf("store: append journal: %w (open the store with Options.JournalAuth)", ErrJournalKeyRequired)
	}
	e.Seq = seq + 1
	if jb.Get(u64(e.Seq)) != nil {
		return Entry{}, &JournalError{Seq: e.Seq, Reason: "an entry already exists after the recorded head"}
	}
	e.Time = tx.db.now().UTC().Round(0)
	if len(e.Data) > 0 {
		e.Data = maps.Clone(e.Data)
	} else {
		e.Data = nil
	}
	e.PrevHash = prev
	e.Hash = entryHash(&e)
	v, err := json.Marshal(&e)
	if err != nil {
		return Entry{}, err
	}
	jb.FillPercent = appendFill
	if err := jb.Put(u64(e.Seq), v); err != nil {
		return Entry{}, err
	}
	if err := meta.Put(keyJournalSeq, u64(e.Seq)); err != nil {
		return Entry{}, err
	}
	if err := meta.Put(keyJournalHash, []byte(e.Hash)); err != nil {
		return Entry{}, err
	}
	if auth != nil {
		if err := putHeadMAC(meta, auth, e.Seq, e.Hash); err != nil {
			return Entry{}, err
		}
	}
	return e, nil
}

func decodeEntry(k, v []byte) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(v, &e); err != nil {
		seq := uint64(0)
		if len(k) == 8 {
			seq = binary.BigEndian.Uint64(k)
		}
		return Entry{}, &JournalError{Seq: seq, Reason: "undecodable entry: " + err.Error()}
	}
	return e, nil
}

// JournalTail returns the last n entries, oldest first. Reaching back
// before the part of the journal Open checked (Options.DeferFileCheck)
// fails with ErrFileUnchecked until DB.CheckFile has passed.
func (tx *Tx) JournalTail(n int) ([]Entry, error) {
	jb, err := tx.bucket(bucketJournal)
	if err != nil {
		return nil, err
	}
	var out []Entry
	c := jb.Cursor()
	for k, v := c.Last(); k != nil && len(out) < n; {
		e, err := decodeEntry(k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		if len(out) == n {
			break
		}
		// The entry before this one (entries are numbered without gaps).
		if len(k) == 8 {
			if err := tx.db.journalReadable(binary.BigEndian.Uint64(k) - 1); err != nil {
				return nil, err
			}
		}
		k, v = c.Prev()
	}
	slices.Reverse(out)
	return out, nil
}

// journalFrom returns the journal bucket for a read of the entries from
// seq on (ErrFileUnchecked: see Options.DeferFileCheck).
func (tx *Tx) journalFrom(seq uint64) (*bolt.Bucket, error) {
	if err := tx.db.journalReadable(seq); err != nil {
		return nil, err
	}
	return tx.bucket(bucketJournal)
}

// JournalRange calls fn for every entry with Seq >= fromSeq, in order. An
// error from fn stops the iteration and is returned. Entries before the
// part of the journal Open checked (Options.DeferFileCheck) give
// ErrFileUnchecked until DB.CheckFile has passed.
func (tx *Tx) JournalRange(fromSeq uint64, fn func(Entry) error) error {
	jb, err := tx.journalFrom(fromSeq)
	if err != nil {
		return err
	}
	c := jb.Cursor()
	for k, v := c.Seek(u64(fromSeq)); k != nil; k, v = c.Next() {
		e, err := decodeEntry(k, v)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// VerifyJournal checks the whole chain: sequence numbers start at 1 and are
// contiguous, every stored key matches its entry, every entry's hash is
// correct and links to its predecessor, and the last entry is the head
// recorded in the meta bucket (so removing the newest entries is detected).
// It returns a *JournalError wrapping ErrJournalBroken on the first fault.
//
// The chain alone is unkeyed: it proves the journal was not edited by
// anything short of a deliberate rewrite of every later entry and the head
// record. With Options.JournalAuth the head MAC must also be present and
// verify (Seq 0 in the *JournalError otherwise); since the head hash commits
// to every entry through the chain, that authenticates the whole journal
// against anyone without the key, including someone who rewrites the file
// and recomputes every hash. A DB opened without JournalAuth checks the
// chain only, even on a schema-2 file (tools without the key can still
// check it). An error computing the MAC (the key is missing, the module is
// closed) is returned as it is, not as a broken journal.
//
// What the MAC cannot show is freshness: a rollback of the whole file to an
// older genuine copy (or to a genuine empty store) verifies, and so does
// cutting off the newest entries and restoring an earlier head with its
// genuine MAC (from a backup, or from a freed bbolt page of the same file).
// Detecting that needs an anchor outside the ATM, such as the host's record
// of the terminal's last STAN and its totals, compared with the journal's.
func (db *DB) VerifyJournal() error {
	return db.View(func(tx *Tx) error { return tx.VerifyJournal() })
}

// VerifyJournal is DB.VerifyJournal inside an existing transaction.
func (tx *Tx) VerifyJournal() error {
	if err := tx.checkCheckpoint(); err != nil {
		return err
	}
	b, err := tx.base()
	if err != nil {
		return err
	}
	_, err = tx.verifyFrom(b)
	return err
}

// verifyFrom verifies the chain from the entry after from (whose hash is
// from.Hash) to the head, the head record and its MAC, and returns the
// head.
func (tx *Tx) verifyFrom(from Checkpoint) (Checkpoint, error) {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return Checkpoint{}, err
	}
	jb, err := tx.journalFrom(from.Seq + 1)
	if err != nil {
		return Checkpoint{}, err
	}
	headSeq, headHash, err := journalHead(meta)
	if err != nil {
		return Checkpoint{}, &JournalError{Seq: 0, Reason: "head record: " + err.Error()}
	}
	want := from.Seq + 1
	prev := from.Hash
	c := jb.Cursor()
	k, v := c.Seek(u64(want))
	if from.Seq == 0 {
		k, v = c.First()
	}
	for ; k != nil; k, v = c.Next() {
		if len(k) != 8 {
			return Checkpoint{}, &JournalError{Seq: want, Reason: fmt.Sprintf("malformed key %x", k)}
		}
		keySeq := binary.BigEndian.Uint64(k)
		if keySeq != want {
			if keySeq > want {
				return Checkpoint{}, &JournalError{Seq: want, Reason: fmt.Sprintf("entry missing (next stored entry is %d)", keySeq)}
			}
			return Checkpoint{}, &JournalError{Seq: keySeq, Reason: "unexpected sequence number"}
		}
		e, err := decodeEntry(k, v)
		if err != nil {
			return Checkpoint{}, err
		}
		if err := checkEntry(&e, keySeq, prev); err != nil {
			return Checkpoint{}, err
		}
		prev = e.Hash
		want++
	}
	last := want - 1
	if last != headSeq {
		if last < headSeq {
			return Checkpoint{}, &JournalError{Seq: last + 1, Reason: fmt.Sprintf("journal ends at %d but head record says %d (entries removed)", last, headSeq)}
		}
		return Checkpoint{}, &JournalError{Seq: headSeq + 1, Reason: fmt.Sprintf("entries beyond the head record %d", headSeq)}
	}
	if prev != headHash {
		return Checkpoint{}, &JournalError{Seq: last, Reason: "last entry's hash differs from the head record"}
	}
	if auth := tx.db.opts.JournalAuth; auth != nil {
		if err := checkHeadMAC(meta, auth, headSeq, headHash); err != nil {
			return Checkpoint{}, err
		}
	}
	return Checkpoint{Seq: headSeq, Hash: headHash}, nil
}

// checkEntry checks one decoded entry stored under seq, whose predecessor
// has hash prev.
func checkEntry(e *Entry, seq uint64, prev string) error {
	if e.Seq != seq {
		return &JournalError{Seq: seq, Reason: fmt.Sprintf("entry stored under seq %d claims seq %d (reordered?)", seq, e.Seq)}
	}
	if e.PrevHash != prev {
		return &JournalError{Seq: seq, Reason: "previous-hash link does not match the preceding entry"}
	}
	if got := entryHash(e); got != e.Hash {
		return &JournalError{Seq: seq, Reason: "hash mismatch (entry edited)"}
	}
	return nil
}
