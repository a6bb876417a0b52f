package xfs4iot

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cardless-atm/cardless/atm/backoff"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
)

// Config configures the driver.
type Config struct {
	// Publisher is the service publisher's URL,
	// ws(s)://HOST:PORT/xfs4iot/v1.0.
	Publisher string
	// CAFile is the PEM CA bundle that signed a wss:// service's
	// certificate (empty: the system roots).
	CAFile string
	// CommandTimeout bounds one command, sent to the service in the header
	// and enforced here too (default 60s).
	CommandTimeout time.Duration
	// Exponent is the ISO 4217 exponent of the cash units' currency.
	Exponent int
	// ResponseKey verifies the HMAC of the device's present-status
	// response tokens. Without it PresentStatus fails (ErrUnverified):
	// recovery then leaves an interrupted dispense to an operator instead
	// of believing an unsigned account. Never logged.
	ResponseKey []byte
	// Ports, when the publisher URL has no port, are the ports tried in
	// order (nil: StandardPorts).
	Ports []int
	// Backoff spaces reconnection attempts (default 1s doubling to 30s).
	Backoff backoff.Policy
	Clock   clock.Clock  // nil: real time
	Logger  *slog.Logger // nil: discard
}

// ErrUnverified: the device's account of the last dispense could not be
// verified (no response key, no response token, or a token that does not
// verify), so it is not believed.
// It wraps dispenser.ErrUnverifiable, so recovery sends the session to an
// operator instead of waiting.
var ErrUnverified error = &unverified{}

type unverified struct{}

func (*unverified) Error() string { return "xfs4iot: present status not verified" }
func (*unverified) Unwrap() error { return dispenser.ErrUnverifiable }

// unit is one storage unit as the driver knows it.
type unit struct {
	key  string // the storage key on the wire, e.g. "unit1"
	cash dispenser.CashUnit
}

// Driver drives an XFS4IoT cash dispenser service. It implements the
// core's Dispenser port and its PresentStatuser and Resetter capabilities.
// Its methods are safe for concurrent use; the service runs commands one
// at a time in the order it accepts them.
type Driver struct {
	cfg    Config
	log    *slog.Logger
	clk    clock.Clock
	client *http.Client

	dialMu sync.Mutex // one connection attempt at a time

	mu        sync.Mutex // guards what follows; never held across I/O
	closed    bool
	svc       *conn // nil: not connected
	bo        backoff.Backoff
	nextDial  time.Time // no reconnection attempt before
	maxNotes  int
	units     []unit // as last read with Storage.GetStorage
	responses bool   // the device signs present-status responses
	taken     chan struct{}
	takenSeen bool              // ItemsTakenEvent for the current presentation
	nonces    map[string]string // dispense token HMAC (hex) -> its nonce, for this process's dispenses
}

// New returns a driver for the service behind cfg.Publisher. It does not
// connect: the first command does, and every command after the link was
// lost reconnects (no sooner than the backoff allows).
func New(cfg Config) (*Driver, error) {
	if cfg.Publisher == "" {
		return nil, errors.New("xfs4iot: no publisher URL")
	}
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = 60 * time.Second
	}
	if cfg.Exponent < 0 || cfg.Exponent > 3 {
		return nil, fmt.Errorf("xfs4iot: currency exponent %d must be 0-3", cfg.Exponent)
	}
	if cfg.Backoff.Min == 0 {
		cfg.Backoff = backoff.Policy{Min: time.Second, Max: 30 * time.Second}
	}
	cfg.ResponseKey = slices.Clone(cfg.ResponseKey)
	d := &Driver{cfg: cfg, log: cfg.Logger, clk: clock.Or(cfg.Clock), nonces: map[string]string{}}
	d.bo.Policy = cfg.Backoff
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("xfs4iot: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("xfs4iot: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		d.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	if len(cfg.ResponseKey) == 0 {
		d.log.Warn("no response key: the device's account of an interrupted dispense will not be believed; recovery leaves it to an operator")
	}
	return d, nil
}

