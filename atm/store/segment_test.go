package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// exportSegments exports the journal of a 10-entry store as segments
// 1-4, 5-9 and 10.
func exportSegments(t *testing.T) [][]byte {
	t.Helper()
	db, err := Open(keyedJournalDB(t, 7, 10), Options{Now: newClock().Now, JournalAuth: testAuth(7)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out [][]byte
	for _, r := range [][2]uint64{{1, 4}, {5, 9}, {10, 0}} {
		var b bytes.Buffer
		h, tr, err := db.ExportJournal(&b, "ATM00001", r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		if h.FirstSeq != r[0] || tr.Entries != h.LastSeq-h.FirstSeq+1 {
			t.Fatalf("segment %+v %+v", h, tr)
		}
		out = append(out, b.Bytes())
	}
	return out
}

func verifyAll(v *SegmentVerifier, segs ...[]byte) error {
	for i, s := range segs {
		if _, err := v.Verify(string(rune('A'+i)), bytes.NewReader(s), nil); err != nil {
			return err
		}
	}
	return nil
}

func TestSegmentsVerifyOffline(t *testing.T) {
	segs := exportSegments(t)
	v := &SegmentVerifier{Auth: testAuth(7)}
	var kinds []string
	for i, s := range segs {
		if _, err := v.Verify("seg", bytes.NewReader(s), func(e Entry) error { kinds = append(kinds, e.Text); return nil }); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
	}
	if v.Entries != 10 || v.Segments != 3 || len(kinds) != 10 || kinds[9] != "entry 10" {
		t.Fatalf("verified %d entries in %d segments: %q", v.Entries, v.Segments, kinds)
	}
	// Without the key the chain still verifies, and the verifier says the
	// MACs were not checked.
	chain := &SegmentVerifier{}
	if err := verifyAll(chain, segs...); err != nil || chain.MACsChecked() {
		t.Fatalf("chain-only verification: %v (MACs checked %v)", err, chain.MACsChecked())
	}
}

func TestSegmentsDetectTampering(t *testing.T) {
	segs := exportSegments(t)
	edit := func(seg []byte, old, new string) []byte {
		if !bytes.Contains(seg, []byte(old)) {
			t.Fatalf("segment lacks %q", old)
		}
		return bytes.Replace(seg, []byte(old), []byte(new), 1)
	}
	lines := func(seg []byte) []string { return strings.Split(strings.TrimSuffix(string(seg), "\n"), "\n") }
	join := func(l []string) []byte { return []byte(strings.Join(l, "\n") + "\n") }
	for _, tc := range []struct {
		name string
		key  byte
		segs [][]byte
		want string
	}{
		{"edited entry", 7, [][]byte{segs[0], edit(segs[1], `"Text":"entry 6"`, `"Text":"entry 6!"`), segs[2]}, "journal segment B: entry 6: hash mismatch (entry edited)"},
		{"missing segment", 7, [][]byte{segs[0], segs[2]}, "journal segment B: starts at entry 10, the previous segment ended at 4 (a segment missing, repeated or out of order)"},
		{"repeated segment", 7, [][]byte{segs[0], segs[0]}, "journal segment B: starts at entry 1, the previous segment ended at 4 (a segment missing, repeated or out of order)"},
		{"truncated", 7, [][]byte{join(lines(segs[1])[:3])}, "journal segment A: no end line (truncated?)"},
		{"entry removed", 7, [][]byte{join(append(lines(segs[0])[:2], lines(segs[0])[3:]...))}, "journal segment A: entry 2: entry stored under seq 2 claims seq 3 (reordered?)"},
		{"wrong key", 8, [][]byte{segs[0]}, "journal segment A: MAC does not verify (rewritten, or the wrong journal key)"},
		{"other terminal", 7, [][]byte{segs[0], edit(segs[1], `"terminal":"ATM00001"`, `"terminal":"ATM00002"`)}, `journal segment B: terminal "ATM00002" after segments of "ATM00001"`},
		{"unknown field", 7, [][]byte{edit(segs[0], `"entry":{`, `"entry":{"Extra":1,`)}, `journal segment A: entry 1: json: unknown field "Extra"`},
		{"not a segment", 7, [][]byte{[]byte("hello\n")}, "journal segment A: header: invalid character 'h' looking for beginning of value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyAll(&SegmentVerifier{Auth: testAuth(tc.key)}, tc.segs...)
			if !errors.Is(err, ErrSegment) || err.Error() != tc.want {
				t.Fatalf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestExportNeedsTheKeyAndEntries(t *testing.T) {
	path := keyedJournalDB(t, 7, 3)
	db, err := Open(path, Options{Now: newClock().Now, JournalAuth: testAuth(7)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.ExportJournal(&bytes.Buffer{}, "ATM00001", 4, 0); err == nil || err.Error() != "store: no journal entries 4..3 (the journal ends at 3)" {
		t.Fatalf("export past the end: %v", err)
	}
	db.Close()
	db, err = Open(path, Options{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, _, err := db.ExportJournal(&bytes.Buffer{}, "ATM00001", 1, 0); err == nil {
		t.Fatal("exported without the journal key")
	}
}

// FuzzVerifySegment: no input panics the segment reader, and an accepted
// segment's entries are contiguous from its header's first sequence.
func FuzzVerifySegment(f *testing.F) {
	seg := []byte(`{"header":{"format":"cardless-atm-journal-segment-v1","terminal":"ATM00001","firstSeq":1,"lastSeq":1,"prevHash":"` + GenesisHash + `","exported":"2030-01-01T00:00:00Z"}}` + "\n" +
		`{"end":{"entries":1,"lastHash":"x","mac":""}}` + "\n")
	f.Add(seg)
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v := &SegmentVerifier{}
		next := uint64(0)
		h, err := v.Verify("fuzz", bytes.NewReader(b), func(e Entry) error {
			if next != 0 && e.Seq != next {
				t.Fatalf("entry %d after %d", e.Seq, next-1)
			}
			next = e.Seq + 1
			return nil
		})
		if err == nil && (v.Entries != h.LastSeq-h.FirstSeq+1 || next != h.LastSeq+1) {
			t.Fatalf("accepted %+v with %d entries", h, v.Entries)
		}
	})
}

func TestFindJournal(t *testing.T) {
	db, err := Open(tempPath(t), Options{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, e := range []Entry{
		{Kind: "SESSION CREATED", SessionID: "S1"},
		{Kind: "SESSION CREATED", SessionID: "S2"},
		{Kind: "COMMAND ACCEPTED", SessionID: "S1", Data: map[string]string{"customer": "****1234"}},
		{Kind: "COMMAND ACCEPTED", SessionID: "S2", Data: map[string]string{"customer": "****9999"}},
		{Kind: "APPROVED", SessionID: "S1", Data: map[string]string{"rrn": "123456789012"}},
		{Kind: "REFUSED", Data: map[string]string{"rrn": "123456789012"}},
		{Kind: "CASH TAKEN", SessionID: "S1"},
	} {
		mustUpdate(t, db, func(tx *Tx) error { _, err := tx.AppendJournal(e); return err })
	}
	kinds := func(q JournalQuery) []string {
		var out []string
		err := db.View(func(tx *Tx) error {
			es, err := tx.FindJournal(q)
			for _, e := range es {
				out = append(out, e.SessionID+" "+e.Kind)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	s1 := "S1 SESSION CREATED|S1 COMMAND ACCEPTED|S1 APPROVED|S1 CASH TAKEN"
	for _, tc := range []struct {
		q    JournalQuery
		want string
	}{
		{JournalQuery{Session: "S1"}, s1},
		{JournalQuery{RRN: "123456789012"}, "S1 SESSION CREATED|S1 COMMAND ACCEPTED|S1 APPROVED| REFUSED|S1 CASH TAKEN"},
		{JournalQuery{Customer: "6222020000001234"}, s1},
		{JournalQuery{Customer: "****9999"}, "S2 SESSION CREATED|S2 COMMAND ACCEPTED"},
		{JournalQuery{Session: "S9"}, ""},
	} {
		if got := strings.Join(kinds(tc.q), "|"); got != tc.want {
			t.Errorf("%+v:\n got %s\nwant %s", tc.q, got, tc.want)
		}
	}
}
