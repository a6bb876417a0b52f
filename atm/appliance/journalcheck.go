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
	// verifies again, whatever the checks since the checkpoint say.
	alarmFull, alarmSince string
}

// Alarm returns the standing verification failure ("" when none).
func (j *journalChecker) Alarm() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.alarmFull != "" {
		return j.alarmFull
	}
	return j.alarmSince
}

func (j *journalChecker) setAlarm(full bool, err error) {
	msg, what := "", "since the checkpoint"
	if err != nil {
		msg = err.Error()
	}
	j.mu.Lock()
	if full {
		j.alarmFull, what = msg, "whole chain"
	} else {
		j.alarmSince = msg
	}
	j.mu.Unlock()
	if err != nil {
		j.log.Error("ALARM electronic journal does not verify ("+what+"): keep the store file for investigation", "err", err)
	}
}

func (j *journalChecker) run(ctx context.Context) error {
	inc := j.clk.NewTimer(JournalCheckEvery)
	defer inc.Stop()
	full := j.clk.NewTimer(JournalFullCheckFirst)
	defer full.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-inc.C():
			j.incremental()
			inc.Reset(JournalCheckEvery)
		case <-full.C():
			j.full(ctx)
			full.Reset(JournalFullCheckEvery)
		}
	}
}

// incremental verifies what follows the checkpoint and advances it.
func (j *journalChecker) incremental() {
	head, err := j.db.VerifyJournalSince()
	if err == nil {
		err = j.db.SetCheckpoint(head)
	}
	j.setAlarm(false, err)
}

// full verifies the whole chain, pausing between chunks.
func (j *journalChecker) full(ctx context.Context) {
	start := j.clk.Now()
	head, err := j.db.VerifyJournalChunked(ctx, journalChunk, func(uint64) error {
		if !clock.Sleep(j.clk, journalPause, ctx.Done()) {
			return ctx.Err()
		}
		return nil
	})
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		err = j.db.SetCheckpoint(head)
	}
	j.setAlarm(true, err)
	if err == nil {
		j.log.Info("electronic journal verified", "entries", head.Seq, "took", j.clk.Now().Sub(start).Round(time.Millisecond))
	}
}