// Close drops the connection.
func (d *Driver) Close() error {
	d.mu.Lock()
	c := d.svc
	d.svc, d.closed = nil, true
	d.mu.Unlock()
	if c != nil {
		c.close(errors.New("driver closed"))
	}
	return nil
}

// service returns the live connection to the cash dispenser service,
// connecting first if needed. A failure is ErrDeviceNotReady. Only one
// caller dials at a time (dialMu); d.mu is never held across I/O, so the
// reader goroutine's event handler never waits for a connection attempt.
func (d *Driver) service(ctx context.Context) (*conn, error) {
	if c, err := d.live(); c != nil || err != nil {
		return c, err
	}
	d.dialMu.Lock()
	defer d.dialMu.Unlock()
	if c, err := d.live(); c != nil || err != nil {
		return c, err // another caller connected meanwhile
	}
	d.mu.Lock()
	now, next := d.clk.Now(), d.nextDial
	d.mu.Unlock()
	if now.Before(next) {
		return nil, fmt.Errorf("%w: no link to the XFS4IoT service; next attempt in %s", dispenser.ErrDeviceNotReady, next.Sub(now))
	}
	c, info, err := d.connect(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil && d.closed {
		c.close(errors.New("driver closed"))
		err = errors.New("xfs4iot: driver closed")
	}
	if err != nil {
		d.nextDial = now.Add(d.bo.Next())
		d.log.Warn("xfs4iot connect failed", "err", err, "retry_in", d.nextDial.Sub(now))
		return nil, fmt.Errorf("%w: %v", dispenser.ErrDeviceNotReady, err)
	}
	d.bo.Reset()
	d.svc, d.maxNotes, d.responses = c, info.maxNotes, info.responses
	return c, nil
}

// live returns the current connection if it is up (nil, nil if there is
// none), or an error once the driver is closed.
func (d *Driver) live() (*conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("%w: xfs4iot driver closed", dispenser.ErrDeviceNotReady)
	}
	if d.svc != nil && d.svc.alive() {
		return d.svc, nil
	}
	d.svc = nil
	return nil, nil
}

// serviceInfo is what discovery learnt of the service.
type serviceInfo struct {
	maxNotes  int
	responses bool // the device signs present-status responses
}

// connect discovers the cash dispenser service through the publisher and
// opens it. Called with dialMu held, d.mu not held.
func (d *Driver) connect(ctx context.Context) (*conn, serviceInfo, error) {
	ctx, cancel := d.bounded(ctx)
	defer cancel()
	m, err := d.getServices(ctx)
	if err != nil {
		return nil, serviceInfo{}, err
	}
	var services getServicesCompletion
	if err := json.Unmarshal(m.Payload, &services); err != nil {
		return nil, serviceInfo{}, fmt.Errorf("xfs4iot: GetServices payload: %w", err)
	}
	var why []string
	for _, s := range services.Services {
		c, err := dial(ctx, s.ServiceURI, d.client, d.log, d.unsolicited)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		m, err := c.do(ctx, "Common.Capabilities", nil, d.timeoutMS(), nil)
		var caps capabilitiesCompletion
		if err == nil {
			err = json.Unmarshal(m.Payload, &caps)
		}
		if err != nil || caps.CashDispenser == nil {
			c.close(errors.New("not a cash dispenser"))
			if err == nil {
				err = fmt.Errorf("%s is not a cash dispenser", s.ServiceURI)
			}
			why = append(why, err.Error())
			continue
		}
		info := serviceInfo{maxNotes: caps.CashDispenser.MaxDispenseItems}
		e2e := ""
		if caps.Common != nil && caps.Common.EndToEndSecurity != nil {
			e2e = caps.Common.EndToEndSecurity.Required
			info.responses = caps.Common.EndToEndSecurity.ResponseSecurityEnabled == "always"
		}
		if e2e != "always" {
			// The token is still sent; only the device decides whether
			// it checks it. Say so loudly: this is the anti-jackpotting
			// control.
			d.log.Error("ALARM: the dispenser does not enforce end-to-end security", "required", e2e, "service", s.ServiceURI)
		}
		d.log.Info("xfs4iot cash dispenser connected", "service", s.ServiceURI, "vendor", services.VendorName,
			"type", caps.CashDispenser.Type, "max_notes", info.maxNotes, "end_to_end", e2e, "signed_responses", info.responses)
		return c, info, nil
	}
	return nil, serviceInfo{}, fmt.Errorf("xfs4iot: no cash dispenser among %d services of %s %v", len(services.Services), d.cfg.Publisher, why)
}

