package store

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// SegmentFormat names the format of an exported journal segment.
const SegmentFormat = "cardless-atm-journal-segment-v1"

// A journal segment is a contiguous run of journal entries exported from
// the store, as JSON lines: first {"header":SegmentHeader}, then one
// {"entry":Entry} per entry in sequence order, then
// {"end":SegmentTrailer}. The entries carry their chain hashes, so a
// segment verifies on its own (each entry's hash, each link) and against
// the segments before it (its PrevHash is the last hash of the one
// before); the trailer's MAC, under the journal key, authenticates the
// whole run, as the head MAC authenticates the live journal.
type SegmentHeader struct {
	Format   string    `json:"format"`
	Terminal string    `json:"terminal"`
	FirstSeq uint64    `json:"firstSeq"`
	LastSeq  uint64    `json:"lastSeq"`
	PrevHash string    `json:"prevHash"` // hash of entry FirstSeq-1 (GenesisHash for 1)
	Exported time.Time `json:"exported"`
}

// SegmentTrailer closes a segment.
type SegmentTrailer struct {
	Entries  uint64 `json:"entries"`
	LastHash string `json:"lastHash"`
	MAC      string `json:"mac"` // hex HMAC under the journal key over segmentMACInput
}

type segmentLine struct {
	Header *SegmentHeader  `json:"header,omitempty"`
	Entry  *Entry          `json:"entry,omitempty"`
	End    *SegmentTrailer `json:"end,omitempty"`
}

// segmentDomain separates segment MACs from head and checkpoint MACs.
const segmentDomain = "cardless-atm-journal-segment-v1"

func segmentMACInput(h SegmentHeader, t SegmentTrailer) []byte {
	var b []byte
	str := func(s string) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	str(segmentDomain)
	str(h.Terminal)
	b = binary.BigEndian.AppendUint64(b, h.FirstSeq)
	b = binary.BigEndian.AppendUint64(b, h.LastSeq)
	str(h.PrevHash)
	b = binary.BigEndian.AppendUint64(b, t.Entries)
	str(t.LastHash)
	return b
}

// ErrSegment is a segment that is malformed or does not verify.
var ErrSegment = errors.New("store: journal segment")

// SegmentError says which segment and entry failed and why.
type SegmentError struct {
	Name   string // the segment's name (a file name), as given
	Seq    uint64 // the entry at fault (0: the header or trailer)
	Reason string
}

func (e *SegmentError) Error() string {
	if e.Seq == 0 {
		return fmt.Sprintf("journal segment %s: %s", e.Name, e.Reason)
	}
	return fmt.Sprintf("journal segment %s: entry %d: %s", e.Name, e.Seq, e.Reason)
}

// Unwrap returns ErrSegment.
func (e *SegmentError) Unwrap() error { return ErrSegment }

