package store

import (
	"errors"
	"strings"
)

// JournalQuery selects the journal entries of a dispute: every entry of
// each session that one of its entries ties to the query (the session ID,
// the host's retrieval reference number in the entry's "rrn", or the
// customer in "customer", which the journal holds masked), plus matching
// entries that belong to no session. Empty fields match nothing.
type JournalQuery struct {
	Session  string
	RRN      string
	Customer string // a customer ID or its masked form (****1234)
}

// MaskCustomer masks a customer ID as the journal does (the last four
// digits); an already masked one is returned as it is.
func MaskCustomer(id string) string {
	if strings.Contains(id, "*") {
		return id
	}
	if len(id) <= 4 {
		return "****"
	}
	return "****" + id[len(id)-4:]
}

// Empty reports whether the query names nothing.
func (q JournalQuery) Empty() bool { return q.Session == "" && q.RRN == "" && q.Customer == "" }

// Matches reports whether e itself ties to the query.
func (q JournalQuery) Matches(e Entry) bool {
	switch {
	case q.Session != "" && e.SessionID == q.Session:
		return true
	case q.RRN != "" && e.Data["rrn"] == q.RRN:
		return true
	case q.Customer != "" && e.Data["customer"] != "" && e.Data["customer"] == MaskCustomer(q.Customer):
		return true
	}
	return false
}

// JournalMatcher runs a query over entries in two passes: Collect every
// entry once, then Select keeps the ones of the matched sessions.
type JournalMatcher struct {
	Q        JournalQuery
	sessions map[string]bool
}

// Collect notes the sessions e ties to the query (first pass).
func (m *JournalMatcher) Collect(e Entry) {
	if m.sessions == nil {
		m.sessions = map[string]bool{}
	}
	if m.Q.Matches(e) && e.SessionID != "" {
		m.sessions[e.SessionID] = true
	}
}

// Select reports whether e belongs in the answer (second pass).
func (m *JournalMatcher) Select(e Entry) bool {
	return m.sessions[e.SessionID] && e.SessionID != "" || e.SessionID == "" && m.Q.Matches(e)
}

// FindJournal returns the live journal's entries for q, in order.
func (tx *Tx) FindJournal(q JournalQuery) ([]Entry, error) {
	if q.Empty() {
		return nil, errors.New("store: a journal query needs a session, an RRN or a customer")
	}
	m := &JournalMatcher{Q: q}
	if err := tx.JournalRange(0, func(e Entry) error { m.Collect(e); return nil }); err != nil {
		return nil, err
	}
	var out []Entry
	err := tx.JournalRange(0, func(e Entry) error {
		if m.Select(e) {
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
