package store

import (
	"context"
	"crypto/hmac"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Checkpoint is a journal position: the sequence number of an entry and
// its hash. The store keeps one, authenticated under the journal key,
// saying "the chain up to here was verified": start-up verifies only what
// follows it (VerifyJournalSince), so it takes the same time whatever the
// journal's age. The full chain is verified on demand and in the
// background (VerifyJournal, VerifyJournalChunked), so a tampered old
// entry is still found.
type Checkpoint struct {
	Seq  uint64
	Hash string
}

var keyJournalCheckpoint = []byte("journal_checkpoint")

// checkpointDomain separates checkpoint MACs from head MACs.
const checkpointDomain = "cardless-atm-journal-checkpoint-v1"

func checkpointMACInput(cp Checkpoint) []byte {
	b := make([]byte, 0, 8+len(checkpointDomain)+8+8+len(cp.Hash))
	b = binary.BigEndian.AppendUint64(b, uint64(len(checkpointDomain)))
	b = append(b, checkpointDomain...)
	b = binary.BigEndian.AppendUint64(b, cp.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(len(cp.Hash)))
	return append(b, cp.Hash...)
}

// readCheckpoint returns the stored checkpoint and its MAC (ok false when
// there is none).
func readCheckpoint(meta *bolt.Bucket) (cp Checkpoint, mac []byte, ok bool, err error) {
	v := meta.Get(keyJournalCheckpoint)
	if v == nil {
		return Checkpoint{}, nil, false, nil
	}
	if len(v) < 8+64+1 {
		return Checkpoint{}, nil, false, &JournalError{Seq: 0, Reason: "checkpoint record malformed"}
	}
	return Checkpoint{Seq: binary.BigEndian.Uint64(v), Hash: string(v[8 : 8+64])}, append([]byte(nil), v[8+64:]...), true, nil
}

// checkCheckpoint verifies the stored checkpoint, if any: its MAC, and
// that the entry it names is stored with that hash. Without JournalAuth
// it is ignored (tools without the key verify the whole chain).
func (tx *Tx) checkCheckpoint() error {
	_, err := tx.checkpoint()
	return err
}

// checkpoint returns the verified checkpoint (the genesis when there is
// none, or no journal key).
func (tx *Tx) checkpoint() (Checkpoint, error) {
	genesis := Checkpoint{Hash: GenesisHash}
	auth := tx.db.opts.JournalAuth
	if auth == nil {
		return genesis, nil
	}
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return genesis, err
	}
	cp, mac, ok, err := readCheckpoint(meta)
	if err != nil || !ok {
		return genesis, err
	}
	want, err := auth.JournalMAC(checkpointMACInput(cp))
	if err != nil {
		return genesis, fmt.Errorf("store: journal checkpoint MAC: %w", err)
	}
	if !hmac.Equal(mac, want) {
		return genesis, &JournalError{Seq: cp.Seq, Reason: "journal checkpoint MAC does not verify (rewritten, or the wrong journal key)"}
	}
	jb, err := tx.bucket(bucketJournal)
	if err != nil {
		return genesis, err
	}
	k := u64(cp.Seq)
	v := jb.Get(k)
	if v == nil {
		return genesis, &JournalError{Seq: cp.Seq, Reason: "the checkpoint's entry is missing"}
	}
	e, err := decodeEntry(k, v)
	if err != nil {
		return genesis, err
	}
	if e.Seq != cp.Seq || e.Hash != cp.Hash || entryHash(&e) != e.Hash {
		return genesis, &JournalError{Seq: cp.Seq, Reason: "the checkpoint's entry differs from the one verified (entry edited)"}
	}
	return cp, nil
}

// VerifyJournalSince verifies the journal from the stored checkpoint to
// the head (the whole chain when there is no checkpoint or no journal
// key): the checkpoint's MAC and entry, every entry after it, the head
// record and its MAC. It returns the head, which SetCheckpoint can record.
// Entries before the checkpoint are not read: VerifyJournal checks them.
func (db *DB) VerifyJournalSince() (head Checkpoint, err error) {
	err = db.View(func(tx *Tx) error {
		cp, err := tx.checkpoint()
		if err != nil {
			return err
		}
		head, err = tx.verifyFrom(cp)
		return err
	})
	return head, err
}

