package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/store"
)

// journalExportedCounter is the store counter holding the last journal
// sequence number exported to journal.exportDir.
const journalExportedCounter = "journal_exported_seq"

// JournalExportEvery is how often the exporter looks for closed days.
const JournalExportEvery = time.Hour

// journalExporter writes every closed day of the electronic journal (days
// in dayZone) to the export directory as a journal segment, once, in
// order: each file continues the chain of the one before, so the
// directory verifies offline (atmctl journal verify). A day is closed
// once the clock has passed its end; entries of several closed days not
// yet exported (the ATM was off) go into one segment named by its last
// day. The file is written under a temporary name, synced and renamed
// before the store records it as exported, so a crash leaves either no
// file (exported again) or a complete one.
type journalExporter struct {
	db        *store.DB
	retention time.Duration // exported entries older than this leave the store
	dir       string
	terminal  string
	zone      *time.Location
	clk       clock.Clock
	log       *slog.Logger
	// ready, if set, is closed once the store file has passed its check:
	// the exporter reads older journal entries, so it starts only then.
	ready <-chan struct{}
	// sessionsDue: entries were archived and the records of their sessions
	// have not been pruned since (owned by run's goroutine).
	sessionsDue bool
}

// run exports once the store file has passed its check (ready; at once
// when ready is nil) and then every JournalExportEvery until ctx ends.
func (x *journalExporter) run(ctx context.Context) {
	if x.ready != nil {
		select {
		case <-ctx.Done():
			return
		case <-x.ready:
		}
	}
	tick := x.clk.NewTicker(JournalExportEvery)
	defer tick.Stop()
	for {
		if _, err := x.exportClosedDays(); err != nil {
			x.log.Error("ALARM: journal export failed", "dir", x.dir, "err", err)
		} else if _, err := x.pruneExported(); err != nil {
			x.log.Error("ALARM: journal retention failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
		}
	}
}

// exportClosedDays exports the entries after the last exported one up to
// the end of yesterday; it returns the file written ("" when there was
// nothing to export).
func (x *journalExporter) exportClosedDays() (string, error) {
	now := x.clk.Now().In(x.zone)
	dayStart := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, x.zone)
	var done, last uint64
	var lastTime time.Time
	err := x.db.View(func(tx *store.Tx) error {
		n, err := tx.Counter(journalExportedCounter)
		if err != nil {
			return err
		}
		done = uint64(n)
		// The last entry before today: entries are appended in time
		// order on one clock; a clock stepped back would only delay the
		// export of what follows to the next closed day.
		return tx.JournalRange(done+1, func(e store.Entry) error {
			if !e.Time.Before(dayStart) {
				return errStopRange
			}
			last, lastTime = e.Seq, e.Time
			return nil
		})
	})
	if err != nil && err != errStopRange {
		return "", err
	}
	if last == 0 {
		return "", nil
	}
	if err := os.MkdirAll(x.dir, 0o750); err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s-journal-%s-%08d-%08d.jsonl", x.terminal, lastTime.In(x.zone).Format(time.DateOnly), done+1, last)
	path := filepath.Join(x.dir, name)
	var trailer store.SegmentTrailer
	err = writeDurably(x.dir, name, func(w io.Writer) (err error) {
		_, trailer, err = x.db.ExportJournal(w, x.terminal, done+1, last)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("journal export to %s: %w", path, err)
	}
	err = x.db.UpdateLabeled("journal-export", func(tx *store.Tx) error {
		if _, err := tx.AddCounter(journalExportedCounter, int64(last-done)); err != nil {
			return err
		}
		_, err := tx.AppendJournal(store.Entry{Kind: "JOURNAL EXPORTED", Text: fmt.Sprintf("entries %d-%d exported to %s", done+1, last, name),
			Data: map[string]string{"file": name, "first": fmt.Sprint(done + 1), "last": fmt.Sprint(last), "entries": fmt.Sprint(trailer.Entries)}})
		return err
	})
	if err != nil {
		return "", err
	}
	x.log.Info("journal exported", "file", path, "first", done+1, "last", last)
	return path, nil
}

var errStopRange = fmt.Errorf("stop")

// writeDurably writes dir/name through write into a temporary file in dir,
// syncs it, renames it into place and syncs dir: a crash leaves the old
// file or the whole new one, never part of it.
func writeDurably(dir, name string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(dir, ".write-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	err = write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err == nil {
		err = syncDir(dir)
	}
	return err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !isSyncUnsupported(err) {
		return err
	}
	return nil
}

// pruneExported moves out of the live store the entries that were
// exported and are older than the retention, up to the entry before the
// verified checkpoint; it returns the new base (Seq 0: nothing moved).
//
// The records of the sessions whose entries all left then go too
// (pruneSessions), as a step of their own: the cut is journaled whatever
// happens to them, and they are tried again at the next round until they
// have gone.
func (x *journalExporter) pruneExported() (store.Checkpoint, error) {
	if x.retention <= 0 {
		return store.Checkpoint{}, nil
	}
	base, err := x.pruneJournal()
	if err != nil {
		return store.Checkpoint{}, err
	}
	if base.Seq != 0 {
		x.sessionsDue = true
	}
	if x.sessionsDue {
		if err := x.pruneSessions(); err != nil {
			return base, err
		}
	}
	return base, nil
}

// pruneJournal moves the old exported entries out and journals the cut.
func (x *journalExporter) pruneJournal() (store.Checkpoint, error) {
	cutoff := x.clk.Now().Add(-x.retention)
	var exported, old uint64
	err := x.db.View(func(tx *store.Tx) error {
		n, err := tx.Counter(journalExportedCounter)
		if err != nil {
			return err
		}
		exported = uint64(n)
		err = tx.JournalRange(0, func(e store.Entry) error {
			if !e.Time.Before(cutoff) || e.Seq > exported {
				return errStopRange
			}
			old = e.Seq
			return nil
		})
		if err == errStopRange {
			err = nil
		}
		return err
	})
	if err != nil || old == 0 {
		return store.Checkpoint{}, err
	}
	cp, err := x.db.Checkpoint()
	if err != nil {
		return store.Checkpoint{}, err
	}
	through := min(old, exported)
	if cp.Seq <= through {
		through = cp.Seq - 1 // the checkpoint's entry stays; the rest next time
	}
	base, err := x.db.JournalBase()
	if err != nil || through <= base.Seq {
		return store.Checkpoint{}, err
	}
	from := base.Seq + 1
	if base, err = x.db.PruneJournal(through, 10000); err != nil {
		return store.Checkpoint{}, err
	}
	err = x.db.UpdateLabeled("journal-retention", func(tx *store.Tx) error {
		_, err := tx.AppendJournal(store.Entry{Kind: "JOURNAL ARCHIVED",
			Text: fmt.Sprintf("entries %d-%d (exported, older than %d days) moved out of the live store", from, through, int(x.retention.Hours()/24)),
			Data: map[string]string{"first": fmt.Sprint(from), "last": fmt.Sprint(through), "base_hash": base.Hash}})
		return err
	})
	if err != nil {
		return store.Checkpoint{}, err
	}
	x.log.Info("journal archived", "first", from, "last", through)
	return base, nil
}

// pruneSessions removes the records of the sessions none of whose entries
// is left in the live store (never an open one, nor one with a pending
// advice or reversal; store.DB.PruneSessions) and journals how many. Until
// the core has built its open-session index (the first start after an
// upgrade) it waits for the next round.
func (x *journalExporter) pruneSessions() error {
	n, err := x.db.PruneSessions(0)
	if errors.Is(err, store.ErrNoSessionIndex) {
		x.log.Info("session records not pruned yet: the open-session index is not built")
		return nil
	}
	if err != nil {
		return fmt.Errorf("session records: %w", err)
	}
	x.sessionsDue = false
	if n == 0 {
		return nil
	}
	err = x.db.UpdateLabeled("journal-retention", func(tx *store.Tx) error {
		_, err := tx.AppendJournal(store.Entry{Kind: "SESSIONS ARCHIVED",
			Text: fmt.Sprintf("records of finished sessions whose entries were archived, moved out of the live store: %d", n),
			Data: map[string]string{"sessions": fmt.Sprint(n)}})
		return err
	})
	if err != nil {
		return err
	}
	x.log.Info("session records archived", "sessions", n)
	return nil
}
