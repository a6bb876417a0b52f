package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// QueueItem is one store-and-forward message (an advice or a reversal)
// waiting for the host's acknowledgement.
type QueueItem struct {
	ID          uint64 // assigned by Enqueue, increasing: FIFO order
	Kind        string // e.g. "advice", "reversal"
	Key         string // idempotency key, e.g. session id + kind
	Payload     []byte
	Attempts    int
	NextAttempt time.Time
	Created     time.Time
	// AckedAt is zero while the item is pending. Enqueue sets it when it
	// returns an item for a key that was already acknowledged.
	AckedAt time.Time `json:",omitzero"`
	// Rejected is set while the host's last answer refused the item (it
	// stays queued; an operator and the bank must reconcile).
	Rejected bool `json:",omitempty"`
}

func decodeItem(v []byte) (QueueItem, error) {
	var it QueueItem
	if err := json.Unmarshal(v, &it); err != nil {
		return QueueItem{}, fmt.Errorf("store: queue item: %w: %w", ErrCorrupt, err)
	}
	return it, nil
}

// Enqueue adds a message under an idempotency key. If the key is already
// pending, the existing item is returned and nothing is added. If an item
// with that key was already acknowledged, that item is returned (AckedAt
// set, Payload nil) and nothing is added either: a key is delivered at most
// once per store. Kind and key must not be empty.
func (tx *Tx) Enqueue(kind, key string, payload []byte) (QueueItem, error) {
	if kind == "" || key == "" {
		return QueueItem{}, fmt.Errorf("store: enqueue: %w: empty kind or key", ErrInvalid)
	}
	q, err := tx.bucket(bucketQueue)
	if err != nil {
		return QueueItem{}, err
	}
	keys, err := tx.bucket(bucketQueueKeys)
	if err != nil {
		return QueueItem{}, err
	}
	if raw := keys.Get([]byte(key)); raw != nil {
		id, err := readU64(raw)
		if err != nil {
			return QueueItem{}, fmt.Errorf("store: queue key %q: %w", key, err)
		}
		if v := q.Get(u64(id)); v != nil {
			return decodeItem(v)
		}
		acked, err := tx.bucket(bucketQueueAcked)
		if err != nil {
			return QueueItem{}, err
		}
		if v := acked.Get(u64(id)); v != nil {
			return decodeItem(v)
		}
		return QueueItem{}, fmt.Errorf("store: queue key %q: %w: index points to missing item %d", key, ErrCorrupt, id)
	}
	id, err := q.NextSequence()
	if err != nil {
		return QueueItem{}, err
	}
	now := tx.db.now().UTC().Round(0)
	it := QueueItem{ID: id, Kind: kind, Key: key, Payload: clone(payload), NextAttempt: now, Created: now}
	if err := putItem(q, it); err != nil {
		return QueueItem{}, err
	}
	if err := keys.Put([]byte(key), u64(id)); err != nil {
		return QueueItem{}, err
	}
	return it, nil
}

func putItem(b *bolt.Bucket, it QueueItem) error {
	v, err := json.Marshal(it)
	if err != nil {
		return err
	}
	return b.Put(u64(it.ID), v)
}

// QueueItems returns the pending items, oldest (lowest ID) first.
func (tx *Tx) QueueItems() ([]QueueItem, error) {
	q, err := tx.bucket(bucketQueue)
	if err != nil {
		return nil, err
	}
	var out []QueueItem
	err = q.ForEach(func(_, v []byte) error {
		it, err := decodeItem(v)
		if err != nil {
			return err
		}
		out = append(out, it)
		return nil
	})
	return out, err
}

// QueueLen returns the number of pending items, as len(QueueItems()) but
// without decoding them: acknowledged items are not counted.
func (tx *Tx) QueueLen() (int, error) {
	q, err := tx.bucket(bucketQueue)
	if err != nil {
		return 0, err
	}
	n := 0
	err = q.ForEach(func(_, _ []byte) error {
		n++
		return nil
	})
	return n, err
}

// UpdateQueueItem records a delivery attempt: only Attempts, NextAttempt
// and Rejected are taken from it; ID selects the item. ErrNotFound if the
// item is not pending.
func (tx *Tx) UpdateQueueItem(it QueueItem) error {
	q, err := tx.bucket(bucketQueue)
	if err != nil {
		return err
	}
	v := q.Get(u64(it.ID))
	if v == nil {
		return fmt.Errorf("store: update queue item %d: %w", it.ID, ErrNotFound)
	}
	cur, err := decodeItem(v)
	if err != nil {
		return err
	}
	cur.Attempts = it.Attempts
	cur.NextAttempt = it.NextAttempt.UTC().Round(0)
	cur.Rejected = it.Rejected
	return putItem(q, cur)
}

// Ack removes a pending item after the host acknowledged it. Its key stays
// registered, so a later Enqueue of the same key does not send it again.
// Acking an already acknowledged item is a no-op; an unknown ID is ErrNotFound.
func (tx *Tx) Ack(id uint64) error {
	q, err := tx.bucket(bucketQueue)
	if err != nil {
		return err
	}
	acked, err := tx.bucket(bucketQueueAcked)
	if err != nil {
		return err
	}
	v := q.Get(u64(id))
	if v == nil {
		if acked.Get(u64(id)) != nil {
			return nil
		}
		return fmt.Errorf("store: ack queue item %d: %w", id, ErrNotFound)
	}
	it, err := decodeItem(v)
	if err != nil {
		return err
	}
	it.Payload = nil
	it.AckedAt = tx.db.now().UTC().Round(0)
	acked.FillPercent = appendFill // acknowledged in about the order enqueued
	if err := putItem(acked, it); err != nil {
		return err
	}
	return q.Delete(u64(id))
}