// SetCheckpoint records cp, a position returned by a verification, as
// the journal's checkpoint, authenticated under the journal key; a
// checkpoint never moves back. It needs Options.JournalAuth.
func (db *DB) SetCheckpoint(cp Checkpoint) error {
	auth := db.opts.JournalAuth
	if auth == nil {
		return fmt.Errorf("store: journal checkpoint: %w", ErrJournalKeyRequired)
	}
	if cp.Seq == 0 {
		return nil
	}
	mac, err := auth.JournalMAC(checkpointMACInput(cp))
	if err != nil {
		return fmt.Errorf("store: journal checkpoint MAC: %w", err)
	}
	return db.UpdateLabeled("checkpoint", func(tx *Tx) error {
		cur, err := tx.checkpoint()
		if err != nil {
			return err
		}
		if cp.Seq <= cur.Seq {
			return nil
		}
		jb, err := tx.bucket(bucketJournal)
		if err != nil {
			return err
		}
		k := u64(cp.Seq)
		e, err := decodeEntry(k, jb.Get(k))
		if err != nil || e.Hash != cp.Hash {
			return &JournalError{Seq: cp.Seq, Reason: "checkpoint names an entry that is not stored with that hash"}
		}
		meta, err := tx.bucket(bucketMeta)
		if err != nil {
			return err
		}
		v := make([]byte, 0, 8+len(cp.Hash)+len(mac))
		v = binary.BigEndian.AppendUint64(v, cp.Seq)
		v = append(append(v, cp.Hash...), mac...)
		return meta.Put(keyJournalCheckpoint, v)
	})
}

// VerifyJournalChunked verifies the whole chain like VerifyJournal, in
// read transactions of at most chunk entries each, calling between(seq)
// after each (a background verification pauses there, and its error stops
// the verification): a long verification never holds one transaction
// open. It returns the head it verified up to.
func (db *DB) VerifyJournalChunked(ctx context.Context, chunk int, between func(seq uint64) error) (Checkpoint, error) {
	if chunk <= 0 {
		chunk = 10000
	}
	at := Checkpoint{Hash: GenesisHash}
	if err := db.View(func(tx *Tx) error {
		if err := tx.checkCheckpoint(); err != nil {
			return err
		}
		var err error
		at, err = tx.base() // entries before it were moved out
		return err
	}); err != nil {
		return at, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return at, err
		}
		var done bool
		err := db.View(func(tx *Tx) error {
			jb, err := tx.journalFrom(at.Seq + 1)
			if err != nil {
				return err
			}
			c := jb.Cursor()
			k, v := c.Seek(u64(at.Seq + 1))
			for n := 0; n < chunk; n++ {
				if k == nil {
					done = true
					return nil
				}
				seq := binary.BigEndian.Uint64(k)
				if len(k) != 8 || seq != at.Seq+1 {
					return &JournalError{Seq: at.Seq + 1, Reason: fmt.Sprintf("entry missing or out of order (next stored key %x)", k)}
				}
				e, err := decodeEntry(k, v)
				if err != nil {
					return err
				}
				if err := checkEntry(&e, seq, at.Hash); err != nil {
					return err
				}
				at = Checkpoint{Seq: seq, Hash: e.Hash}
				k, v = c.Next()
			}
			return nil
		})
		if err != nil {
			return at, err
		}
		if done {
			break
		}
		if between != nil {
			if err := between(at.Seq); err != nil {
				return at, err
			}
		}
	}
	// The head: entries appended meanwhile are verified from where the
	// chunks stopped, in the same transaction as the head record.
	var head Checkpoint
	err := db.View(func(tx *Tx) error {
		var err error
		head, err = tx.verifyFrom(at)
		return err
	})
	return head, err
}

// Checkpoint returns the journal's verified checkpoint (the genesis when
// there is none or the store has no journal key).
func (db *DB) Checkpoint() (cp Checkpoint, err error) {
	err = db.View(func(tx *Tx) error {
		cp, err = tx.checkpoint()
		return err
	})
	return cp, err
}
