package hostlink

import (
	"context"
	"errors"
	"fmt"
	"github.com/cardless-atm/cardless/atm/host"
	"github.com/cardless-atm/cardless/atm/isolink"
	"github.com/cardless-atm/cardless/atm/keepalive"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/cardless-atm/cardless/atm/backoff"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
)

// Keys is the host-link key set: static keys loaded in the ATM's security
// module (hsm.HostMAC MACs every message, network management included;
// hsm.HostData encrypts field 120).
var Keys = wire.KeySet{NetMgmtMAC: hsm.HostMAC, MAC: hsm.HostMAC, Data: hsm.HostData}

// Defaults of the optional Config fields.
const (
	DefaultSendTimeout  = 30 * time.Second
	DefaultEchoInterval = 30 * time.Second
	DefaultMinBackoff   = 500 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
)

// Config configures a Client.
type Config struct {
	// Addr is the host's host:port.
	Addr string
	// TerminalID is this ATM's ID (field 41), 1-8 characters.
	TerminalID string
	// AcquirerID (field 32, up to 11 digits) is optional.
	AcquirerID string
	// TPDU, when set, is the 5-byte TPDU written before every message
	// (wire.Framer).
	TPDU []byte
	// HSM holds hsm.HostMAC and hsm.HostData.
	HSM hsm.Module
	// SendTimeout bounds the wait for an answer (DefaultSendTimeout when
	// zero). A context deadline that comes sooner wins.
	SendTimeout time.Duration
	// Logger receives the link's log (MTI, STAN and response codes only);
	// nil discards it.
	Logger *slog.Logger
	// Clock is the appliance's clock (transmission times, reconnect
	// backoff); nil means the system clock.
	Clock clock.Clock

	// EchoInterval is how long the link may stay idle before an echo (0800
	// 301) is sent; DefaultEchoInterval when zero.
	EchoInterval time.Duration
	// Anchor reports the ATM store's newest journal sequence number and
	// last allocated STAN, sent at every sign-on (field 48, wire.Anchor) so
	// that the host can notice a store put back to an older copy. Required.
	Anchor func() (wire.Anchor, error)
	// MinBackoff and MaxBackoff bound the reconnection delay
	// (atm/backoff): it doubles after every failed attempt, is drawn from
	// the upper half of that step, and never exceeds MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// OnChange, when set, is called (on the link's goroutine, with no lock
	// held; it must not block) after the link came up or went down, so
	// that the ATM goes in or out of service at once (atm.ATM.LinksChanged).
	OnChange func()
}

// ErrRollback: the host refused the sign-on because it has recorded a
// newer journal sequence for this terminal than the store reports (the
// store was put back to an older copy).
var ErrRollback = errors.New("hostlink: the host has seen a newer journal of this terminal")

// Client is the ATM's link to the bank host: one persistent connection,
// signed on (0800 001) after every connect, kept alive with echoes, and
// re-established with backoff after any loss. It is safe for concurrent use.
type Client struct {
	cfg   Config
	log   *slog.Logger
	codec *wire.Codec

	mu   sync.Mutex
	conn *connection.Connection // signed on, or nil

	netSTAN atomic.Uint32
	written sync.Map // request ID -> *atomic.Bool: some byte of it went out

	closeOnce sync.Once
	closed    chan struct{}
}

// New validates cfg and returns a Client. Nothing connects until Run.
func New(cfg Config) (*Client, error) {
	var errs []error
	if cfg.Addr == "" {
		errs = append(errs, errors.New("Addr is required"))
	}
	if cfg.Anchor == nil {
		errs = append(errs, errors.New("Anchor is required"))
	}
	if cfg.TerminalID == "" || len(cfg.TerminalID) > 8 {
		errs = append(errs, fmt.Errorf("TerminalID %q must be 1-8 characters", cfg.TerminalID))
	}
	if len(cfg.AcquirerID) > 11 || !wire.IsDigits(cfg.AcquirerID) {
		errs = append(errs, fmt.Errorf("AcquirerID %q must be up to 11 digits", cfg.AcquirerID))
	}
	if wire.CheckTPDU(cfg.TPDU) != nil {
		errs = append(errs, errors.New("TPDU must be 5 bytes starting with 0x60"))
	}
	if cfg.HSM == nil {
		errs = append(errs, errors.New("HSM is required"))
	}
	if cfg.SendTimeout < 0 || cfg.EchoInterval < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("hostlink: config: %w", err)
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.EchoInterval == 0 {
		cfg.EchoInterval = DefaultEchoInterval
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	cfg.Clock = clock.Or(cfg.Clock)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, log: log.With("link", "host", "terminal", cfg.TerminalID), closed: make(chan struct{})}
	c.codec = &wire.Codec{
		Framer:    wire.Framer{TPDU: cfg.TPDU},
		Protector: wire.NewProtector(cfg.HSM, Keys),
		OnReject: func(mti, stan string, err error) {
			c.log.Warn("host message rejected", "mti", mti, "stan", stan, "err", err)
		},
	}
	c.netSTAN.Store(uint32(rand.IntN(1000000)))
	return c, nil
}

