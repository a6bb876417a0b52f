package store

import (
	"crypto/hmac"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The journal's base is the last entry moved out of the live store
// (exported first, then pruned after the retention period): the first
// entry kept links to its hash. It is recorded, with a MAC under the
// journal key, like the checkpoint; full verifications start from it
// instead of the genesis, so the chain still verifies across the cut, and
// an exported segment ending at the base links to what is kept.
var keyJournalBase = []byte("journal_base")

const baseDomain = "cardless-atm-journal-base-v1"

func baseMACInput(b Checkpoint) []byte {
	v := make([]byte, 0, 8+len(baseDomain)+8+8+len(b.Hash))
	v = binary.BigEndian.AppendUint64(v, uint64(len(baseDomain)))
	v = append(v, baseDomain...)
	v = binary.BigEndian.AppendUint64(v, b.Seq)
	v = binary.BigEndian.AppendUint64(v, uint64(len(b.Hash)))
	return append(v, b.Hash...)
}

// base returns the journal's base (the genesis when nothing was pruned),
// its MAC checked when the store has the journal key. A tool without the
// key takes the recorded base as it is (it cannot check the MACs either).
func (tx *Tx) base() (Checkpoint, error) {
	genesis := Checkpoint{Hash: GenesisHash}
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return genesis, err
	}
	v := meta.Get(keyJournalBase)
	if v == nil {
		return genesis, nil
	}
	if len(v) < 8+64+1 {
		return genesis, &JournalError{Seq: 0, Reason: "journal base record malformed"}
	}
	b := Checkpoint{Seq: binary.BigEndian.Uint64(v), Hash: string(v[8 : 8+64])}
	if auth := tx.db.opts.JournalAuth; auth != nil {
		want, err := auth.JournalMAC(baseMACInput(b))
		if err != nil {
			return genesis, fmt.Errorf("store: journal base MAC: %w", err)
		}
		if !hmac.Equal(v[8+64:], want) {
			return genesis, &JournalError{Seq: b.Seq, Reason: "journal base MAC does not verify (rewritten, or the wrong journal key)"}
		}
	}
	return b, nil
}

// JournalBase returns the last entry moved out of the live journal (Seq 0:
// none).
func (db *DB) JournalBase() (b Checkpoint, err error) {
	err = db.View(func(tx *Tx) (err error) { b, err = tx.base(); return err })
	return b, err
}

// PruneJournal moves entries up to and including through out of the live
// journal (the caller has exported them), in transactions of at most
// chunk entries, each deleting its entries and advancing the base in one
// commit: a crash leaves a consistent journal that starts later. Only
// entries before the verified checkpoint may go (the checkpoint's own
// entry stays), so nothing unverified is ever dropped. It returns the new
// base.
func (db *DB) PruneJournal(through uint64, chunk int) (Checkpoint, error) {
	auth := db.opts.JournalAuth
	if auth == nil {
		return Checkpoint{}, fmt.Errorf("store: pruning the journal: %w", ErrJournalKeyRequired)
	}
	if chunk <= 0 {
		chunk = 10000
	}
	var b Checkpoint
	for {
		done := false
		err := db.UpdateLabeled("journal-prune", func(tx *Tx) error {
			var err error
			if b, err = tx.base(); err != nil {
				return err
			}
			cp, err := tx.checkpoint()
			if err != nil {
				return err
			}
			if through >= cp.Seq {
				return fmt.Errorf("store: cannot prune the journal through %d: only entries before the verified checkpoint (%d) may go", through, cp.Seq)
			}
			if b.Seq >= through {
				done = true
				return nil
			}
			jb, err := tx.bucket(bucketJournal)
			if err != nil {
				return err
			}
			last := min(b.Seq+uint64(chunk), through)
			for seq := b.Seq + 1; seq <= last; seq++ {
				e, err := tx.journalEntry(seq)
				if err != nil {
					return err
				}
				if err := checkEntry(&e, seq, b.Hash); err != nil {
					return err // never prune what does not verify
				}
				if err := jb.Delete(u64(seq)); err != nil {
					return err
				}
				b = Checkpoint{Seq: seq, Hash: e.Hash}
			}
			meta, err := tx.bucket(bucketMeta)
			if err != nil {
				return err
			}
			return putBase(meta, auth, b)
		})
		if err != nil || done {
			return b, err
		}
	}
}

func putBase(meta *bolt.Bucket, auth JournalAuthenticator, b Checkpoint) error {
	mac, err := auth.JournalMAC(baseMACInput(b))
	if err != nil {
		return fmt.Errorf("store: journal base MAC: %w", err)
	}
	v := make([]byte, 0, 8+len(b.Hash)+len(mac))
	v = binary.BigEndian.AppendUint64(v, b.Seq)
	v = append(append(v, b.Hash...), mac...)
	return meta.Put(keyJournalBase, v)
}
