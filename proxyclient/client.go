package proxyclient

import (
	"context"
	"errors"
	"fmt"
	"github.com/cardless-atm/cardless/atm/backoff"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/isolink"
	"github.com/cardless-atm/cardless/atm/keepalive"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
)

// NetMgmtKey is the slot holding the network management MAC key: the
// terminal master key's variant wire.NetMgmtVariant, derived by Run.
const NetMgmtKey hsm.KeyName = "tmk.mac"

// KBPKKey is the slot of the TR-31 key block protection key, the
// wire.KBPKVariant of hsm.TMK, derived at Run when the key format is TR-31.
const KBPKKey hsm.KeyName = "tmk.kbpk"

// Defaults applied by New to zero durations in Config.
const (
	DefaultEchoInterval    = 30 * time.Second
	DefaultSendTimeout     = 15 * time.Second
	DefaultBackoffMin      = 500 * time.Millisecond
	DefaultBackoffMax      = 30 * time.Second
	DefaultDuplicateWindow = 10 * time.Minute
)

// Sentinel errors.
var (
	// ErrNotSignedOn: the link is not up and signed on.
	ErrNotSignedOn = errors.New("proxyclient: not signed on")
	// ErrRefused: the proxy answered a network management request with a
	// response code other than 00 (the error names the code).
	ErrRefused = errors.New("proxyclient: refused by the proxy")
	// ErrKeyExchange: a key block could not be installed (bad format, wrong
	// KCV); the keys in use before stay in use.
	ErrKeyExchange = errors.New("proxyclient: key exchange failed")
)

// Command is a dispense command from the proxy (an inbound 0200), after
// its MAC has verified and its fields 62 and 120 have been decrypted.
type Command struct {
	STAN       string
	TerminalID string
	Amount     int64  // minor units
	Currency   string // ISO 4217 numeric
	QRPayload  string
	CustomerID string
	PINBlock   []byte // opaque, encrypted end to end for the host
	DeviceID   string // the phone's device ID (field 123, decrypted), for the host's binding check; "" when absent
	ReceivedAt time.Time
}

// Result is the ATM core's answer to a Command, sent back in the 0210.
type Result struct {
	ResponseCode string // field 39
	AuthCode     string // field 38
	RRN          string // field 37
	Dispensed    int64  // minor units actually paid; field 95 when it differs from the amount
	Receipt      string // the customer's receipt (receipt.Encode), field 63 of an approved 0210
}

// Handler carries out dispense commands. The ATM core implements it.
// HandleWithdrawal may block for as long as the withdrawal takes (until the
// cash is taken or retracted); each command runs on its own goroutine.
type Handler interface {
	HandleWithdrawal(ctx context.Context, cmd Command) Result
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, cmd Command) Result

// HandleWithdrawal implements Handler.
func (f HandlerFunc) HandleWithdrawal(ctx context.Context, cmd Command) Result { return f(ctx, cmd) }

// Config configures a Client.
type Config struct {
	Addr       string // proxy host:port
	TerminalID string // field 41, at most 8 characters
	TPDU       []byte // optional 5-byte TPDU (0x60 ...); nil for none
	// HSM holds hsm.TMK. Working keys are imported into slots "tak.<n>"
	// and "tek.<n>", and the network management key into NetMgmtKey.
	HSM hsm.Module
	// KeyFormat is the only form in which working keys are accepted:
	// wire.KeyFormatTR31 (the zero value: TR-31 key blocks under the
	// KBPKVariant of the TMK, imported with hsm.KeyBlockImporter) or
	// wire.KeyFormatLegacy (3DES-ECB under the TMK with KCVs).
	KeyFormat       wire.KeyFormat
	EchoInterval    time.Duration // echo (0800/301) after this much idle time
	SendTimeout     time.Duration // bound on each request/response and connect
	BackoffMin      time.Duration // first reconnect step (atm/backoff: the delay is in the upper half of the step)
	BackoffMax      time.Duration // reconnect delay cap, never exceeded
	DuplicateWindow time.Duration // a 0200 STAN seen within it is answered 94
	Handler         Handler
	Logger          *slog.Logger
	Clock           clock.Clock // the appliance's clock (times, backoff); nil means the system clock
	// OnChange, when set, is called (on the link's goroutine, with no lock
	// held; it must not block) after the terminal signed on and after a
	// signed-on link went down, so that the ATM goes in or out of service
	// at once (atm.ATM.LinksChanged).
	OnChange func()
}

// KeyKCVs are the check values of the working keys in use (never the keys).
type KeyKCVs struct {
	TAK string
	TEK string
}