// changed tells Config.OnChange that Connected changed.
func (c *Client) changed() {
	if c.cfg.OnChange != nil {
		c.cfg.OnChange()
	}
}

// Connected reports whether the link is up and signed on.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

// Close stops Run and closes the connection. It is safe to call more than
// once and without Run.
func (c *Client) Close() {
	c.closeOnce.Do(func() { close(c.closed) })
	c.mu.Lock()
	conn := c.conn
	c.conn = nil
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// Run keeps the link up until ctx ends (it returns ctx.Err()) or Close is
// called (it returns nil): connect, sign on, wait for the connection to
// drop, back off with jitter, and again.
func (c *Client) Run(ctx context.Context) error {
	retry := backoff.Backoff{Policy: backoff.Policy{Min: c.cfg.MinBackoff, Max: c.cfg.MaxBackoff}}
	for {
		select {
		case <-c.closed:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		conn, idle, err := c.connect(ctx)
		if err != nil {
			c.log.Warn("host link: connect failed", "addr", c.cfg.Addr, "err", err)
		} else {
			retry.Reset()
			go idle.Run(conn.Done(), func() { c.echo(ctx, conn) })
			c.mu.Lock()
			c.conn = conn
			c.mu.Unlock()
			c.log.Info("host link: signed on", "addr", c.cfg.Addr)
			c.changed()
			select {
			case <-conn.Done():
				c.log.Warn("host link: connection lost")
			case <-c.closed:
			case <-ctx.Done():
			}
			c.mu.Lock()
			if c.conn == conn {
				c.conn = nil
			}
			c.mu.Unlock()
			conn.Close()
			c.changed()
		}
		wait := retry.Next()
		c.log.Info("host link: reconnecting", "in", wait)
		t := c.cfg.Clock.NewTimer(wait)
		select {
		case <-t.C():
		case <-c.closed:
			t.Stop()
			return nil
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// connect dials and signs on. idle tracks the connection's writes for
// the echo (keepalive, on the appliance's clock; the library's own idle
// timer, on the system clock, has no PingHandler).
func (c *Client) connect(ctx context.Context) (conn *connection.Connection, idle *keepalive.Idle, err error) {
	idle = keepalive.New(c.cfg.Clock, c.cfg.EchoInterval)
	conn, err = connection.New(c.cfg.Addr, wire.Spec, nil, nil,
		connection.SetMessageReader(c.codec),
		connection.SetMessageWriter(writeTracker{c, idle}),
		connection.SetRequestIDGenerator(requestID{}),
		connection.SendTimeout(c.cfg.SendTimeout),
		connection.ConnectTimeout(c.cfg.SendTimeout),
		connection.InboundMessageHandler(func(_ *connection.Connection, m *iso8583.Message) {
			c.log.Warn("host link: unmatched message (late answer?)", "mti", wire.MTI(m), "stan", wire.STAN(m))
		}),
		connection.ErrorHandler(func(err error) { c.log.Debug("host link: connection error", "err", err) }),
	)
	if err != nil {
		return nil, nil, err
	}
	if err := conn.Connect(); err != nil {
		return nil, nil, err
	}
	mine, err := c.cfg.Anchor()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("sign-on: anchor: %w", err)
	}
	ans, err := c.netMgmtWith(ctx, conn, wire.NetMgmt{NetMgmtCode: wire.NetSignOn, AdditionalData: mine.String()})
	if err != nil {
		conn.Close()
		if ans.ResponseCode == wire.RCSecurityViolation {
			host, _ := wire.ParseAnchor(ans.AdditionalData)
			c.log.Error("ALARM the host refused the sign-on: it has seen this terminal further on than this store is; the store may have been put back to an older copy",
				"store_journal", mine.JournalSeq, "host_journal", host.JournalSeq, "store_stan", mine.STAN, "host_stan", host.STAN)
			return nil, nil, fmt.Errorf("sign-on: %w (journal %d, STAN %s here; %d, %s at the host)", ErrRollback, mine.JournalSeq, mine.STAN, host.JournalSeq, host.STAN)
		}
		return nil, nil, fmt.Errorf("sign-on: %w", err)
	}
	// Prove fresh possession of the key: return the answer's challenge
	// in an 0800/301 MAC'd with it. The host serves no financial message
	// on this connection before (docs/protocol.md §5).
	if !wire.ValidChallenge(ans.Challenge) {
		conn.Close()
		return nil, nil, fmt.Errorf("sign-on: the host's answer carries no valid challenge (field 53 %q)", ans.Challenge)
	}
	if _, err := c.netMgmt(ctx, conn, wire.NetEcho, ans.Challenge); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("sign-on confirmation: %w", err)
	}
	return conn, idle, nil
}

// echo is sent when the link has been idle for EchoInterval: an 0800 301;
// a failed echo drops the connection so that Run reconnects.
func (c *Client) echo(ctx context.Context, conn *connection.Connection) {
	if _, err := c.netMgmt(ctx, conn, wire.NetEcho, ""); err != nil {
		c.log.Warn("host link: echo failed, reconnecting", "err", err)
		conn.TriggerFailure(fmt.Errorf("hostlink: echo: %w", err))
	}
}

// netMgmt sends an 0800 with code (and field 53 = challenge when not
// empty) and returns the host's approving 0810.
func (c *Client) netMgmt(ctx context.Context, conn *connection.Connection, code, challenge string) (wire.NetMgmt, error) {
	return c.netMgmtWith(ctx, conn, wire.NetMgmt{NetMgmtCode: code, Challenge: challenge})
}

// netMgmtWith sends the 0800 req (MTI, time, STAN and terminal filled in)
// and returns the host's 0810, with an error unless it approves.
func (c *Client) netMgmtWith(ctx context.Context, conn *connection.Connection, req wire.NetMgmt) (wire.NetMgmt, error) {
	now := c.cfg.Clock.Now()
	req.MTI, req.TransmissionDateTime = wire.MTINetMgmtRequest, wire.FormatTransmissionDT(now)
	req.STAN, req.TerminalID = wire.NextSTAN(&c.netSTAN), c.cfg.TerminalID
	m, err := wire.Build(&req)
	if err != nil {
		return wire.NetMgmt{}, err
	}
	resp, err := isolink.Send(ctx, conn, m, c.cfg.SendTimeout)
	if err != nil {
		return wire.NetMgmt{}, err
	}
	var r wire.NetMgmt
	if err := wire.Parse(resp, &r); err != nil {
		return wire.NetMgmt{}, err
	}
	if r.MTI != wire.MTINetMgmtResponse || r.ResponseCode != wire.RCApproved {
		return r, fmt.Errorf("host answered %s with response code %q", r.MTI, r.ResponseCode)
	}
	return r, nil
}

// exchange sends m and waits for its answer, classifying failures as
// ErrUnavailable (nothing sent) or ErrOutcomeUnknown.
func (c *Client) exchange(ctx context.Context, m *iso8583.Message) (*iso8583.Message, error) {
	mti, stan := wire.MTI(m), wire.STAN(m)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s stan %s: %w", host.ErrUnavailable, mti, stan, err)
	}
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return nil, fmt.Errorf("%w: %s stan %s: not connected", host.ErrUnavailable, mti, stan)
	}
	id, _ := requestID{}.GenerateRequestID(m)
	sent := new(atomic.Bool)
	c.written.Store(id, sent)
	defer c.written.Delete(id)

	r, err := isolink.Send(ctx, conn, m, c.cfg.SendTimeout)
	if err == nil {
		return r, nil
	}
	switch {
	case errors.Is(err, isolink.ErrNotSent):
		return nil, fmt.Errorf("%w: %s stan %s: %w", host.ErrUnavailable, mti, stan, err)
	case errors.Is(err, connection.ErrSendTimeout):
		return nil, fmt.Errorf("%w: %s stan %s: no answer: %w", host.ErrOutcomeUnknown, mti, stan, err)
	case ctx.Err() != nil, sent.Load():
		// The caller gave up waiting, or the request went out: the host
		// may have acted on it.
		return nil, fmt.Errorf("%w: %s stan %s: %w", host.ErrOutcomeUnknown, mti, stan, err)
	default:
		return nil, fmt.Errorf("%w: %s stan %s: %w", host.ErrUnavailable, mti, stan, err)
	}
}

// requestID matches answers to requests by message class and STAN, so the
// link's own 08xx STANs never collide with the caller's financial STANs.
type requestID struct{}

func (requestID) GenerateRequestID(m *iso8583.Message) (string, error) {
	mti, stan := wire.MTI(m), wire.STAN(m)
	if len(mti) != 4 || stan == "" {
		return "", errors.New("hostlink: message without MTI or STAN")
	}
	return mti[:2] + "/" + stan, nil
}

// writeTracker is the connection's MessageWriter: the wire Codec, noting
// whether any byte of a request reached the socket, and when the link last
// wrote (for the echo).
type writeTracker struct {
	c    *Client
	idle *keepalive.Idle
}

func (w writeTracker) WriteMessage(out io.Writer, m *iso8583.Message) error {
	cw := &countingWriter{w: out}
	err := w.c.codec.WriteMessage(cw, m)
	if err == nil {
		w.idle.Wrote()
	}
	if cw.n > 0 {
		if id, ierr := (requestID{}).GenerateRequestID(m); ierr == nil {
			if v, ok := w.c.written.Load(id); ok {
				v.(*atomic.Bool).Store(true)
			}
		}
	}
	return err
}

type countingWriter struct {
	w io.Writer
	n int
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += n
	if n == 0 && err != nil && len(p) > 0 {
		// A failed write may still have put bytes on the wire.
		cw.n++
	}
	return n, err
}
