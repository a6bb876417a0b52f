package atm

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm/store"
)

// SearchJournal returns the newest journal entries (at most limit, in
// order, oldest first) of the session whose ID is or begins with session
// (at least 8 characters: the ID the screens show) and stamped on day
// (YYYY-MM-DD in Config.DayZone); an empty session or day does not
// filter. It reads the live journal (archived days are in the exported
// segments), on the caller's goroutine.
func (a *ATM) SearchJournal(session, day string, limit int) ([]store.Entry, error) {
	session = strings.ToUpper(strings.TrimSpace(session))
	if session != "" && len(session) < 8 {
		return nil, errors.New("atm: journal search: give the session ID or its first 8 or more characters")
	}
	if limit <= 0 {
		return nil, errors.New("atm: journal search: limit must be positive")
	}
	var from, to time.Time
	if day != "" {
		d, err := time.ParseInLocation(time.DateOnly, day, a.cfg.DayZone)
		if err != nil {
			return nil, fmt.Errorf("atm: journal search: day %q is not YYYY-MM-DD", day)
		}
		from, to = d, d.AddDate(0, 0, 1)
	}
	var out []store.Entry
	err := a.scanJournal(func(e store.Entry) error {
		if session != "" && !strings.HasPrefix(e.SessionID, session) {
			return nil
		}
		if day != "" && (e.Time.Before(from) || !e.Time.Before(to)) {
			return nil
		}
		if len(out) == limit {
			out = append(out[1:], e)
		} else {
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// journalScanChunk is how many journal entries one read transaction of
// scanJournal reads: a long read transaction would hold back the writers'
// growth of the file (bbolt remaps it only when no reader is open), and
// with them the customers' commits.
var journalScanChunk = 5000

// errChunkDone ends one read transaction of scanJournal.
var errChunkDone = errors.New("atm: journal chunk read")

// scanJournal calls fn for every entry of the live journal, in order, in
// read transactions of journalScanChunk entries; an error from fn stops
// it and is returned.
func (a *ATM) scanJournal(fn func(store.Entry) error) error {
	var next uint64
	for {
		n := 0
		err := a.db.View(func(tx *store.Tx) error {
			return tx.JournalRange(next, func(e store.Entry) error {
				if n == journalScanChunk {
					return errChunkDone
				}
				n++
				next = e.Seq + 1
				return fn(e)
			})
		})
		switch {
		case errors.Is(err, errChunkDone):
			continue
		case err != nil:
			return err
		}
		return nil
	}
}
