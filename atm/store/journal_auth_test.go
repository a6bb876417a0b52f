package store

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// hmacAuth is a JournalAuthenticator doing HMAC-SHA256 with a clear key, as
// the appliance's adapter does inside the security module. fail makes the
// calls numbered in failOn (1-based) fail.
type hmacAuth struct {
	key    []byte
	calls  atomic.Int64
	failOn map[int64]bool
}

var errAuthDown = errors.New("test: security module unavailable")

func (a *hmacAuth) JournalMAC(data []byte) ([]byte, error) {
	if n := a.calls.Add(1); a.failOn[n] {
		return nil, errAuthDown
	}
	m := hmac.New(sha256.New, a.key)
	m.Write(data)
	return m.Sum(nil), nil
}

// testAuth returns a journal authenticator whose 32-byte key is derived
// from b (different b, different key).
func testAuth(b byte) *hmacAuth {
	return &hmacAuth{key: bytes.Repeat([]byte{b}, 32)}
}

// keyedJournalDB returns a closed keyed store file (schema 3) holding n
// entries under testAuth(key).
func keyedJournalDB(t *testing.T, key byte, n int) string {
	t.Helper()
	path := tempPath(t)
	db, err := Open(path, Options{Now: newClock().Now, JournalAuth: testAuth(key)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		mustUpdate(t, db, func(tx *Tx) error {
			_, err := tx.AppendJournal(Entry{Kind: "NOTE", SessionID: fmt.Sprintf("s%d", i),
				Text: fmt.Sprintf("entry %d", i), Data: map[string]string{"amount": fmt.Sprint(i * 100)}})
			return err
		})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantHeadFault expects a *JournalError at the head (Seq 0) whose reason
// contains reason.
func wantHeadFault(t *testing.T, err error, reason string) {
	t.Helper()
	var je *JournalError
	if !errors.As(err, &je) || !errors.Is(err, ErrJournalBroken) {
		t.Fatalf("got %v, want a *JournalError (%q)", err, reason)
	}
	if je.Seq != 0 || !strings.Contains(je.Reason, reason) {
		t.Fatalf("got seq %d %q, want seq 0 %q", je.Seq, je.Reason, reason)
	}
}

func headRecord(t *testing.T, db *DB) (seq uint64, hash string, mac []byte) {
	t.Helper()
	_ = db.View(func(tx *Tx) error {
		m := tx.tx.Bucket(bucketMeta)
		seq, _ = readU64(m.Get(keyJournalSeq))
		hash = string(m.Get(keyJournalHash))
		mac = clone(m.Get(keyJournalMAC))
		return nil
	})
	return
}

func TestJournalAuthAppendVerify(t *testing.T) {
	path := keyedJournalDB(t, 1, 4)
	db := openAt(t, path, Options{JournalAuth: testAuth(1)})
	if err := db.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
	// Several appends in one transaction, and Tx.VerifyJournal inside it.
	mustUpdate(t, db, func(tx *Tx) error {
		for i := 0; i < 3; i++ {
			if _, err := tx.AppendJournal(Entry{Kind: "MORE"}); err != nil {
				return err
			}
		}
		return tx.VerifyJournal()
	})
	// The recorded MAC is HMAC-SHA256 over the documented encoding:
	// len(domain) | domain | seq | len(hash) | hash, big-endian uint64s.
	seq, hash, mac := headRecord(t, db)
	if seq != 7 {
		t.Fatalf("head seq %d, want 7", seq)
	}
	var in []byte
	in = binary.BigEndian.AppendUint64(in, uint64(len("cardless-atm-journal-head-v1")))
	in = append(in, "cardless-atm-journal-head-v1"...)
	in = binary.BigEndian.AppendUint64(in, seq)
	in = binary.BigEndian.AppendUint64(in, uint64(len(hash)))
	in = append(in, hash...)
	m := hmac.New(sha256.New, bytes.Repeat([]byte{1}, 32))
	m.Write(in)
	if !bytes.Equal(mac, m.Sum(nil)) {
		t.Fatal("head MAC is not HMAC-SHA256 over the documented head encoding")
	}
	if err := db.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
}

// An attacker without the key edits an entry and rebuilds the whole chain
// and the head record with SHA-256, as anyone can. The unkeyed check
// passes; the keyed check does not, and the ATM refuses to append to it.
func TestJournalAuthDetectsRebuiltChain(t *testing.T) {
	path := keyedJournalDB(t, 1, 5)
	rawEdit(t, path, func(j, meta *bolt.Bucket) error {
		prev := GenesisHash
		c := j.Cursor()
		var rewritten []Entry
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if e.Seq == 3 {
				e.Data["amount"] = "999999"
			}
			e.PrevHash = prev
			e.Hash = entryHash(&e)
			prev = e.Hash
			rewritten = append(rewritten, e)
		}
		for _, e := range rewritten {
			v, _ := json.Marshal(&e)
			if err := j.Put(u64(e.Seq), v); err != nil {
				return err
			}
		}
		return meta.Put(keyJournalHash, []byte(prev))
	})

	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.VerifyJournal(); err != nil {
		t.Fatalf("unkeyed check should pass on a consistently rebuilt chain: %v", err)
	}
	db.Close()

	db = openAt(t, path, Options{JournalAuth: testAuth(1)})
	wantHeadFault(t, db.VerifyJournal(), "head MAC does not verify")
	_, _, macBefore := headRecord(t, db)
	err = db.Update(func(tx *Tx) error { _, err := tx.AppendJournal(Entry{Kind: "NOTE"}); return err })
	wantHeadFault(t, err, "head MAC does not verify")
	if seq, _, mac := headRecord(t, db); seq != 5 || !bytes.Equal(mac, macBefore) {
		t.Fatalf("a refused append changed the head: seq %d", seq)
	}
}

func TestJournalAuthMACRemovedOrAltered(t *testing.T) {
	for _, tt := range []struct {
		name   string
		edit   func(mac []byte) []byte // nil result: delete
		reason string
	}{
		{"deleted", func([]byte) []byte { return nil }, "head not authenticated"},
		{"emptied", func([]byte) []byte { return []byte{} }, "head not authenticated"},
		{"bit flipped", func(m []byte) []byte { m[0] ^= 1; return m }, "head MAC does not verify"},
		{"truncated", func(m []byte) []byte { return m[:16] }, "head MAC does not verify"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := keyedJournalDB(t, 1, 3)
			rawEdit(t, path, func(_, meta *bolt.Bucket) error {
				v := tt.edit(clone(meta.Get(keyJournalMAC)))
				if v == nil {
					return meta.Delete(keyJournalMAC)
				}
				return meta.Put(keyJournalMAC, v)
			})
			db := openAt(t, path, Options{JournalAuth: testAuth(1)})
			wantHeadFault(t, db.VerifyJournal(), tt.reason)
			err := db.Update(func(tx *Tx) error { _, err := tx.AppendJournal(Entry{Kind: "NOTE"}); return err })
			wantHeadFault(t, err, tt.reason)
		})
	}
}

// Also the empty journal of a keyed store is authenticated: deleting every
// entry and resetting the head is detected.
func TestJournalAuthTruncatedToEmpty(t *testing.T) {
	path := keyedJournalDB(t, 1, 3)
	rawEdit(t, path, func(j, meta *bolt.Bucket) error {
		for i := uint64(1); i <= 3; i++ {
			if err := j.Delete(u64(i)); err != nil {
				return err
			}
		}
		if err := meta.Delete(keyJournalSeq); err != nil {
			return err
		}
		return meta.Delete(keyJournalHash)
	})
	db := openAt(t, path, Options{JournalAuth: testAuth(1)})
	wantHeadFault(t, db.VerifyJournal(), "head MAC does not verify")
}

func TestJournalAuthWrongKey(t *testing.T) {
	path := keyedJournalDB(t, 1, 3)
	db := openAt(t, path, Options{JournalAuth: testAuth(2)})
	wantHeadFault(t, db.VerifyJournal(), "head MAC does not verify")
	err := db.Update(func(tx *Tx) error { _, err := tx.AppendJournal(Entry{Kind: "NOTE"}); return err })
	wantHeadFault(t, err, "head MAC does not verify")
	db.Close()
	db = openAt(t, path, Options{JournalAuth: testAuth(1)})
	if err := db.VerifyJournal(); err != nil {
		t.Fatalf("right key after a wrong-key attempt: %v", err)
	}
}

// A schema-1 journal with entries is never adopted by a keyed open: that
// would let anyone strip the MAC, downgrade the schema and have the ATM
// sign the rewritten journal. The file is left byte-for-byte as it was.
func TestJournalAuthRefusesSchema1WithEntries(t *testing.T) {
	downgraded := keyedJournalDB(t, 1, 3)
	rawEdit(t, downgraded, func(_, meta *bolt.Bucket) error {
		if err := meta.Delete(keyJournalMAC); err != nil {
			return err
		}
		return meta.Put(keySchema, u64(1))
	})
	// The whole keyed journal deleted with its head records and MAC, the
	// schema set back to 1, the rest of the file (a live session) kept.
	wiped := keyedJournalDB(t, 1, 3)
	db := openAt(t, wiped, Options{JournalAuth: testAuth(1)})
	mustUpdate(t, db, func(tx *Tx) error { return tx.PutSession("live", []byte("current")) })
	db.Close()
	rawEdit(t, wiped, func(j, meta *bolt.Bucket) error {
		for i := uint64(1); i <= 3; i++ {
			if err := j.Delete(u64(i)); err != nil {
				return err
			}
		}
		for _, k := range [][]byte{keyJournalSeq, keyJournalHash, keyJournalMAC} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return meta.Put(keySchema, u64(1))
	})
	for name, path := range map[string]string{"legacy": journalDB(t, 3), "downgraded": downgraded, "wiped-and-downgraded": wiped} {
		wantSeq := "seq 3"
		if name == "wiped-and-downgraded" {
			wantSeq = "seq 0"
		}
		t.Run(name, func(t *testing.T) {
			before := fileDigest(t, path)
			db, err := Open(path, Options{JournalAuth: testAuth(1)})
			if err == nil {
				db.Close()
				t.Fatal("keyed Open adopted a schema-1 journal with entries")
			}
			if !errors.Is(err, ErrJournalUnauthenticated) {
				t.Fatalf("Open = %v, want ErrJournalUnauthenticated", err)
			}
			for _, s := range []string{path, "make sim-clean", wantSeq} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not mention %q: %v", s, err)
				}
			}
			if !bytes.Equal(before, fileDigest(t, path)) {
				t.Fatal("refused file was modified")
			}
			// Without the key it still opens and its chain verifies.
			db = openAt(t, path, Options{})
			if err := db.VerifyJournal(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Only a pristine schema-1 file (nothing but what create writes) is
// upgraded; one with any other record, even with an empty journal, is
// refused and left as it was. Otherwise an attacker could delete a keyed
// journal with its head records and MAC, set the schema back to 1, and
// have the ATM sign an empty journal beside the live sessions, queue and
// counters.
func TestJournalAuthUpgradesPristineSchema1Only(t *testing.T) {
	path := tempPath(t)
	openAt(t, path, Options{}).Close()
	db := openAt(t, path, Options{JournalAuth: testAuth(1)})
	if err := db.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *Tx) error {
		if v, _ := readU64(tx.tx.Bucket(bucketMeta).Get(keySchema)); v != schemaSealed {
			t.Errorf("schema %d after upgrade, want %d", v, schemaSealed)
		}
		return nil
	})
	mustUpdate(t, db, func(tx *Tx) error { _, err := tx.AppendJournal(Entry{Kind: "FIRST"}); return err })
	if err := db.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
	db.Close()

	withSession := tempPath(t)
	db = openAt(t, withSession, Options{})
	mustUpdate(t, db, func(tx *Tx) error { return tx.PutSession("s1", []byte("kept")) })
	db.Close()
	before := fileDigest(t, withSession)
	if db, err := Open(withSession, Options{JournalAuth: testAuth(1)}); !errors.Is(err, ErrJournalUnauthenticated) {
		if err == nil {
			db.Close()
		}
		t.Fatalf("schema 1 with a session and an empty journal: Open = %v, want ErrJournalUnauthenticated", err)
	}
	if !bytes.Equal(before, fileDigest(t, withSession)) {
		t.Fatal("refused file was modified")
	}
}

// A failing authenticator during the upgrade leaves the file as it was.
func TestJournalAuthUpgradeFailureWritesNothing(t *testing.T) {
	path := tempPath(t)
	openAt(t, path, Options{}).Close()
	before := fileDigest(t, path)
	auth := testAuth(1)
	auth.failOn = map[int64]bool{1: true}
	if db, err := Open(path, Options{JournalAuth: auth}); !errors.Is(err, errAuthDown) {
		if err == nil {
			db.Close()
		}
		t.Fatalf("Open = %v, want the authenticator's error", err)
	}
	if !bytes.Equal(before, fileDigest(t, path)) {
		t.Fatal("failed upgrade modified the file")
	}
}

// A keyed store opened without the key: the chain is still checked (a
// plain edit is found), appends and session writes are refused and write
// nothing.
func TestJournalAuthKeyedWithoutKey(t *testing.T) {
	path := keyedJournalDB(t, 1, 3)
	db := openAt(t, path, Options{})
	if err := db.VerifyJournal(); err != nil {
		t.Fatal(err)
	}
	err := db.Update(func(tx *Tx) error {
		if err := tx.PutSession("s", []byte("x")); err != nil {
			return err
		}
		_, err := tx.AppendJournal(Entry{Kind: "NOTE"})
		return err
	})
	if !errors.Is(err, ErrJournalKeyRequired) {
		t.Fatalf("unkeyed append to a keyed journal: %v", err)
	}
	if err := db.View(func(tx *Tx) error { _, err := tx.GetSession("s"); return err }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused transaction left a session: %v", err)
	}
	db.Close()

	rawEdit(t, path, func(j, _ *bolt.Bucket) error {
		var e Entry
		_ = json.Unmarshal(j.Get(u64(2)), &e)
		e.Text = "edited"
		v, _ := json.Marshal(&e)
		return j.Put(u64(2), v)
	})
	db = openAt(t, path, Options{})
	var je *JournalError
	if err := db.VerifyJournal(); !errors.As(err, &je) || je.Seq != 2 {
		t.Fatalf("unkeyed check of an edited keyed journal: %v", err)
	}
}

// The head MAC is written in the same transaction as the entry: whichever
// MAC computation fails (the check of the current head or the MAC of the new
// one), AppendJournal fails and nothing of the transaction is committed;
// after every commit the journal verifies with its key.
func TestJournalAuthFailureInjection(t *testing.T) {
	for _, failCall := range []int64{1, 2} {
		t.Run(fmt.Sprintf("call %d fails", failCall), func(t *testing.T) {
			path := keyedJournalDB(t, 1, 2)
			auth := testAuth(1)
			var db *DB
			commits := 0
			db = openAt(t, path, Options{JournalAuth: auth, AfterCommit: func(string) {
				commits++
				if err := db.VerifyJournal(); err != nil {
					t.Errorf("after commit %d: %v", commits, err)
				}
			}})
			seq0, hash0, mac0 := headRecord(t, db)
			auth.failOn = map[int64]bool{auth.calls.Load() + failCall: true}
			err := db.Update(func(tx *Tx) error {
				if err := tx.PutSession("s", []byte("x")); err != nil {
					return err
				}
				_, err := tx.AppendJournal(Entry{Kind: "NOTE"})
				return err
			})
			if !errors.Is(err, errAuthDown) {
				t.Fatalf("AppendJournal with a failing authenticator: %v", err)
			}
			if seq, hash, mac := headRecord(t, db); seq != seq0 || hash != hash0 || !bytes.Equal(mac, mac0) {
				t.Fatalf("failed append moved the head to %d", seq)
			}
			if err := db.View(func(tx *Tx) error { _, err := tx.GetSession("s"); return err }); !errors.Is(err, ErrNotFound) {
				t.Fatalf("failed transaction left a session: %v", err)
			}
			if err := db.VerifyJournal(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				mustUpdate(t, db, func(tx *Tx) error { _, err := tx.AppendJournal(Entry{Kind: "NOTE"}); return err })
			}
			if commits != 3 {
				t.Fatalf("%d commits, want 3", commits)
			}
			if seq, _, _ := headRecord(t, db); seq != seq0+3 {
				t.Fatalf("head %d, want %d", seq, seq0+3)
			}
		})
	}
}
