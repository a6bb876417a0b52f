package store

import (
	"bytes"
	"crypto/hmac"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The migration of a schema-2 file to schema 3, made by Open when it is
// given the journal key: every session record gets its MAC sealed into its
// own value (sealSession) and the open-session index moves out of the
// sessions bucket into bucketOpenSessions, so that a commit writes one
// B+tree for the sessions instead of three (docs/performance.md).
//
// It is one bbolt transaction: after a crash the file is schema 2 as it
// was, or schema 3 complete (TestMigrateCrash). Nothing unverified is
// carried over: every record's MAC and the index's MAC are checked under
// the key first, and one that does not verify (a record edited in the
// file, or without its MAC) stops the migration with ErrSessionTampered,
// nothing written. The MACs themselves are unchanged (the same data under
// the same key), so the migration computes one MAC per record, to verify
// it, as the background VerifySessions does.

// Failure points of the migration (FailpointEnv; builds with the tag
// failpoint only): FailpointMigrateSealed inside its transaction, every
// record rewritten and the schema set, just before the commit;
// FailpointMigrateCommitted right after the commit.
const (
	FailpointMigrateSealed    = "migrate-sealed"
	FailpointMigrateCommitted = "migrate-committed"
)

// migrateBatch is how many records one cursor pass reads and verifies
// before they are rewritten (bbolt's cursors do not survive a write to
// their bucket, so each pass seeks again).
const migrateBatch = 1024

// migrateSchema2 migrates the schema-2 file bdb to schema 3, in one
// transaction.
func migrateSchema2(bdb *bolt.DB, auth JournalAuthenticator) error {
	err := bdb.Update(func(btx *bolt.Tx) error {
		if err := migrateIndex(btx, auth); err != nil {
			return err
		}
		if err := sealSessions(btx, auth); err != nil {
			return err
		}
		if err := btx.Bucket(bucketMeta).Put(keySchema, u64(schemaSealed)); err != nil {
			return err
		}
		failpoint(FailpointMigrateSealed)
		return nil
	})
	if err != nil {
		return err
	}
	failpoint(FailpointMigrateCommitted)
	return nil
}

// migrateIndex moves a schema-2 open-session index (nested in the
// sessions bucket), its MAC verified, to the top-level bucket; a store
// without one stays without (the core builds it from a scan).
func migrateIndex(btx *bolt.Tx, auth JournalAuthenticator) error {
	if btx.Bucket(bucketOpenSessions) != nil {
		return fmt.Errorf("%w: a schema-%d file holding the bucket %q of schema %d", ErrCorrupt, schemaKeyedV2, bucketOpenSessions, schemaSealed)
	}
	sb := btx.Bucket(bucketSessions)
	ix := sb.Bucket(sessionIndex)
	if ix == nil {
		return nil
	}
	var ids [][]byte
	for _, id := range indexIDs(ix) {
		ids = append(ids, bytes.Clone(id))
	}
	mac, err := auth.JournalMAC(sessionIndexData(ids))
	if err != nil {
		return fmt.Errorf("store: open-session index: MAC: %w", err)
	}
	if stored := ix.Get(sessionIndexMAC); stored == nil || !hmac.Equal(mac, stored) {
		return fmt.Errorf("store: open-session index: %w: changed outside the ATM", ErrSessionTampered)
	}
	nix, err := btx.CreateBucket(bucketOpenSessions)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := nix.Put(id, []byte{}); err != nil {
			return err
		}
	}
	if err := nix.Put(sessionIndexMAC, mac); err != nil {
		return err
	}
	return sb.DeleteBucket(sessionIndex)
}

// sealSessions rewrites every session record as a sealed value with its
// schema-2 MAC, verified, then drops the schema-2 MAC bucket.
func sealSessions(btx *bolt.Tx, auth JournalAuthenticator) error {
	sb := btx.Bucket(bucketSessions)
	macs := sb.Bucket(sessionMACs)
	type sealed struct{ id, v []byte }
	batch := make([]sealed, 0, migrateBatch)
	var after []byte // the last record rewritten
	for {
		batch = batch[:0]
		c := sb.Cursor()
		k, v := c.First()
		if after != nil {
			if k, v = c.Seek(after); bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(batch) < migrateBatch; k, v = c.Next() {
			if v == nil { // the MAC bucket (dropped below)
				continue
			}
			var stored []byte
			if macs != nil {
				stored = macs.Get(k)
			}
			if stored == nil {
				return fmt.Errorf("store: session %q: %w: no MAC (edited in the file, or written before session records were authenticated)", k, ErrSessionTampered)
			}
			mac, err := auth.JournalMAC(sessionMACData(string(k), v))
			if err != nil {
				return fmt.Errorf("store: session %q: MAC: %w", k, err)
			}
			if !hmac.Equal(mac, stored) {
				return fmt.Errorf("store: session %q: %w: the record was changed outside the ATM", k, ErrSessionTampered)
			}
			sv, err := sealSession(mac, v)
			if err != nil {
				return fmt.Errorf("store: session %q: %w", k, err)
			}
			batch = append(batch, sealed{bytes.Clone(k), sv})
		}
		if len(batch) == 0 {
			break
		}
		for _, r := range batch {
			if err := sb.Put(r.id, r.v); err != nil {
				return err
			}
		}
		after = batch[len(batch)-1].id
	}
	if macs == nil {
		return nil
	}
	return sb.DeleteBucket(sessionMACs)
}
