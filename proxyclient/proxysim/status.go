package proxysim

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"
)

// TerminalStatus is what the proxy knows of one terminal for the bank's
// operations centre: whether it is signed on, whether it takes customers
// (and why not), and the alarms of its latest report (0800/283).
type TerminalStatus struct {
	TerminalID string    `json:"terminal_id"`
	SignedOn   bool      `json:"signed_on"`
	InService  bool      `json:"in_service"`
	Reason     string    `json:"reason,omitempty"`
	Alarms     []string  `json:"alarms"`
	Reported   time.Time `json:"reported,omitzero"` // when the alarms were last reported
}

// termStatus is the server's record of a terminal (kept across links).
type termStatus struct {
	alarms   []string
	reported time.Time
}

// setAlarms records a terminal's alarm report.
func (s *Server) setAlarms(terminalID string, alarms []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.statuses == nil {
		s.statuses = map[string]termStatus{}
	}
	s.statuses[terminalID] = termStatus{alarms: slices.Clone(alarms), reported: s.now().UTC()}
}

// Statuses returns every terminal the proxy has heard of, by terminal ID.
func (s *Server) Statuses() []TerminalStatus {
	s.mu.Lock()
	ids := map[string]bool{}
	for id := range s.links {
		ids[id] = true
	}
	for id := range s.statuses {
		ids[id] = true
	}
	s.mu.Unlock()
	var out []TerminalStatus
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range ids {
			if !yield(id) {
				return
			}
		}
	}) {
		out = append(out, s.Status(id))
	}
	return out
}

// Status returns what the proxy knows of one terminal.
func (s *Server) Status(terminalID string) TerminalStatus {
	st := TerminalStatus{TerminalID: terminalID, Alarms: []string{}}
	if l := s.link(terminalID); l != nil {
		l.mu.Lock()
		st.SignedOn = true
		st.InService = l.outOfService == ""
		st.Reason = l.outOfService
		l.mu.Unlock()
	}
	s.mu.Lock()
	if ts, ok := s.statuses[terminalID]; ok {
		st.Alarms, st.Reported = slices.Clone(ts.alarms), ts.reported
	}
	s.mu.Unlock()
	return st
}

// StatusHandler serves GET /terminals (every terminal's status, JSON) and
// GET /terminals/ID: the operations centre's view (proxysim --status ADDR,
// read with proxysim status).
func (s *Server) StatusHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /terminals", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"terminals": s.Statuses()})
	})
	mux.HandleFunc("GET /terminals/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.Status(r.PathValue("id")))
	})
	return mux
}
