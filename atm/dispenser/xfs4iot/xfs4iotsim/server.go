package xfs4iotsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
)

// Paths of the endpoints.
const (
	PublisherPath = "/xfs4iot/v1.0"
	DefaultAddr   = "127.0.0.1:5846"
)

// Config configures a simulator. Units, TokenKey, Exponent, MaxNotes,
// LowThreshold, TakeDelay, StateFile, Faults and AfterSave mean what they
// mean for dispensersim.Config.
type Config struct {
	// Addr is the listen address (default 127.0.0.1:5846; "127.0.0.1:0"
	// picks a free port).
	Addr string
	// ServiceName is the last element of the service URI (default
	// "CashDispenser1").
	ServiceName string
	// Units are the cassettes loaded at first start (ignored when
	// StateFile exists). IDs must be XFS4IoT storage unit names,
	// ^unit[0-9A-Za-z]+$, all of one currency.
	Units        []dispenser.CashUnit
	MaxNotes     int // default 40
	LowThreshold int
	TokenKey     []byte // required; never logged
	Exponent     int    // currency exponent, 0-3 (2 for CNY)
	TakeDelay    time.Duration
	StateFile    string
	Faults       dispensersim.Faults
	AfterSave    func(action string)
	// DropLinkOn arms the link fault for the first command of that name
	// (see Server.DropLink).
	DropLinkOn string
	// QueueLimit is the most commands queued or running per service
	// (default 8); beyond it the acknowledge says tooManyRequests.
	QueueLimit int
	Clock      clock.Clock  // nil: real time
	Logger     *slog.Logger // nil: discard
	VendorName string       // default "cardless xfs4iotsim"
}

// takeWait bounds how long the simulated customer may leave notes at the
// exit before the take watcher gives up (only with NotesNotTaken or a
// TakeDelay longer than this).
const takeWait = 24 * time.Hour

// Server is a running XFS4IoT cash dispenser simulator: a service publisher
// and one CashDispenser service on WebSocket, wrapping a dispensersim.Sim.
type Server struct {
	cfg  Config
	log  *slog.Logger
	clk  clock.Clock
	sim  *dispensersim.Sim
	ln   net.Listener
	http *http.Server
	addr string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	queue chan *job

	mu           sync.Mutex
	conns        map[*conn]bool
	pending      int             // commands queued or running
	dropOn       string          // armed link fault
	countUnknown map[string]bool // units of a count-unknown dispense, until Reset
	takeCancel   context.CancelFunc
	closed       bool
}

// simClock adapts clock.Clock to dispensersim.Clock.
type simClock struct{ c clock.Clock }

func (s simClock) After(d time.Duration) <-chan time.Time { return s.c.NewTimer(d).C() }