// Status is a snapshot of the link.
type Status struct {
	Connected bool
	SignedOn  bool
	KeyKCVs   KeyKCVs
	LastError error // last link failure; nil after a successful sign-on
	SignOns   int   // successful sign-ons since New
	Rejected  int   // inbound messages refused (bad MAC, malformed)
	Echoes    int   // successful echo exchanges
	// Routed: the proxy takes this terminal as in service and routes
	// phone requests to it (signed on and not told 281 since; see
	// SetService).
	Routed bool
}

// Client is the ATM's persistent link to the proxy.
type Client struct {
	cfg  Config
	log  *slog.Logger
	stan atomic.Uint32
	gen  atomic.Uint64

	seen   stanWindow // 0200 STANs seen within the duplicate window or in hand
	kxSeen stanWindow // 162 STANs accepted within the duplicate window

	runCtx context.Context

	mu     sync.Mutex
	st     Status
	conn   *connection.Connection
	prot   *wire.Protector
	cur    *keyGen          // working keys in use
	prev   *keyGen          // previous keys, accepted inbound until confirmed (162)
	kxResp map[string]error // 0810 to our 001/161, by STAN: key install result
	kxPush map[string]error // proxy's 0800/162, by STAN: key install result
	svc    service          // the service state for the proxy (service.go)
	// the alarm report for the proxy (ReportAlarms), field 48 as sent
	alarms      string
	alarmsKnown bool
}

type keyGen struct {
	tak, tek       hsm.KeyName
	takKCV, tekKCV string
}

// New validates cfg, applies defaults and returns a Client. Run starts it.
func New(cfg Config) (*Client, error) {
	var errs []error
	if cfg.Addr == "" {
		errs = append(errs, errors.New("proxyclient: Addr is empty"))
	}
	if cfg.TerminalID == "" || len(cfg.TerminalID) > 8 {
		errs = append(errs, errors.New("proxyclient: TerminalID must be 1 to 8 characters"))
	}
	if wire.CheckTPDU(cfg.TPDU) != nil {
		errs = append(errs, errors.New("proxyclient: TPDU must be 5 bytes starting 0x60"))
	}
	if cfg.HSM == nil {
		errs = append(errs, errors.New("proxyclient: HSM is nil"))
	}
	if cfg.Handler == nil {
		errs = append(errs, errors.New("proxyclient: Handler is nil"))
	}
	if f, err := wire.ParseKeyFormat(string(cfg.KeyFormat)); err != nil {
		errs = append(errs, fmt.Errorf("proxyclient: %w", err))
	} else {
		cfg.KeyFormat = f
	}
	if _, ok := cfg.HSM.(hsm.KeyBlockImporter); cfg.HSM != nil && cfg.KeyFormat == wire.KeyFormatTR31 && !ok {
		errs = append(errs, fmt.Errorf("proxyclient: the security module (%T) cannot import TR-31 key blocks; use the legacy key format only with a proxy that needs it", cfg.HSM))
	}
	for name, d := range map[string]time.Duration{"EchoInterval": cfg.EchoInterval, "SendTimeout": cfg.SendTimeout,
		"BackoffMin": cfg.BackoffMin, "BackoffMax": cfg.BackoffMax, "DuplicateWindow": cfg.DuplicateWindow} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("proxyclient: %s is negative", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.EchoInterval, DefaultEchoInterval)
	def(&cfg.SendTimeout, DefaultSendTimeout)
	def(&cfg.BackoffMin, DefaultBackoffMin)
	def(&cfg.BackoffMax, DefaultBackoffMax)
	def(&cfg.DuplicateWindow, DefaultDuplicateWindow)
	if cfg.BackoffMax < cfg.BackoffMin {
		return nil, errors.New("proxyclient: BackoffMax is below BackoffMin")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Clock = clock.Or(cfg.Clock)
	c := &Client{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "proxyclient", "terminal", cfg.TerminalID),
		kxResp: map[string]error{},
		kxPush: map[string]error{},
	}
	c.stan.Store(uint32(rand.IntN(999999)))
	return c, nil
}

