package appliance

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/store"
)

// The journal's background verification.
const (
	// JournalCheckEvery: the chain since the checkpoint is verified and the
	// checkpoint advanced this often, so that a start-up verifies at most
	// this much of the journal.
	JournalCheckEvery = time.Hour
	// JournalFullCheckEvery: the whole chain is verified this often (the
	// first time JournalFullCheckFirst after start), in chunks of
	// journalChunk entries with journalPause between them, so that the
	// verification never holds the store for long.
	JournalFullCheckEvery = 24 * time.Hour
	JournalFullCheckFirst = 10 * time.Minute
	journalChunk          = 5000
	journalPause          = 20 * time.Millisecond

	// StoreCheckFirst: the whole store file is checked (store.DB.CheckFile)
	// this long after start, and then every StoreCheckEvery. The store is
	// opened with store.Options.DeferFileCheck: the start checks the pages
	// it reads, and the journal entries before the checkpoint cannot be
	// read (export, retention, the whole-chain verification, GET
	// /journal/...) until this check has passed. It reads storeCheckChunk
	// pages per read transaction, with journalPause between them.
	StoreCheckFirst = 5 * time.Second
	StoreCheckEvery = 24 * time.Hour
	storeCheckChunk = 2000
)

// journalChecker verifies the electronic journal in the background and
// alarms when it does not verify. It runs on its own goroutine; the
// store's transactions are its only contact with the rest.
type journalChecker struct {
	db  *store.DB
	clk clock.Clock
	log *slog.Logger

	mu sync.Mutex
	// The last failure of each kind of verification ("" when it
	// verified): a failure of the whole chain stays until the whole chain
	// verifies again, whatever the checks since the checkpoint say, and a
	// failure of the store file's check until the file passes again.
	alarmFile, alarmFull, alarmSince string
	fileOK                           chan struct{} // closed when the store file first passed its check
	fileOKOnce                       sync.Once
}

func newJournalChecker(db *store.DB, clk clock.Clock, log *slog.Logger) *journalChecker {
	j := &journalChecker{db: db, clk: clk, log: log, fileOK: make(chan struct{})}
	if db.FileChecked() { // a small store: Open read all of it
		j.fileOKOnce.Do(func() { close(j.fileOK) })
	}
	return j
}

// FileOK is closed once the store file has passed its check: from then on
// the journal's older entries can be read.
func (j *journalChecker) FileOK() <-chan struct{} { return j.fileOK }

// Alarm returns the standing verification failure ("" when none).
func (j *journalChecker) Alarm() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.alarmFile != "":
		return j.alarmFile
	case j.alarmFull != "":
		return j.alarmFull
	}
	return j.alarmSince
}

// What setAlarm records.
const (
	checkSince = iota // the journal since its checkpoint
	checkFull         // the whole journal
	checkFile         // the store file
)

func (j *journalChecker) setAlarm(kind int, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	j.mu.Lock()
	switch kind {
	case checkFile:
		j.alarmFile = msg
	case checkFull:
		j.alarmFull = msg
	default:
		j.alarmSince = msg
	}
	j.mu.Unlock()
	if err == nil {
		return
	}
	switch kind {
	case checkFile:
		j.log.Error("ALARM store file fails its check: keep the store file for investigation", "err", err)
	case checkFull:
		j.log.Error("ALARM electronic journal does not verify (whole chain): keep the store file for investigation", "err", err)
	default:
		j.log.Error("ALARM electronic journal does not verify (since the checkpoint): keep the store file for investigation", "err", err)
	}
}

func (j *journalChecker) run(ctx context.Context) error {
	inc := j.clk.NewTimer(JournalCheckEvery)
	defer inc.Stop()
	full := j.clk.NewTimer(JournalFullCheckFirst)
	defer full.Stop()
	file := j.clk.NewTimer(StoreCheckFirst)
	defer file.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-file.C():
			j.file(ctx)
			file.Reset(StoreCheckEvery)
		case <-inc.C():
			j.incremental()
			inc.Reset(JournalCheckEvery)
		case <-full.C():
			if j.full(ctx) || j.fileFailed() {
				full.Reset(JournalFullCheckEvery)
			} else { // the file's check has not run yet: soon
				full.Reset(JournalFullCheckFirst)
			}
		}
	}
}

// file checks the whole store file, pausing between chunks.
func (j *journalChecker) file(ctx context.Context) {
	start := j.clk.Now()
	err := j.db.CheckFile(ctx, storeCheckChunk, func() error {
		if !clock.Sleep(j.clk, journalPause, ctx.Done()) {
			return ctx.Err()
		}
		return nil
	})
	if ctx.Err() != nil {
		return
	}
	j.setAlarm(checkFile, err)
	if err == nil {
		j.log.Info("store file checked", "took", j.clk.Now().Sub(start).Round(time.Millisecond))
		j.fileOKOnce.Do(func() { close(j.fileOK) })
	}
}

// fileFailed reports whether the store file's last check failed.
func (j *journalChecker) fileFailed() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.alarmFile != ""
}

// incremental verifies what follows the checkpoint and advances it.
func (j *journalChecker) incremental() {
	head, err := j.db.VerifyJournalSince()
	if err == nil {
		err = j.db.SetCheckpoint(head)
	}
	j.setAlarm(checkSince, err)
}

// full verifies the whole chain, pausing between chunks. It does not run
// (false) until the store file has passed its check: the older entries
// are read only then.
func (j *journalChecker) full(ctx context.Context) bool {
	if !j.db.FileChecked() {
		j.log.Warn("whole-chain verification of the electronic journal postponed: the store file has not passed its check")
		return false
	}
	start := j.clk.Now()
	head, err := j.db.VerifyJournalChunked(ctx, journalChunk, func(uint64) error {
		if !clock.Sleep(j.clk, journalPause, ctx.Done()) {
			return ctx.Err()
		}
		return nil
	})
	if ctx.Err() != nil {
		return true
	}
	if err == nil {
		err = j.db.SetCheckpoint(head)
	}
	sessions := 0
	if err == nil {
		// The start reads only the open sessions: every session record is
		// verified here.
		sessions, err = j.db.VerifySessions()
	}
	j.setAlarm(checkFull, err)
	if err == nil {
		j.log.Info("electronic journal verified", "entries", head.Seq, "sessions", sessions, "took", j.clk.Now().Sub(start).Round(time.Millisecond))
	}
	return true
}