// Start creates the simulated device (loading Config.StateFile if it
// exists: starting a Server on the state file of a closed one is a power
// cycle) and starts serving.
func Start(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "CashDispenser1"
	}
	if !nameSegmentRE.MatchString(cfg.ServiceName) {
		return nil, fmt.Errorf("xfs4iotsim: bad service name %q", cfg.ServiceName)
	}
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = 8
	}
	if cfg.VendorName == "" {
		cfg.VendorName = "cardless xfs4iotsim"
	}
	cur := ""
	for _, u := range cfg.Units {
		if !unitNameRE.MatchString(u.ID) {
			return nil, fmt.Errorf("xfs4iotsim: unit ID %q is not an XFS4IoT storage unit name (unit1, unit2, ...)", u.ID)
		}
		if cur != "" && u.Currency != cur {
			return nil, errors.New("xfs4iotsim: all units must hold the same currency")
		}
		cur = u.Currency
	}
	clk := clock.Or(cfg.Clock)
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sim, err := dispensersim.New(dispensersim.Config{
		Units: cfg.Units, MaxNotes: cfg.MaxNotes, LowThreshold: cfg.LowThreshold,
		TokenKey: cfg.TokenKey, Exponent: cfg.Exponent, TakeDelay: cfg.TakeDelay,
		StateFile: cfg.StateFile, AfterSave: cfg.AfterSave, Logger: logger, Clock: simClock{clk},
	})
	if err != nil {
		return nil, err
	}
	if cfg.MaxNotes == 0 {
		cfg.MaxNotes = 40
	}
	s := &Server{cfg: cfg, log: logger, clk: clk, sim: sim, conns: map[*conn]bool{},
		queue: make(chan *job, cfg.QueueLimit), dropOn: cfg.DropLinkOn, countUnknown: map[string]bool{}}
	// Units left count-unknown by the last run (read before faults apply:
	// an offline device still remembers).
	if ps, err := sim.PresentStatus(context.Background()); err == nil && !ps.CountKnown && ps.State == dispenser.PresentFailed {
		for id, n := range ps.Requested {
			if n > 0 {
				s.countUnknown[id] = true
			}
		}
	}
	sim.SetFaults(cfg.Faults)
	for _, c := range sim.Counters() {
		if !unitNameRE.MatchString(c.ID) {
			return nil, fmt.Errorf("xfs4iotsim: state file unit %q is not an XFS4IoT storage unit name", c.ID)
		}
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("xfs4iotsim: listen: %w", err)
	}
	s.ln = ln
	s.addr = ln.Addr().String()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc(PublisherPath, func(w http.ResponseWriter, r *http.Request) { s.serveWS(w, r, true) })
	mux.HandleFunc(PublisherPath+"/"+cfg.ServiceName, func(w http.ResponseWriter, r *http.Request) { s.serveWS(w, r, false) })
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("xfs4iot server stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.worker()
	}()
	s.log.Info("xfs4iot simulator listening", "publisher", s.PublisherURL(), "service", s.ServiceURL(),
		"units", len(sim.Counters()), "state_file", cfg.StateFile)
	return s, nil
}

// Addr returns the address the server listens on (host:port).
func (s *Server) Addr() string { return s.addr }

// PublisherURL returns ws://HOST:PORT/xfs4iot/v1.0.
func (s *Server) PublisherURL() string { return "ws://" + s.addr + PublisherPath }

// ServiceURL returns the cash dispenser service URI.
func (s *Server) ServiceURL() string { return s.PublisherURL() + "/" + s.cfg.ServiceName }

// Sim returns the simulated device behind the protocol, for ground truth
// in tests. Driving it directly bypasses the protocol and its events.
func (s *Server) Sim() *dispensersim.Sim { return s.sim }

// Counters returns every unit's true supply counters.
func (s *Server) Counters() []dispensersim.UnitCounters { return s.sim.Counters() }

// Stacked returns the notes physically in the stacker and at the exit.
func (s *Server) Stacked() (stacker, exit dispenser.Mix) { return s.sim.Stacked() }

// PresentStatus returns the device's record of the last dispense.
func (s *Server) PresentStatus() (dispenser.PresentStatus, error) {
	return s.sim.PresentStatus(context.Background())
}

// Faults returns the injected device faults.
func (s *Server) Faults() dispensersim.Faults { return s.sim.Faults() }

// SetFaults replaces the injected device faults at run time. A change of
// the device state (Offline) is announced with Common.StatusChangedEvent.
func (s *Server) SetFaults(f dispensersim.Faults) {
	before := s.deviceState()
	s.sim.SetFaults(f)
	if after := s.deviceState(); after != before {
		s.broadcast(encode(Header{Name: "Common.StatusChangedEvent", Type: TypeUnsolicited, Version: Version},
			map[string]any{"common": map[string]any{"device": after}}), nil, false)
	}
}

// DropLink arms the link fault for the next command named name (e.g.
// "CashDispenser.Dispense"): it acts on the device, its command events are
// sent, then its connection is closed abruptly, before its unsolicited
// events and completion. One shot; "" disarms.
func (s *Server) DropLink(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropOn = name
}

// Close stops serving and closes every connection. Queued commands are
// dropped; the device state is on disk (StateFile).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	if s.takeCancel != nil {
		s.takeCancel()
	}
	s.mu.Unlock()
	s.cancel()
	err := s.http.Close()
	for _, c := range conns {
		c.ws.CloseNow()
	}
	s.wg.Wait()
	s.log.Info("xfs4iot simulator closed", "addr", s.addr)
	return err
}