// Status returns a snapshot of the link state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// Run connects, signs on (receiving working keys), echoes when idle, and
// reconnects with exponential backoff and jitter after every drop, signing
// on again each time. It blocks until ctx is done and then returns
// ctx.Err(); it returns another error only when the HSM cannot derive the
// network management key from hsm.TMK.
func (c *Client) Run(ctx context.Context) error {
	if err := c.cfg.HSM.DeriveVariant(hsm.TMK, NetMgmtKey, wire.NetMgmtVariant); err != nil {
		return fmt.Errorf("proxyclient: network management key from the TMK: %w", err)
	}
	if c.cfg.KeyFormat == wire.KeyFormatTR31 {
		if err := c.cfg.HSM.DeriveVariant(hsm.TMK, KBPKKey, wire.KBPKVariant); err != nil {
			return fmt.Errorf("proxyclient: key block protection key from the TMK: %w", err)
		}
	}
	c.mu.Lock()
	c.runCtx = ctx
	c.mu.Unlock()
	retry := backoff.Backoff{Policy: backoff.Policy{Min: c.cfg.BackoffMin, Max: c.cfg.BackoffMax}}
	for {
		signedOn, err := c.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.mu.Lock()
		c.st.LastError = err
		c.mu.Unlock()
		if signedOn {
			retry.Reset()
		}
		wait := retry.Next()
		c.log.Warn("proxy link down", "err", err, "retry_in", wait)
		t := c.cfg.Clock.NewTimer(wait)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// session runs one connection: connect, sign on, serve until it drops.
func (c *Client) session(ctx context.Context) (signedOn bool, err error) {
	prot := wire.NewProtector(c.cfg.HSM, wire.KeySet{NetMgmtMAC: NetMgmtKey})
	// The echo runs on the appliance's clock (keepalive); the library's
	// idle timer, on the system clock, has no PingHandler.
	idle := keepalive.New(c.cfg.Clock, c.cfg.EchoInterval)
	idle.Spread = c.cfg.EchoInterval / 5 // a fleet signed on together does not echo in step
	codec := &linkCodec{Codec: wire.Codec{
		Framer:    wire.Framer{TPDU: c.cfg.TPDU},
		Protector: prot,
		OnReject:  c.onReject,
	}, c: c, idle: idle}
	conn, err := connection.New(c.cfg.Addr, wire.Spec, nil, nil,
		connection.SetMessageReader(codec),
		connection.SetMessageWriter(codec),
		connection.InboundMessageHandler(c.inbound),
		connection.SendTimeout(c.cfg.SendTimeout),
		connection.ConnectTimeout(c.cfg.SendTimeout),
		connection.ErrorHandler(func(err error) { c.log.Debug("proxy link error", "err", err) }),
	)
	if err != nil {
		return false, fmt.Errorf("proxyclient: %w", err)
	}
	if err := conn.ConnectCtx(ctx); err != nil {
		return false, fmt.Errorf("proxyclient: connect: %w", err)
	}
	defer conn.Close()
	c.mu.Lock()
	c.conn, c.prot = conn, prot
	c.st.Connected = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.conn, c.prot = nil, nil
		was := c.st.SignedOn
		c.st.Connected, c.st.SignedOn, c.st.Routed = false, false, false
		c.mu.Unlock()
		if was && c.cfg.OnChange != nil {
			c.cfg.OnChange()
		}
	}()
	c.log.Info("proxy link connected", "addr", c.cfg.Addr)

	if err := c.keyRequest(ctx, conn, wire.NetSignOn); err != nil {
		return false, fmt.Errorf("proxyclient: sign-on: %w", err)
	}
	// A terminal out of service says so before it counts as signed on,
	// so that the proxy never routes to it in between.
	c.mu.Lock()
	svc := c.svc
	c.mu.Unlock()
	if svc.known && !svc.in {
		if err := c.sendService(ctx, conn); err != nil {
			c.log.Warn("the proxy was not told the terminal is out of service", "err", err)
		}
	}
	c.mu.Lock()
	alarms := c.alarmsKnown
	c.mu.Unlock()
	if alarms {
		if err := c.sendAlarms(ctx, conn); err != nil {
			c.log.Warn("the proxy was not told the alarms", "err", err)
		}
	}
	c.mu.Lock()
	c.st.SignedOn = true
	c.st.Routed = !svc.known || svc.in
	c.st.SignOns++
	c.st.LastError = nil
	kcvs := c.st.KeyKCVs
	c.mu.Unlock()
	c.log.Info("signed on", "tak_kcv", kcvs.TAK, "tek_kcv", kcvs.TEK)
	if c.cfg.OnChange != nil {
		c.cfg.OnChange()
	}
	go idle.Run(conn.Done(), func() { c.echo(conn) })

	select {
	case <-conn.Done():
		return true, errors.New("proxyclient: connection closed")
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

// RequestKeys asks the proxy for new working keys (0800, field 70 = 161)
// and switches to them once their KCVs check.
func (c *Client) RequestKeys(ctx context.Context) error {
	c.mu.Lock()
	conn, ok := c.conn, c.st.SignedOn
	c.mu.Unlock()
	if !ok || conn == nil {
		return ErrNotSignedOn
	}
	if err := c.keyRequest(ctx, conn, wire.NetKeyRequest); err != nil {
		return fmt.Errorf("proxyclient: key request: %w", err)
	}
	return nil
}

// keyRequest sends 0800 with code (001 or 161) and waits for the 0810. The
// keys it carries were installed by the read path (linkCodec) before the
// next message was read; here we only collect the outcome.
func (c *Client) keyRequest(ctx context.Context, conn *connection.Connection, code string) error {
	stan := c.nextSTAN()
	c.mu.Lock()
	c.kxResp[stan] = errPending
	c.mu.Unlock()
	resp, err := c.send(ctx, conn, c.netMgmt(stan, code))
	kxErr, installed := c.takeKX(c.kxResp, stan)
	if err != nil {
		return err
	}
	var nm wire.NetMgmt
	if err := wire.Parse(resp, &nm); err != nil {
		return err
	}
	if nm.ResponseCode != wire.RCApproved {
		return fmt.Errorf("%w: response code %q", ErrRefused, nm.ResponseCode)
	}
	if !installed {
		return fmt.Errorf("%w: no key block in the answer", ErrKeyExchange)
	}
	if kxErr != nil {
		return kxErr
	}
	if code == wire.NetSignOn {
		return c.confirmSignOn(ctx, conn, nm.Challenge)
	}
	return nil
}

// confirmSignOn proves to the proxy that this end holds the terminal's
// network-management key: it returns the 0810's challenge (field 53) in
// an 0800/301 MAC'd with that key. Until then the proxy neither routes
// commands to this link nor closes the terminal's older one, so that a
// recorded sign-on replayed by someone else takes nothing over
// (docs/protocol.md §5).
func (c *Client) confirmSignOn(ctx context.Context, conn *connection.Connection, challenge string) error {
	if !wire.ValidChallenge(challenge) {
		return fmt.Errorf("%w: the sign-on answer carries no valid challenge (field 53 %q)", ErrRefused, challenge)
	}
	m, err := wire.Build(&wire.NetMgmt{
		MTI:                  wire.MTINetMgmtRequest,
		TransmissionDateTime: wire.FormatTransmissionDT(c.cfg.Clock.Now()),
		STAN:                 c.nextSTAN(),
		TerminalID:           c.cfg.TerminalID,
		NetMgmtCode:          wire.NetEcho,
		Challenge:            challenge,
	})
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, conn, m)
	if err != nil {
		return fmt.Errorf("sign-on confirmation: %w", err)
	}
	var nm wire.NetMgmt
	if err := wire.Parse(resp, &nm); err != nil {
		return err
	}
	if nm.ResponseCode != wire.RCApproved {
		return fmt.Errorf("%w: sign-on confirmation answered %q", ErrRefused, nm.ResponseCode)
	}
	return nil
}

// echo is the idle handler: 0800/301. A failed echo drops the link so Run
// reconnects.
func (c *Client) echo(conn *connection.Connection) {
	c.mu.Lock()
	ok := c.st.SignedOn && c.conn == conn
	ctx := c.runCtx
	c.mu.Unlock()
	if !ok {
		return
	}
	resp, err := c.send(ctx, conn, c.netMgmt(c.nextSTAN(), wire.NetEcho))
	if err == nil {
		var nm wire.NetMgmt
		if err = wire.Parse(resp, &nm); err == nil && nm.ResponseCode != wire.RCApproved {
			err = fmt.Errorf("%w: echo answered %q", ErrRefused, nm.ResponseCode)
		}
	}
	if err != nil {
		c.log.Warn("echo failed; dropping the link", "err", err)
		conn.TriggerFailure(fmt.Errorf("echo: %w", err))
		return
	}
	c.mu.Lock()
	c.st.Echoes++
	c.mu.Unlock()
	c.log.Debug("echo ok")
}

func (c *Client) netMgmt(stan, code string) *iso8583.Message {
	m, err := wire.Build(&wire.NetMgmt{
		MTI:                  wire.MTINetMgmtRequest,
		TransmissionDateTime: wire.FormatTransmissionDT(c.cfg.Clock.Now()),
		STAN:                 stan,
		TerminalID:           c.cfg.TerminalID,
		NetMgmtCode:          code,
	})
	if err != nil {
		// Only constant, well-formed values go in: a failure is a bug.
		panic(err)
	}
	return m
}

func (c *Client) nextSTAN() string { return wire.NextSTAN(&c.stan) }

// send is connection.Send bounded by ctx and SendTimeout.
func (c *Client) send(ctx context.Context, conn *connection.Connection, m *iso8583.Message) (*iso8583.Message, error) {
	c.log.Debug("send", "msg", wire.Loggable(m))
	r, err := isolink.Send(ctx, conn, m, c.cfg.SendTimeout)
	if err == nil {
		c.log.Debug("received", "msg", wire.Loggable(r))
	}
	return r, err
}

func (c *Client) onReject(mti, stan string, err error) {
	c.mu.Lock()
	c.st.Rejected++
	c.mu.Unlock()
	c.log.Warn("inbound message refused", "mti", mti, "stan", stan, "reason", err)
}

func (c *Client) takeKX(m map[string]error, stan string) (error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	err, ok := m[stan]
	delete(m, stan)
	if err == errPending {
		return nil, false
	}
	return err, ok
}