// ExportJournal writes the entries fromSeq..toSeq (toSeq 0: up to the
// newest) as a segment of terminal's journal, authenticated with the
// journal key (Options.JournalAuth, required). The entries are read from
// one consistent view of the store and checked as they are written: a
// segment is never made of a broken chain. It returns the header and
// trailer written.
func (db *DB) ExportJournal(w io.Writer, terminal string, fromSeq, toSeq uint64) (SegmentHeader, SegmentTrailer, error) {
	auth := db.opts.JournalAuth
	if auth == nil {
		return SegmentHeader{}, SegmentTrailer{}, errors.New("store: exporting the journal needs the journal key")
	}
	if fromSeq == 0 {
		fromSeq = 1
	}
	var h SegmentHeader
	var t SegmentTrailer
	err := db.View(func(tx *Tx) error {
		meta, err := tx.bucket(bucketMeta)
		if err != nil {
			return err
		}
		head, _, err := journalHead(meta)
		if err != nil {
			return err
		}
		if toSeq == 0 || toSeq > head {
			toSeq = head
		}
		if fromSeq > toSeq {
			return fmt.Errorf("store: no journal entries %d..%d (the journal ends at %d)", fromSeq, toSeq, head)
		}
		b, err := tx.base()
		if err != nil {
			return err
		}
		if fromSeq <= b.Seq {
			return fmt.Errorf("store: journal entries up to %d were moved out of the store (exported earlier)", b.Seq)
		}
		prev := b.Hash
		if fromSeq > b.Seq+1 {
			e, err := tx.journalEntry(fromSeq - 1)
			if err != nil {
				return err
			}
			prev = e.Hash
		}
		h = SegmentHeader{Format: SegmentFormat, Terminal: terminal, FirstSeq: fromSeq, LastSeq: toSeq, PrevHash: prev, Exported: db.now().UTC()}
		bw := bufio.NewWriter(w)
		enc := json.NewEncoder(bw)
		if err := enc.Encode(segmentLine{Header: &h}); err != nil {
			return err
		}
		last := prev
		err = tx.JournalRange(fromSeq, func(e Entry) error {
			if e.Seq > toSeq {
				return errStop
			}
			if err := checkEntry(&e, fromSeq+t.Entries, last); err != nil {
				return err
			}
			last = e.Hash
			t.Entries++
			return enc.Encode(segmentLine{Entry: &e})
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		if t.Entries != toSeq-fromSeq+1 {
			return &JournalError{Seq: fromSeq + t.Entries, Reason: "entry missing"}
		}
		t.LastHash = last
		mac, err := auth.JournalMAC(segmentMACInput(h, t))
		if err != nil {
			return fmt.Errorf("store: segment MAC: %w", err)
		}
		t.MAC = hex.EncodeToString(mac)
		if err := enc.Encode(segmentLine{End: &t}); err != nil {
			return err
		}
		return bw.Flush()
	})
	return h, t, err
}

var errStop = errors.New("stop")

// journalEntry reads entry seq.
func (tx *Tx) journalEntry(seq uint64) (Entry, error) {
	jb, err := tx.journalFrom(seq)
	if err != nil {
		return Entry{}, err
	}
	v := jb.Get(u64(seq))
	if v == nil {
		return Entry{}, &JournalError{Seq: seq, Reason: "entry missing"}
	}
	return decodeEntry(u64(seq), v)
}

// SegmentVerifier checks segments offline, in order, without the store:
// each entry's hash and link, the header and trailer, the continuity from
// one segment to the next (same terminal, the next sequence number, the
// previous segment's last hash) and, with a journal authenticator, each
// trailer's MAC. Without one it checks the chain only and says so
// (MACsChecked).
type SegmentVerifier struct {
	Auth JournalAuthenticator // nil: chains only

	started  bool
	terminal string
	nextSeq  uint64
	lastHash string
	// Entries counts the entries verified so far; Segments the segments.
	Entries, Segments uint64
}

// MACsChecked reports whether segment MACs are being verified.
func (v *SegmentVerifier) MACsChecked() bool { return v.Auth != nil }

// maxSegmentLine bounds one line of a segment (an entry is a few hundred
// bytes).
const maxSegmentLine = 1 << 20

// Verify reads one segment named name (for errors) and calls fn, if not
// nil, with each entry once it has verified. A segment that fails stops at
// the first fault with a *SegmentError; fn has then seen only entries that
// verified, though the segment as a whole did not.
func (v *SegmentVerifier) Verify(name string, r io.Reader, fn func(Entry) error) (SegmentHeader, error) {
	bad := func(seq uint64, format string, a ...any) (SegmentHeader, error) {
		return SegmentHeader{}, &SegmentError{Name: name, Seq: seq, Reason: fmt.Sprintf(format, a...)}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxSegmentLine)
	next := func() (segmentLine, bool, error) {
		if !sc.Scan() {
			return segmentLine{}, false, sc.Err()
		}
		var l segmentLine
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.DisallowUnknownFields()
		if err := d.Decode(&l); err != nil {
			return segmentLine{}, true, err
		}
		n := 0
		for _, set := range []bool{l.Header != nil, l.Entry != nil, l.End != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return segmentLine{}, true, errors.New("a line must hold exactly one of header, entry, end")
		}
		return l, true, nil
	}
	l, ok, err := next()
	switch {
	case err != nil:
		return bad(0, "header: %v", err)
	case !ok || l.Header == nil:
		return bad(0, "does not start with a header")
	}
	h := *l.Header
	switch {
	case h.Format != SegmentFormat:
		return bad(0, "format %q, want %q", h.Format, SegmentFormat)
	case h.FirstSeq == 0 || h.LastSeq < h.FirstSeq:
		return bad(0, "entries %d..%d", h.FirstSeq, h.LastSeq)
	case h.FirstSeq == 1 && h.PrevHash != GenesisHash:
		return bad(0, "the first segment of a journal must start from the genesis hash")
	case v.started && h.Terminal != v.terminal:
		return bad(0, "terminal %q after segments of %q", h.Terminal, v.terminal)
	case v.started && h.FirstSeq != v.nextSeq:
		return bad(0, "starts at entry %d, the previous segment ended at %d (a segment missing, repeated or out of order)", h.FirstSeq, v.nextSeq-1)
	case v.started && h.PrevHash != v.lastHash:
		return bad(0, "does not link to the previous segment's last entry")
	}
	prev, seq := h.PrevHash, h.FirstSeq
	var t *SegmentTrailer
	for {
		l, ok, err := next()
		if err != nil {
			return bad(seq, "%v", err)
		}
		if !ok {
			break
		}
		if t != nil {
			return bad(0, "data after the end")
		}
		if l.End != nil {
			t = l.End
			continue
		}
		if l.Header != nil {
			return bad(seq, "a second header")
		}
		e := *l.Entry
		if seq > h.LastSeq {
			return bad(seq, "more entries than the header's %d..%d", h.FirstSeq, h.LastSeq)
		}
		if err := checkEntry(&e, seq, prev); err != nil {
			var je *JournalError
			errors.As(err, &je)
			return bad(seq, "%s", je.Reason)
		}
		if fn != nil {
			if err := fn(e); err != nil {
				return SegmentHeader{}, err
			}
		}
		prev = e.Hash
		seq++
	}
	switch {
	case t == nil:
		return bad(0, "no end line (truncated?)")
	case seq != h.LastSeq+1 || t.Entries != h.LastSeq-h.FirstSeq+1:
		return bad(0, "holds entries %d..%d, the header says %d..%d", h.FirstSeq, seq-1, h.FirstSeq, h.LastSeq)
	case t.LastHash != prev:
		return bad(0, "the end's last hash is not the last entry's")
	}
	if v.Auth != nil {
		want, err := v.Auth.JournalMAC(segmentMACInput(h, *t))
		if err != nil {
			return SegmentHeader{}, fmt.Errorf("store: segment MAC: %w", err)
		}
		got, err := hex.DecodeString(t.MAC)
		if err != nil || !hmac.Equal(got, want) {
			return bad(0, "MAC does not verify (rewritten, or the wrong journal key)")
		}
	}
	v.started, v.terminal, v.nextSeq, v.lastHash = true, h.Terminal, h.LastSeq+1, prev
	v.Entries += t.Entries
	v.Segments++
	return h, nil
}
