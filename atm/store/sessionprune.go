package store

import (
	"fmt"
	"strings"
)

// Session records follow the journal out of the live store. A record is
// kept while the live journal still has an entry of its session, while
// the session is open (in the open-session index) and while a
// store-and-forward item of it is pending; otherwise everything about the
// session is in the exported journal, and its record only makes every
// start walk (and every backup read) a larger sessions tree.

// PruneSessions removes the records of the sessions that have no entry
// left in the live journal (after PruneJournal), are not open and have no
// pending queue item, in transactions of at most chunk records. Each
// record is verified before it goes (a record that does not verify stops
// the pruning with ErrSessionTampered and stays, with the rest, for
// investigation). It returns how many records it removed. It needs the
// journal key, as PruneJournal does, and reads the whole live journal, so
// it runs in the background after the file check (ErrFileUnchecked
// before).
func (db *DB) PruneSessions(chunk int) (int, error) {
	if db.opts.JournalAuth == nil {
		return 0, fmt.Errorf("store: pruning session records: %w", ErrJournalKeyRequired)
	}
	if chunk <= 0 {
		chunk = 5000
	}
	var candidates []string
	var head uint64
	err := db.View(func(tx *Tx) error {
		live, err := tx.liveSessions(0)
		if err != nil {
			return err
		}
		if head, err = tx.JournalSeq(); err != nil {
			return err
		}
		b, err := tx.bucket(bucketSessions)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v != nil && !live[string(k)] {
				candidates = append(candidates, string(k))
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	removed := 0
	for len(candidates) > 0 {
		n := min(chunk, len(candidates))
		batch := candidates[:n]
		candidates = candidates[n:]
		gone := 0 // counted once committed
		err := db.UpdateLabeled("session-prune", func(tx *Tx) error {
			// What changed since the scan: entries appended after it, a
			// session opened or queued since.
			live, err := tx.liveSessions(head + 1)
			if err != nil {
				return err
			}
			b, err := tx.bucket(bucketSessions)
			if err != nil {
				return err
			}
			for _, id := range batch {
				val := b.Get([]byte(id))
				if val == nil || live[id] {
					continue
				}
				if _, err := tx.sessionRecord(b, id, val); err != nil {
					return err // never remove what does not verify
				}
				if err := b.Delete([]byte(id)); err != nil {
					return err
				}
				gone++
			}
			return nil
		})
		if err != nil {
			return removed, err
		}
		removed += gone
	}
	return removed, nil
}

// liveSessions returns the sessions a record must be kept for: those with
// a journal entry at fromSeq or later, the open ones and those with a
// pending queue item (keyed "ID:kind").
func (tx *Tx) liveSessions(fromSeq uint64) (map[string]bool, error) {
	live := map[string]bool{}
	base, err := tx.base()
	if err != nil {
		return nil, err
	}
	err = tx.JournalRange(max(fromSeq, base.Seq+1), func(e Entry) error {
		if e.SessionID != "" {
			live[e.SessionID] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	open, err := tx.OpenSessions()
	if err != nil {
		return nil, err
	}
	for _, id := range open {
		live[id] = true
	}
	items, err := tx.QueueItems()
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		id, _, _ := strings.Cut(it.Key, ":")
		live[id] = true
	}
	return live, nil
}