// Restart power-cycles the device: it closes s and starts a new Server on
// the same address and state file with the faults in force. Counts, notes
// and the last dispense survive; the command nonce does not.
func (s *Server) Restart() (*Server, error) {
	cfg := s.cfg
	cfg.Addr = s.addr
	cfg.Faults = s.sim.Faults()
	s.mu.Lock()
	cfg.DropLinkOn = s.dropOn
	s.mu.Unlock()
	if err := s.Close(); err != nil {
		return nil, err
	}
	var err error
	for range 50 { // the port may take a moment to be free again
		var ns *Server
		if ns, err = Start(cfg); err == nil {
			return ns, nil
		}
		if !strings.Contains(err.Error(), "listen") {
			return nil, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

// conn is one WebSocket connection.
type conn struct {
	ws        *websocket.Conn
	publisher bool
	mu        sync.Mutex
	inflight  map[int64]bool
	gone      bool
}

func (c *conn) send(b []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.ws.Write(ctx, websocket.MessageText, b)
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, publisher bool) {
	if r.URL.Path != PublisherPath && !strings.HasSuffix(r.URL.Path, "/"+s.cfg.ServiceName) {
		http.NotFound(w, r)
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept wrote the HTTP error (426 and the like)
	}
	ws.SetReadLimit(1 << 20)
	c := &conn{ws: ws, publisher: publisher, inflight: map[int64]bool{}}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.CloseNow()
		return
	}
	s.conns[c] = true
	s.mu.Unlock()
	s.log.Info("xfs4iot connection opened", "remote", r.RemoteAddr, "publisher", publisher)
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.mu.Lock()
		c.gone = true
		c.mu.Unlock()
		ws.CloseNow()
		s.log.Info("xfs4iot connection closed", "remote", r.RemoteAddr)
	}()
	for {
		typ, data, err := ws.Read(s.ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			c.send(encode(Header{Type: TypeAcknowledge, Version: Version, Status: StatusInvalidMessage}, nil))
			continue
		}
		s.receive(c, data)
	}
}

// job is an accepted command waiting for, or in, execution.
type job struct {
	c        *conn
	cmd      *command
	deadline time.Time // zero: none
}

// receive handles one incoming frame: acknowledge, then queue.
func (s *Server) receive(c *conn, data []byte) {
	cmd, ref := parseCommand(data)
	if ref == nil {
		c.mu.Lock()
		if c.inflight[cmd.RequestID] {
			ref = &refusal{Status: StatusInvalidRequestID, Name: cmd.Name, RequestID: &cmd.RequestID, Reason: "requestId in flight"}
		}
		c.mu.Unlock()
	}
	if ref == nil && s.supported(c.publisher, cmd.Name) && cmd.Version == Version {
		p := payloadFor(cmd.Name)
		if err := decodePayload(cmd.Payload, p); err != nil {
			ref = &refusal{Status: StatusInvalidMessage, Name: cmd.Name, RequestID: &cmd.RequestID, Reason: "payload: " + err.Error()}
		} else if ec, ok := p.(enumChecker); ok && !ec.enumsOK() {
			ref = &refusal{Status: StatusInvalidMessage, Name: cmd.Name, RequestID: &cmd.RequestID, Reason: "payload: value outside the standard's enumeration"}
		}
	}
	if ref == nil {
		s.mu.Lock()
		if s.pending >= s.cfg.QueueLimit {
			ref = &refusal{Status: StatusTooManyRequests, Name: cmd.Name, RequestID: &cmd.RequestID, Reason: "queue full"}
		} else {
			s.pending++
		}
		s.mu.Unlock()
	}
	if ref != nil {
		s.log.Warn("xfs4iot command refused", "name", ref.Name, "status", ref.Status, "reason", ref.Reason)
		c.send(encode(Header{Name: ref.Name, RequestID: ref.RequestID, Type: TypeAcknowledge, Version: Version, Status: ref.Status}, nil))
		return
	}
	c.mu.Lock()
	c.inflight[cmd.RequestID] = true
	c.mu.Unlock()
	// The timeout runs from acceptance: the deadline is fixed before the
	// acknowledge goes out.
	j := &job{c: c, cmd: cmd}
	if cmd.Timeout > 0 {
		j.deadline = s.clk.Now().Add(time.Duration(cmd.Timeout) * time.Millisecond)
	}
	c.send(encode(Header{Name: cmd.Name, RequestID: &cmd.RequestID, Type: TypeAcknowledge, Version: Version}, nil))
	select {
	case s.queue <- j: // never blocks: pending <= QueueLimit = cap
	case <-s.ctx.Done():
	}
}

// worker runs the commands one at a time.
func (s *Server) worker() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case j := <-s.queue:
			s.run(j)
			s.mu.Lock()
			s.pending--
			s.mu.Unlock()
		}
	}
}