// StandardPorts are where an XFS4IoT service publisher listens, in the
// order a client tries them when the publisher URL names no port: 80
// (ws only) or 443 (wss only), then 5846 to 5856.
func StandardPorts(scheme string) []int {
	first := 80
	if scheme == "wss" {
		first = 443
	}
	ports := []int{first}
	for p := 5846; p <= 5856; p++ {
		ports = append(ports, p)
	}
	return ports
}

// getServices asks the publisher for its services; a publisher URL
// without a port is looked for on the standard ports (Config.Ports in
// tests), the first that answers is used.
func (d *Driver) getServices(ctx context.Context) (Message, error) {
	u, err := url.Parse(d.cfg.Publisher)
	if err != nil {
		return Message{}, fmt.Errorf("xfs4iot: publisher %q: %w", d.cfg.Publisher, err)
	}
	urls := []string{d.cfg.Publisher}
	if u.Port() == "" {
		urls = nil
		ports := d.cfg.Ports
		if ports == nil {
			ports = StandardPorts(u.Scheme)
		}
		for _, p := range ports {
			v := *u
			v.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(p))
			urls = append(urls, v.String())
		}
	}
	var why []string
	for _, pu := range urls {
		pub, err := dial(ctx, pu, d.client, d.log, nil)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		m, err := pub.do(ctx, "ServicePublisher.GetServices", nil, d.timeoutMS(), nil)
		pub.close(errors.New("discovery done"))
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		if len(urls) > 1 {
			d.log.Info("xfs4iot service publisher found", "url", pu)
		}
		return m, nil
	}
	if len(why) == 1 {
		return Message{}, errors.New(why[0])
	}
	return Message{}, fmt.Errorf("xfs4iot: no service publisher answered on %s's standard ports: %s", u.Hostname(), strings.Join(why, "; "))
}

func (d *Driver) timeoutMS() int64 { return d.cfg.CommandTimeout.Milliseconds() }

// unsolicited follows the service's events (on the reader goroutine).
func (d *Driver) unsolicited(m Message) {
	switch m.Header.Name {
	case "CashManagement.ItemsTakenEvent":
		d.mu.Lock()
		if d.taken != nil && !d.takenSeen {
			d.takenSeen = true
			close(d.taken)
		}
		d.mu.Unlock()
		d.log.Info("xfs4iot items taken")
	case "Common.StatusChangedEvent", "Storage.StorageThresholdEvent", "CashDispenser.IncompleteDispenseEvent",
		"CashManagement.IncompleteRetractEvent", "Common.ErrorEvent":
		p := string(m.Payload)
		if len(p) > 512 {
			p = p[:512] + "..." // a device's payload is bounded in the log
		}
		d.log.Warn("xfs4iot event", "name", m.Header.Name, "payload", p)
	default:
		d.log.Debug("xfs4iot event", "name", m.Header.Name)
	}
}

// call runs one command on the service with the driver's timeout.
func (d *Driver) call(ctx context.Context, name string, payload any, onEvent func(Message)) (Message, error) {
	c, err := d.service(ctx)
	if err != nil {
		return Message{}, err
	}
	ctx, cancel := d.bounded(ctx)
	defer cancel()
	return c.do(ctx, name, payload, d.timeoutMS(), onEvent)
}

// bounded returns ctx cancelled after the command timeout (plus a margin
// for the service's own timeout to answer first), on the driver's clock.
func (d *Driver) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	t := d.clk.AfterFunc(d.cfg.CommandTimeout+5*time.Second, cancel)
	return ctx, func() { t.Stop(); cancel() }
}
