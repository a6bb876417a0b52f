package hostsim

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cardless-atm/cardless/atm/host/bindapi"
	"github.com/cardless-atm/cardless/internal/connlimit"
)

// The bind endpoint: the bank's side of phone binding as a bank app
// reaches it (docs/binding.md), JSON over HTTP. A bank serves it from its
// mobile-banking back end over TLS behind the app's own authentication;
// the simulator has no TLS, so it listens on loopback only and, like the
// ATM's control endpoint, answers only requests that name a loopback host
// and carry JSON (a web page cannot post to it cross-origin).

// ErrNotLoopback refuses a bind endpoint address that is not on loopback.
var ErrNotLoopback = errors.New("hostsim: the bind endpoint has no TLS and listens on loopback only")

// StartBind serves the bind endpoint on addr (a loopback host:port; port
// 0 picks one: BindAddr). It fails if the server is closed or already
// serves it.
func (s *Server) StartBind(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("hostsim: bind endpoint address %q: %w", addr, err)
	}
	if !loopbackHost(host) {
		return fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.bindSrv != nil {
		return errors.New("hostsim: bind endpoint already started, or the server is closed")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("hostsim: bind endpoint: %w", err)
	}
	lim, _ := s.cfg.Limits.Limits() // checked by Validate
	s.bindLn = &gatedListener{Listener: ln, gate: connlimit.NewGate(lim), log: s.log}
	s.bindSrv = &http.Server{
		Handler:           s.bindHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
	}
	srv, bl := s.bindSrv, s.bindLn
	go func() { _ = srv.Serve(bl) }()
	s.log.Info("bind endpoint listening (simulated SMS inbox at "+bindapi.PathSimSMS+")", "addr", ln.Addr().String())
	return nil
}

// BindAddr returns the bind endpoint's address, or "" before StartBind.
func (s *Server) BindAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bindLn == nil {
		return ""
	}
	return s.bindLn.Addr().String()
}

// bindHandler routes the bind endpoint, behind the loopback guard.
func (s *Server) bindHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+bindapi.PathStart, func(w http.ResponseWriter, r *http.Request) {
		s.serveBind(w, r, func(body []byte) (bindapi.Answer, error) {
			req, err := bindapi.ParseStart(body)
			if err != nil {
				return badBind(err), nil
			}
			pinBlock, _ := hex.DecodeString(req.PINBlock) // checked by ParseStart
			return s.BindStart(req.Customer, req.Device, pinBlock)
		})
	})
	mux.HandleFunc("POST "+bindapi.PathConfirm, func(w http.ResponseWriter, r *http.Request) {
		s.serveBind(w, r, func(body []byte) (bindapi.Answer, error) {
			req, err := bindapi.ParseConfirm(body)
			if err != nil {
				return badBind(err), nil
			}
			return s.BindConfirm(req.Customer, req.Device, req.Code)
		})
	})
	mux.HandleFunc("GET "+bindapi.PathSimSMS, func(w http.ResponseWriter, r *http.Request) {
		to := r.URL.Query().Get("to")
		if err := bindapi.CheckCustomer(to); err != nil {
			writeJSON(w, http.StatusBadRequest, badBind(err))
			return
		}
		msgs := s.SMS(to)
		if msgs == nil {
			msgs = []bindapi.SMS{}
		}
		writeJSON(w, http.StatusOK, bindapi.Inbox{To: to, Messages: msgs})
	})
	csrf := http.NewCrossOriginProtection()
	guarded := csrf.Handler(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Host
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		if !loopbackHost(h) {
			writeJSON(w, http.StatusMisdirectedRequest, badBind(errors.New("the Host must be a loopback address (localhost, 127.0.0.0/8, ::1)")))
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// serveBind reads a JSON request body (at most bindapi.MaxBody bytes)
// and answers with what do returns.
func (s *Server) serveBind(w http.ResponseWriter, r *http.Request, do func(body []byte) (bindapi.Answer, error)) {
	if !s.track() {
		writeJSON(w, http.StatusServiceUnavailable, bindapi.Answer{Result: bindapi.Failed, Error: "the host is shutting down"})
		return
	}
	defer s.wg.Done()
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, badBind(errors.New("the body must be application/json")))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, bindapi.MaxBody))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, badBind(fmt.Errorf("the body must be at most %d bytes", bindapi.MaxBody)))
		return
	}
	ans, err := do(body)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, ans)
		return
	}
	writeJSON(w, statusOf(ans.Result), ans)
}

// statusOf is the HTTP status of an answer (docs/binding.md); a client
// acts on the answer's result, the status only summarises it.
func statusOf(result string) int {
	switch result {
	case bindapi.CodeSent, bindapi.AlreadyBound, bindapi.Bound:
		return http.StatusOK
	case bindapi.BadRequest:
		return http.StatusBadRequest
	case bindapi.Refused, bindapi.WrongCode, bindapi.TooManyTries:
		return http.StatusForbidden
	case bindapi.NoCode:
		return http.StatusNotFound
	case bindapi.CodeExpired:
		return http.StatusGone
	case bindapi.TooManyCodes:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	if a, ok := v.(bindapi.Answer); ok {
		v = withMeaning(a)
	}
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"result":"error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// loopbackHost reports whether host (no port) names the loopback
// interface.
func loopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// gatedListener caps the bind endpoint's connections in total and per
// source address (Config.Limits), as the ISO 8583 listener does.
type gatedListener struct {
	net.Listener
	gate *connlimit.Gate
	log  *slog.Logger
}

func (l *gatedListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, err := l.gate.Admit(nc)
		if err != nil {
			l.log.Warn("bind endpoint connection refused", "remote", nc.RemoteAddr().String(), "reason", err)
			nc.Close()
			continue
		}
		return &gatedConn{Conn: nc, release: release}, nil
	}
}

type gatedConn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *gatedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