// evt is an event to send.
type evt struct {
	name    string
	payload any
}

// outcome is what a command handler produced.
type outcome struct {
	events    []evt // command events (type "event"), in order
	uns       []evt // unsolicited events sent before those derived from state changes
	code      string
	desc      string
	payload   any
	afterSend func() // called once the completion went out (or was dropped)
}

func (s *Server) run(j *job) {
	c, cmd := j.c, j.cmd
	c.mu.Lock()
	gone := c.gone
	c.mu.Unlock()
	if gone {
		s.log.Info("xfs4iot command dropped: connection closed", "name", cmd.Name, "requestId", cmd.RequestID)
		return
	}
	var out outcome
	var uns [][]byte
	switch {
	case !j.deadline.IsZero() && s.clk.Now().After(j.deadline):
		out = outcome{code: "timeOut", desc: "timeout elapsed before the command started"}
	case !s.supported(c.publisher, cmd.Name):
		out = outcome{code: "unsupportedCommand", desc: cmd.Name + " is not supported by this endpoint"}
	case cmd.Version != Version:
		out = outcome{code: "unsupportedCommand", desc: "version " + cmd.Version + " of " + cmd.Name + " is not supported (only " + Version + ")"}
	case c.publisher:
		out = s.getServices()
	default:
		before := s.snapshot()
		out = s.execute(cmd)
		for _, e := range out.uns {
			uns = append(uns, s.unsolicitedMsg(e.name, e.payload))
		}
		uns = append(uns, s.unsolicited(cmd.Name, before, s.snapshot())...)
	}
	for _, e := range out.events {
		c.send(encode(Header{Name: e.name, RequestID: &cmd.RequestID, Type: TypeEvent, Version: Version}, e.payload))
	}
	s.mu.Lock()
	drop := s.dropOn != "" && s.dropOn == cmd.Name && !c.publisher
	if drop {
		s.dropOn = ""
	}
	s.mu.Unlock()
	for _, u := range uns {
		s.broadcast(u, c, drop)
	}
	if drop {
		s.log.Warn("xfs4iot link fault: connection dropped before the completion", "name", cmd.Name, "requestId", cmd.RequestID)
		c.ws.CloseNow()
	}
	c.mu.Lock()
	delete(c.inflight, cmd.RequestID)
	c.mu.Unlock()
	if !drop {
		c.send(encode(Header{Name: cmd.Name, RequestID: &cmd.RequestID, Type: TypeCompletion, Version: Version,
			CompletionCode: out.code, ErrorDescription: out.desc}, out.payload))
	}
	s.log.Info("xfs4iot command", "name", cmd.Name, "requestId", cmd.RequestID, "completionCode", out.code)
	if out.afterSend != nil {
		out.afterSend()
	}
}

// broadcast sends an unsolicited message to every service connection
// (but not to except if skip).
func (s *Server) broadcast(b []byte, except *conn, skip bool) {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		if !c.publisher && !(skip && c == except) {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.send(b)
	}
}

func (s *Server) unsolicitedMsg(name string, payload any) []byte {
	return encode(Header{Name: name, Type: TypeUnsolicited, Version: Version}, payload)
}
