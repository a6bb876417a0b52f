package proxyclient

import (
	"context"
	"fmt"

	connection "github.com/moov-io/iso8583-connection"

	"github.com/cardless-atm/cardless/atm/wire"
)

// service is the terminal's service state as the proxy was or must be
// told it (0800 with field 70 = 281 or 282).
type service struct {
	known  bool   // SetService was called
	in     bool   // taking customers
	reason string // why not
}

// SetService tells the proxy that the terminal stopped (in false, with
// reason) or resumed taking customers, so that the proxy answers phone
// requests for it at once (91) instead of forwarding them to an ATM that
// would refuse them. It is remembered: when the link is not signed on the
// proxy is told after the next sign-on, and an out-of-service state after
// every sign-on (the proxy takes a new link as in service). The error
// says only whether the proxy was told now.
func (c *Client) SetService(ctx context.Context, in bool, reason string) error {
	c.mu.Lock()
	c.svc = service{known: true, in: in, reason: reason}
	conn, ok := c.conn, c.st.SignedOn
	c.mu.Unlock()
	if !ok || conn == nil {
		return ErrNotSignedOn
	}
	return c.sendService(ctx, conn)
}

// sendService sends the remembered service state (after SetService, and
// after a sign-on when the terminal is out of service).
func (c *Client) sendService(ctx context.Context, conn *connection.Connection) error {
	c.mu.Lock()
	svc := c.svc
	c.mu.Unlock()
	code, data := wire.NetInService, ""
	if !svc.in {
		code, data = wire.NetOutOfService, svc.reason
		if data == "" {
			data = "unspecified"
		}
	}
	m, err := wire.Build(&wire.NetMgmt{
		MTI:                  wire.MTINetMgmtRequest,
		TransmissionDateTime: wire.FormatTransmissionDT(c.cfg.Clock.Now()),
		STAN:                 c.nextSTAN(),
		TerminalID:           c.cfg.TerminalID,
		NetMgmtCode:          code,
		AdditionalData:       data,
	})
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, conn, m)
	if err != nil {
		return fmt.Errorf("proxyclient: service state: %w", err)
	}
	var nm wire.NetMgmt
	if err := wire.Parse(resp, &nm); err != nil {
		return err
	}
	if nm.ResponseCode != wire.RCApproved {
		return fmt.Errorf("%w: service state answered %q", ErrRefused, nm.ResponseCode)
	}
	c.mu.Lock()
	if c.conn == conn {
		c.st.Routed = svc.in
	}
	c.mu.Unlock()
	c.log.Info("proxy told the service state", "in_service", svc.in, "reason", svc.reason)
	return nil
}

// ReportAlarms tells the proxy the alarms standing now (0800/283; all of
// them each time). It is remembered like the service state: when the link
// is not signed on, the proxy is told after the next sign-on. The error
// says only whether the proxy was told now.
func (c *Client) ReportAlarms(ctx context.Context, alarms []string) error {
	data, err := wire.FormatAlarms(alarms)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.alarms, c.alarmsKnown = data, true
	conn, ok := c.conn, c.st.SignedOn
	c.mu.Unlock()
	if !ok || conn == nil {
		return ErrNotSignedOn
	}
	return c.sendAlarms(ctx, conn)
}

// sendAlarms sends the remembered alarm report.
func (c *Client) sendAlarms(ctx context.Context, conn *connection.Connection) error {
	c.mu.Lock()
	data := c.alarms
	c.mu.Unlock()
	m, err := wire.Build(&wire.NetMgmt{
		MTI:                  wire.MTINetMgmtRequest,
		TransmissionDateTime: wire.FormatTransmissionDT(c.cfg.Clock.Now()),
		STAN:                 c.nextSTAN(),
		TerminalID:           c.cfg.TerminalID,
		NetMgmtCode:          wire.NetStatus,
		AdditionalData:       data,
	})
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, conn, m)
	if err != nil {
		return fmt.Errorf("proxyclient: alarm report: %w", err)
	}
	var nm wire.NetMgmt
	if err := wire.Parse(resp, &nm); err != nil {
		return err
	}
	if nm.ResponseCode != wire.RCApproved {
		return fmt.Errorf("%w: alarm report answered %q", ErrRefused, nm.ResponseCode)
	}
	c.log.Info("proxy told the alarms", "report", data)
	return nil
}
