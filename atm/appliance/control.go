package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/operators"
	"github.com/cardless-atm/cardless/atm/store"
)

// Status is what GET /status returns: what a monitoring system reads.
type Status struct {
	TerminalID string `json:"terminal_id"`
	InService  bool   `json:"in_service"`
	Reason     string `json:"reason,omitempty"`
	ProxyUp    bool   `json:"proxy_signed_on"`
	HostUp     bool   `json:"host_connected"`
	SAFPending int    `json:"saf_pending"` // -1 when the store cannot be read (see Error)
	Error      string `json:"error,omitempty"`
	// JournalAlarm is set while the electronic journal does not verify
	// (the background verification's last result).
	JournalAlarm string         `json:"journal_alarm,omitempty"`
	Session      *SessionStatus `json:"session,omitempty"`
}

// SessionStatus is the current session without anything sensitive.
type SessionStatus struct {
	ID        string    `json:"id"` // first 8 digits of the nonce only
	State     string    `json:"state"`
	Amount    int64     `json:"amount"`
	Paid      int64     `json:"paid"`
	RC        string    `json:"rc,omitempty"`
	Expires   time.Time `json:"expires"`
	QR        string    `json:"qr,omitempty"` // shown on screen anyway
	Operator  bool      `json:"operator,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Completed bool      `json:"finished"`
}

// ServeControl serves the appliance's control and status endpoint on a
// loopback address until ctx is done. It refuses any other address.
//
//	GET  /status         link, service and session status (JSON)
//	GET  /screen.png     the customer's screen as last rendered (headless)
//	POST /withdraw?amount=N   the customer chose an amount (minor units) *
//	POST /cancel         the customer pressed Cancel *
//	GET  /metrics        Prometheus metrics (docs/control.md)
//	GET  /journal/verify checks the whole electronic journal's hash chain (JSON: ok, entries or error)
//	                     (the three /journal routes answer 503 until the store file's background
//	                     check after a start has passed: they read older entries)
//	GET  /journal/export?from=SEQ&to=SEQ  a journal segment (JSON lines, docs/control.md)
//	GET  /journal/find?session=ID|rrn=RRN|customer=ID  a dispute's entries
//	GET  /totals?day=YYYY-MM-DD  cash paid that day and the cassette counters, for balancing
//	GET  /operator/in-doubt      sessions waiting for an operator's count  (+)
//	POST /operator/settle?session=ID&paid=N   record the count  (+)
//	POST /operator/counters/adopt   after counting the cassettes, adopt the
//	                     device's counts when they differed from the ATM's at start  (+)
//	POST /operator/dispenser/reset  reset the dispenser after a fault  (+)
//	POST /operator/out-of-service, /operator/in-service  (+)
//	POST /operator/replenish        cassettes counted and put in (JSON) -> report  (+)
//	POST /operator/balance?day=YYYY-MM-DD  daily balancing against the host -> report  (+)
//
// (*) only with control.customerInput: simulated customer input for headless
// runs and the laptop simulator.
// (+) operator routes: HTTP Basic credentials of an operator set up with
// atmctl operator add (operatorOnly); the journal names that operator.
//
// A request whose Host header is not a loopback name or address gets 421
// (a browser on the appliance steered here by DNS rebinding), and a
// cross-origin POST from a browser gets 403 (http.CrossOriginProtection).
func (a *Appliance) ServeControl(ctx context.Context, addr string, ready func(net.Addr)) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("control address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("control address %q: must be a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(ln.Addr())
	}
	srv := &http.Server{Handler: loopbackOnly(a.controlMux()), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (a *Appliance) controlMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, a.Status()) })
	mux.HandleFunc("GET /screen.png", func(w http.ResponseWriter, r *http.Request) {
		var png []byte
		if a.screen != nil {
			png = a.screen.PNG()
		}
		if png == nil {
			http.Error(w, "no screen rendered", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(png)
	})
	mux.HandleFunc("POST /withdraw", func(w http.ResponseWriter, r *http.Request) {
		if !a.customerInput(w) {
			return
		}
		amount, err := strconv.ParseInt(r.URL.Query().Get("amount"), 10, 64)
		if err != nil {
			writeJSON(w, 400, map[string]string{"error": "amount must be an integer in minor units"})
			return
		}
		s, err := a.Core.RequestWithdrawal(r.Context(), amount)
		var cp *atm.CannotPayError
		switch {
		case errors.As(err, &cp):
			writeJSON(w, 409, map[string]any{"error": cp.Error(), "reason": cp.Reason, "nearest": cp.Nearest})
		case err != nil:
			writeJSON(w, 503, map[string]string{"error": err.Error()})
		default:
			writeJSON(w, 200, sessionStatus(s))
		}
	})
	mux.HandleFunc("POST /cancel", func(w http.ResponseWriter, r *http.Request) {
		if !a.customerInput(w) {
			return
		}
		a.Backend.Cancel()
		writeJSON(w, 200, a.Status())
	})
	mux.HandleFunc("GET /totals", func(w http.ResponseWriter, r *http.Request) {
		day := r.URL.Query().Get("day")
		if day == "" {
			day = a.Core.Day(a.Clock.Now())
		}
		if _, err := time.Parse(time.DateOnly, day); err != nil {
			writeJSON(w, 400, map[string]string{"error": "day must be YYYY-MM-DD"})
			return
		}
		t, err := a.Totals(day)
		if err != nil {
			writeJSON(w, 500, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, 200, t)
	})
	mux.Handle("GET /operator/in-doubt", a.operatorOnly(func(w http.ResponseWriter, r *http.Request, operator string) {
		list, err := a.Core.InDoubt()
		if err != nil {
			writeJSON(w, 500, map[string]string{"error": err.Error()})
			return
		}
		out := []inDoubt{}
		for _, s := range list {
			out = append(out, inDoubt{ID: s.ID, Amount: s.Amount, Dispensed: s.Dispensed, Reason: s.Reason, Updated: s.Updated})
		}
		writeJSON(w, 200, out)
	}))
	mux.Handle("POST /operator/counters/adopt", a.operatorOnly(func(w http.ResponseWriter, r *http.Request, operator string) {
		if err := a.Core.AdoptDeviceCounters(r.Context(), operator); err != nil {
			writeJSON(w, 409, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, 200, map[string]string{"result": "the device's counts are the ATM's cassette counters"})
	}))
	mux.Handle("POST /operator/dispenser/reset", a.operatorOnly(func(w http.ResponseWriter, r *http.Request, operator string) {
		err := a.Core.ResetDispenser(r.Context(), operator)
		switch {
		case errors.Is(err, atm.ErrBusy), errors.Is(err, atm.ErrSettleFirst), errors.Is(err, atm.ErrOperatorBusy):
			writeJSON(w, 409, map[string]string{"error": err.Error()})
		case errors.Is(err, atm.ErrNoReset):
			writeJSON(w, 501, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(w, 500, map[string]string{"error": err.Error()})
		default:
			writeJSON(w, 200, a.Status())
		}
	}))
	a.supervisorRoutes(mux) // supervisor.go
	mux.Handle("POST /operator/settle", a.operatorOnly(func(w http.ResponseWriter, r *http.Request, operator string) {
		q := r.URL.Query()
		paid, err := strconv.ParseInt(q.Get("paid"), 10, 64)
		if err != nil {
			writeJSON(w, 400, map[string]string{"error": "paid must be an integer in minor units"})
			return
		}
		id, code, err := a.inDoubtID(q.Get("session"))
		if err != nil {
			writeJSON(w, code, map[string]string{"error": err.Error()})
			return
		}
		s, err := a.Core.Settle(r.Context(), id, paid, operator)
		if err != nil {
			writeJSON(w, 409, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, 200, sessionStatus(s))
	}))
	if a.metrics != nil {
		mux.Handle("GET /metrics", a.metrics.handler())
	}
	mux.HandleFunc("GET /journal/export", func(w http.ResponseWriter, r *http.Request) {
		var from, to uint64
		for name, v := range map[string]*uint64{"from": &from, "to": &to} {
			if q := r.URL.Query().Get(name); q != "" {
				n, err := strconv.ParseUint(q, 10, 64)
				if err != nil {
					writeJSON(w, 400, map[string]string{"error": name + " must be a journal sequence number"})
					return
				}
				*v = n
			}
		}
		// Written to a buffer first: a segment that fails half-way must
		// not reach the caller as a truncated file with a 200.
		var buf bytes.Buffer
		if _, _, err := a.Store.ExportJournal(&buf, a.Config.TerminalID, from, to); err != nil {
			writeJSON(w, storeErrorCode(err), map[string]string{"error": err.Error()})
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Write(buf.Bytes())
	})
	mux.HandleFunc("GET /journal/find", func(w http.ResponseWriter, r *http.Request) {
		q := store.JournalQuery{Session: r.URL.Query().Get("session"), RRN: r.URL.Query().Get("rrn"), Customer: r.URL.Query().Get("customer")}
		if q.Empty() {
			writeJSON(w, 400, map[string]string{"error": "give session, rrn or customer"})
			return
		}
		var found []store.Entry
		err := a.Store.View(func(tx *store.Tx) (err error) { found, err = tx.FindJournal(q); return err })
		if err != nil {
			writeJSON(w, storeErrorCode(err), map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, 200, map[string]any{"entries": found})
	})
	mux.HandleFunc("GET /journal/verify", func(w http.ResponseWriter, r *http.Request) {
		head, err := a.Store.VerifyJournalChunked(r.Context(), journalChunk, nil)
		if err == nil {
			err = a.Store.SetCheckpoint(head)
		}
		if err != nil {
			writeJSON(w, storeErrorCode(err), map[string]any{"ok": false, "error": err.Error()})
			return
		}
		writeJSON(w, 200, map[string]any{"ok": true, "entries": head.Seq})
	})
	return mux
}

// storeErrorCode is the HTTP status for a failed journal read: 503 while
// the store file's background check has not yet passed (the older
// entries are read only after it: store.ErrFileUnchecked), else 500.
func storeErrorCode(err error) int {
	if errors.Is(err, store.ErrFileUnchecked) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// customerInput refuses the simulated-customer endpoints unless the
// configuration enables them.
func (a *Appliance) customerInput(w http.ResponseWriter) bool {
	if a.Config.Control.CustomerInput {
		return true
	}
	writeJSON(w, http.StatusForbidden, map[string]string{"error": "customer input through the control endpoint is disabled (control.customerInput)"})
	return false
}

// Status reports links, service and the current session.
func (a *Appliance) Status() Status {
	v := a.Core.View()
	l := a.Links()
	st := Status{TerminalID: a.Config.TerminalID, InService: v.InService, Reason: v.Reason,
		ProxyUp: l.ProxyUp(), HostUp: l.HostUp()}
	if st.InService && !a.Proxy.Status().Routed {
		// The core takes customers, but the proxy has not been told yet
		// (tellProxy): phones would still get 91.
		st.InService, st.Reason = false, "proxy_not_told"
	}
	var err error
	if st.SAFPending, err = a.Core.PendingSAF(); err != nil {
		st.SAFPending, st.Error = -1, "store: "+err.Error()
	}
	if v.Session != nil {
		st.Session = sessionStatus(v.Session)
	}
	if a.journal != nil {
		st.JournalAlarm = a.journal.Alarm()
	}
	return st
}

func sessionStatus(s *atm.Session) *SessionStatus {
	ss := &SessionStatus{ID: s.ID[:8], State: s.State.String(), Amount: s.Amount, Paid: s.Paid, RC: s.ResponseCode,
		Expires: s.Expires, Operator: s.Operator, Reason: s.Reason, Completed: s.State.Terminal()}
	if s.State == atm.StateAwaitingPhone {
		ss.QR = s.QR
	}
	return ss
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Totals is the terminal's side of daily balancing: the cash it paid out on
// a day (in the configured dayZone, by the time of each withdrawal's
// authorization request, as the host books it) and its cassette counters, to compare with the host's totals
// for the terminal (hostsim totals) and with the cassettes' physical count.
type Totals struct {
	TerminalID string       `json:"terminal_id"`
	Day        string       `json:"day"`
	Paid       int64        `json:"paid"` // minor units
	Currency   string       `json:"currency"`
	Units      []UnitTotals `json:"units"`
}

// UnitTotals are one cash unit's counters (notes).
type UnitTotals struct {
	UnitID       string `json:"unit_id"`
	Denomination int64  `json:"denomination"` // minor units
	Currency     string `json:"currency"`
	Loaded       int64  `json:"loaded"`
	Dispensed    int64  `json:"dispensed"`
	Rejected     int64  `json:"rejected"`
	Retracted    int64  `json:"retracted"`
	Remaining    int64  `json:"remaining"`
}

// Totals reads the day's totals from the store.
func (a *Appliance) Totals(day string) (Totals, error) {
	t := Totals{TerminalID: a.Config.TerminalID, Day: day, Currency: a.Config.CurrencyAlpha}
	err := a.Store.View(func(tx *store.Tx) error {
		var err error
		if t.Paid, err = tx.DailyTotal(day); err != nil {
			return err
		}
		units, err := tx.UnitCounters()
		for _, u := range units {
			t.Units = append(t.Units, UnitTotals{UnitID: u.UnitID, Denomination: u.Denomination, Currency: u.Currency,
				Loaded: u.Loaded, Dispensed: u.Dispensed, Rejected: u.Rejected, Retracted: u.Retracted, Remaining: u.Remaining})
		}
		return err
	})
	return t, err
}

// inDoubt is a session waiting for an operator. Its full ID is shown: the
// nonce of a finished session is no longer a secret (it is single-use), and
// the endpoint listens on loopback only.
type inDoubt struct {
	ID        string    `json:"id"`
	Amount    int64     `json:"amount"`
	Dispensed int64     `json:"dispensed"`
	Reason    string    `json:"reason"`
	Updated   time.Time `json:"updated"`
}

// operatorOnly guards an operator route: the request must carry an
// operator's ID and PIN or passphrase (HTTP Basic authentication over the
// loopback connection), checked against dataDir/operators.json; the
// handler gets the authenticated operator, whom the journal names. Wrong
// credentials get 401, a locked-out operator 423, an appliance with no
// operator set up 503.
func (a *Appliance) operatorOnly(h func(w http.ResponseWriter, r *http.Request, operator string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="cardless-atm operator"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "operator credentials required (HTTP Basic: operator ID and PIN or passphrase)"})
			return
		}
		switch err := a.Operators.Check(id, secret); {
		case err == nil:
		case errors.Is(err, operators.ErrLocked):
			a.Log.Warn("operator locked out", "operator", id, "route", r.URL.Path)
			writeJSON(w, http.StatusLocked, map[string]string{"error": err.Error()})
			return
		case errors.Is(err, operators.ErrNone):
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no operator is set up: atmctl operator add"})
			return
		default:
			a.Log.Warn("operator authentication failed", "operator", id, "route", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Basic realm="cardless-atm operator"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "operator ID or PIN not accepted"})
			return
		}
		if q := r.URL.Query().Get("operator"); q != "" && q != id {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "operator in the query differs from the authenticated one"})
			return
		}
		h(w, r, id)
	})
}

// inDoubtID resolves the session named in a settlement: its full ID, or a
// prefix of at least 8 characters (the ID /status shows) that names exactly
// one session in doubt. The status code goes with the error: 404 when
// nothing matches, 409 when the prefix is ambiguous.
func (a *Appliance) inDoubtID(given string) (string, int, error) {
	given = strings.ToUpper(strings.TrimSpace(given))
	if len(given) < 8 {
		return "", 400, errors.New("session must be the session ID or its first 8 or more characters (GET /operator/in-doubt lists the full IDs)")
	}
	list, err := a.Core.InDoubt()
	if err != nil {
		return "", 500, err
	}
	var found []string
	for _, s := range list {
		if s.ID == given {
			return given, 0, nil
		}
		if strings.HasPrefix(s.ID, given) {
			found = append(found, s.ID)
		}
	}
	switch len(found) {
	case 1:
		return found[0], 0, nil
	case 0:
		return "", 404, fmt.Errorf("no session in doubt has the ID %s (GET /operator/in-doubt lists the full IDs)", given)
	}
	return "", 409, fmt.Errorf("%d sessions in doubt begin with %s: give more of the ID (GET /operator/in-doubt lists the full IDs)", len(found), given)
}
