// Package store is the ATM appliance's durable state: one bbolt file holding
// sessions, the electronic journal, the store-and-forward queue and the
// counters (STAN, sequences, cassette counters, daily totals, used nonces).
//
// # Transactions
//
// The ATM core changes state with exactly one DB.Update per state change,
// committed (fsynced) before the action it protects: writing the session,
// appending the journal entry, enqueueing an advice or reversal and moving
// the counters all happen in the same *Tx, so after a crash either all of
// them are on disk or none is. If the function passed to Update returns an
// error, everything it wrote is rolled back. DB.UpdateLabeled passes a label
// to Options.AfterCommit after the commit; crash tests use it as a failure
// point. Byte slices returned by a Tx are copies.
//
// # Journal
//
// The journal is append-only. Each Entry gets the next sequence number, a
// timestamp from Options.Now, the hash of its predecessor (GenesisHash for
// the first) and its own SHA-256 hash over all other fields. The sequence
// number and hash of the newest entry are also kept in the meta bucket, so
// DB.VerifyJournal detects an edited entry, a removed entry (first, middle or
// last) and reordered entries, reporting a *JournalError wrapping
// ErrJournalBroken. The chain alone is not keyed: anyone able to rewrite the
// whole file can rebuild it consistently.
//
// Options.JournalAuth closes that gap. With it, every append also records in
// the meta bucket, in the same transaction, a MAC over the new head (a
// domain string, the head sequence number and the head hash, length
// prefixed); the appliance computes it with HMAC-SHA256 under hsm.JournalKey
// inside the security module. VerifyJournal then also requires that MAC,
// compared in constant time, and since the head hash commits to every entry
// through the chain, an edit anywhere needs the key to hide. An append first
// checks the current head MAC, so the ATM never signs a head it did not
// write. Such a store is schema 3 (see Schemas below); see Open for
// schema-1 files (a pristine one, holding nothing but what a new store
// holds, is upgraded; any other is refused with ErrJournalUnauthenticated
// rather than signed after the fact, so deleting a keyed journal and
// downgrading the schema does not get the ATM to sign an empty one). A
// keyed file opened without JournalAuth is readable and its chain
// verifiable (tools without the key), but neither its journal nor its
// session records can be written (ErrJournalKeyRequired).
//
// Session records are authenticated under the same key: PutSession seals
// a MAC of each record (over its ID and bytes) into the stored value, and
// GetSession and ForEachSession refuse a record that does not verify, or
// has no MAC, with ErrSessionTampered. Recovery reads only the open
// sessions, through the open-session index (OpenSessions, MarkSession,
// IndexSessions; one MAC over its IDs, so hiding an open session fails),
// and VerifySessions, run by the appliance's background check with the
// whole journal, reads every record: an edited open session stops the
// start, an edited finished one raises the journal alarm. The same
// rollback limit applies.
//
// # Schemas
//
// The meta bucket records the file's layout version. Schema 1: no journal
// key, bare session records, the open-session index nested in the
// sessions bucket (a store created without a key is still schema 1).
// Schema 2 (the previous version's keyed stores): the head MAC, the
// records' MACs in a bucket nested in the sessions bucket, the index
// nested there with its MAC. Schema 3 (every keyed store now): each
// record's value is sealV1, the MAC's length, the MAC, the record; the
// index is the top-level bucket "open_sessions". A commit then writes one
// B+tree for the sessions instead of three (docs/performance.md). Open
// with the key migrates a schema-2 file to schema 3 in one transaction,
// verifying every record's MAC and the index's first: a record that does
// not verify stops it with ErrSessionTampered and leaves the file exactly
// as it was; a crash leaves it schema 2 (migrated at the next Open) or
// schema 3 (TestMigrateCrash). A program of an earlier version refuses a
// schema-3 file with ErrSchemaVersion. DB.MigratedFrom tells what Open
// upgraded.
//
// Limit: the MAC proves a journal is one the ATM wrote, not that it is the
// latest one. Replacing the whole file with an older genuine copy, or with a
// genuine fresh store, verifies. So does cutting off the newest entries and
// setting the head back to an earlier entry with that head's genuine MAC,
// taken from a backup or from a freed page of the same file (bbolt does not
// wipe freed pages). Detecting that rollback needs an anchor outside the
// ATM: the host's record of the terminal's last STAN and its totals,
// compared with the journal's at sign-on or reconciliation.
//
// # Export, retention, compaction
//
// DB.ExportJournal writes a run of entries as a segment (JSON lines with
// the chain hashes and an HMAC under the journal key over the run);
// SegmentVerifier checks segments offline, in order, without the store;
// JournalQuery and FindJournal answer disputes (session, RRN, masked
// customer). DB.PruneJournal moves exported entries before the verified
// checkpoint out of the live journal and records the last of them as the
// journal's base (authenticated like the checkpoint); verification starts
// from the base. DB.PruneSessions then removes the records of the sessions
// none of whose entries is left (not open, no pending queue item; each
// verified before it goes), so the sessions tree, which every start walks,
// stays as small as the live journal. CompactFile gives the freed pages
// back to the disk with a
// copy and one rename, crash-safe at every step (TestCompactCrash).
//
// # Queue
//
// Advices and reversals wait in a FIFO queue until the host acknowledges
// them (Tx.Ack). Every item has an idempotency key; enqueueing a key that is
// pending or was already acknowledged returns the existing item and adds
// nothing, so recovery code may enqueue blindly.
//
// # Opening a file
//
// Open creates a missing file with the schema (Magic and the schema
// version in the meta bucket: 3 with Options.JournalAuth, else 1; the new
// file is built beside the target and linked into place, so a crash never
// leaves a half-made store). An existing file is
// first checked without writing to it: the bbolt meta pages, file length
// and every B+tree page with plain reads (bounds, page types, cycles, key
// order within and across pages, and the freelist against the pages in
// use), since bbolt itself trusts on-disk offsets and can crash or hang on
// a damaged file; then a read-only bbolt open that checks identity and
// schema and runs bbolt's consistency check (Tx.Check). bbolt keeps no
// checksum on data pages, so a flipped byte inside a value can pass; the
// journal's hash chain still catches it there. A damaged, truncated or
// empty file is refused with ErrCorrupt, a bbolt file of another
// application with ErrForeign, a newer schema with ErrSchemaVersion. The
// file is never reset, repaired or recreated: that is an operator's
// decision. The writes Open makes to an existing file, both only when it
// is given a journal key, are the upgrade of a pristine schema-1 file to
// schema 3 and the migration of a schema-2 file to schema 3.
//
// Those checks read the whole file: seconds for a store of a million
// journal entries. With Options.DeferFileCheck (the appliance) Open reads
// only what a start reads: the meta pages, the freelist, every page of
// every bucket except the journal's pages that hold only entries before
// both the checkpoint and the newest OpenJournalTail entries (those pages'
// numbers are still range-checked and accounted for), and it skips
// bbolt's Tx.Check. DB.CheckFile then checks the whole file on the store
// in use, in the background, without blocking writers; until it has
// passed, reading the older entries fails with ErrFileUnchecked (after a
// failure, with its ErrCorrupt), so bbolt never reads a page that was not
// checked. DB.FileChecked tells which.
//
// Package storetest opens a throwaway store in a test's temp directory.
package store
