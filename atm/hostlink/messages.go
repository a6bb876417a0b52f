package hostlink

import (
	"context"
	"errors"
	"fmt"
	"github.com/cardless-atm/cardless/atm/host"

	"github.com/moov-io/iso8583"

	"github.com/cardless-atm/cardless/atm/wire"
)

// Authorize asks the host to authorize a withdrawal (0200 -> 0210). A
// decline is not an error: check AuthResponse.ResponseCode. Errors wrap
// ErrUnavailable (nothing sent: decline locally, no reversal) or
// ErrOutcomeUnknown (reverse, never retry); any other error means the
// request was refused before sending.
func (c *Client) Authorize(ctx context.Context, r host.AuthRequest) (host.AuthResponse, error) {
	term := c.terminal(r.TerminalID)
	if err := checkCommon(r.STAN, r.Currency, term); err != nil {
		return host.AuthResponse{}, fmt.Errorf("%w: 0200: %w", host.ErrUnavailable, err)
	}
	if r.PINBlock != nil && len(r.PINBlock) != 8 {
		return host.AuthResponse{}, fmt.Errorf("%w: 0200: PIN block must be 8 bytes", host.ErrUnavailable)
	}
	if r.Amount < 0 {
		return host.AuthResponse{}, fmt.Errorf("%w: 0200: negative amount", host.ErrUnavailable)
	}
	t := r.Time
	if t.IsZero() {
		t = c.cfg.Clock.Now()
	}
	m, err := wire.Build(&wire.Withdrawal{
		MTI:                  wire.MTIFinancialRequest,
		ProcessingCode:       wire.ProcCashWithdrawal,
		Amount:               wire.FormatAmount(r.Amount),
		TransmissionDateTime: wire.FormatTransmissionDT(t),
		STAN:                 r.STAN,
		LocalTime:            wire.FormatLocalTime(t),
		LocalDate:            wire.FormatLocalDate(t),
		AcquirerID:           c.cfg.AcquirerID,
		TerminalID:           term,
		Currency:             r.Currency,
		PINBlock:             r.PINBlock,
		CustomerID:           r.CustomerID,
		DispenseNonce:        r.DispenseNonce,
		DeviceID:             r.DeviceID,
	})
	if err != nil {
		return host.AuthResponse{}, fmt.Errorf("%w: 0200: %w", host.ErrUnavailable, err)
	}
	resp, err := c.exchange(ctx, m)
	if err != nil {
		return host.AuthResponse{}, err
	}
	var a wire.Withdrawal
	if err := wire.Parse(resp, &a); err != nil {
		return host.AuthResponse{}, fmt.Errorf("%w: 0210 stan %s: %w", host.ErrOutcomeUnknown, r.STAN, err)
	}
	switch {
	case a.MTI != wire.MTIFinancialResp:
		return host.AuthResponse{}, fmt.Errorf("%w: answer to 0200 stan %s has MTI %s", host.ErrOutcomeUnknown, r.STAN, a.MTI)
	case a.TerminalID != term:
		return host.AuthResponse{}, fmt.Errorf("%w: 0210 stan %s names another terminal", host.ErrOutcomeUnknown, r.STAN)
	case a.Amount != wire.FormatAmount(r.Amount):
		return host.AuthResponse{}, fmt.Errorf("%w: 0210 stan %s carries another amount", host.ErrOutcomeUnknown, r.STAN)
	case len(a.ResponseCode) != 2:
		return host.AuthResponse{}, fmt.Errorf("%w: 0210 stan %s has no response code", host.ErrOutcomeUnknown, r.STAN)
	}
	out := host.AuthResponse{ResponseCode: a.ResponseCode, AuthCode: a.AuthCode, RRN: a.RRN, Token: a.DispenseToken}
	c.log.Info("host: 0210", "stan", r.STAN, "rc", a.ResponseCode, "rrn", a.RRN)
	if out.Approved() && out.Token == "" {
		return out, fmt.Errorf("%w: 0210 stan %s approves without a dispense token", host.ErrOutcomeUnknown, r.STAN)
	}
	return out, nil
}

// Advise sends a completion advice (0220 -> 0230). On ErrOutcomeUnknown or
// ErrUnavailable keep the advice queued and resend it unchanged later.
func (c *Client) Advise(ctx context.Context, a host.Advice) error {
	term := c.terminal(a.TerminalID)
	od, err := c.original(a.Original)
	if err == nil {
		err = checkCommon(a.STAN, a.Currency, term)
	}
	if err != nil {
		return fmt.Errorf("%w: 0220: %w", host.ErrUnavailable, err)
	}
	now := c.cfg.Clock.Now()
	m, err := wire.Build(&wire.Advice{
		MTI:                  wire.MTIAdvice,
		ProcessingCode:       wire.ProcCashWithdrawal,
		Amount:               wire.FormatAmount(a.Amount),
		TransmissionDateTime: wire.FormatTransmissionDT(now),
		STAN:                 a.STAN,
		LocalTime:            wire.FormatLocalTime(now),
		LocalDate:            wire.FormatLocalDate(now),
		AcquirerID:           c.cfg.AcquirerID,
		TerminalID:           term,
		Currency:             a.Currency,
		OriginalData:         od,
	})
	if err != nil {
		return fmt.Errorf("%w: 0220: %w", host.ErrUnavailable, err)
	}
	return c.ack(ctx, m, wire.MTIAdviceResp, a.STAN)
}

// Reverse sends a reversal advice (0420 -> 0430); Dispensed > 0 makes it
// partial (field 95). On ErrOutcomeUnknown or ErrUnavailable keep it
// queued and resend it unchanged later.
func (c *Client) Reverse(ctx context.Context, r host.Reversal) error {
	term := c.terminal(r.TerminalID)
	od, err := c.original(r.Original)
	if err == nil {
		err = checkCommon(r.STAN, r.Currency, term)
	}
	if err == nil && len(r.Reason) != 2 {
		err = fmt.Errorf("reason %q must be a 2-character code", r.Reason)
	}
	if err == nil && (r.Dispensed < 0 || r.Dispensed > r.Amount) {
		err = errors.New("dispensed amount must be between 0 and the original amount")
	}
	if err != nil {
		return fmt.Errorf("%w: 0420: %w", host.ErrUnavailable, err)
	}
	now := c.cfg.Clock.Now()
	rev := wire.Reversal{
		MTI:                  wire.MTIReversal,
		ProcessingCode:       wire.ProcCashWithdrawal,
		Amount:               wire.FormatAmount(r.Amount),
		TransmissionDateTime: wire.FormatTransmissionDT(now),
		STAN:                 r.STAN,
		LocalTime:            wire.FormatLocalTime(now),
		LocalDate:            wire.FormatLocalDate(now),
		AcquirerID:           c.cfg.AcquirerID,
		ResponseCode:         r.Reason,
		TerminalID:           term,
		Currency:             r.Currency,
		OriginalData:         od,
	}
	if r.Dispensed > 0 {
		rev.ReplacementAmounts = wire.ReplacementAmounts{Transaction: r.Dispensed, Settlement: r.Dispensed}.String()
	}
	m, err := wire.Build(&rev)
	if err != nil {
		return fmt.Errorf("%w: 0420: %w", host.ErrUnavailable, err)
	}
	return c.ack(ctx, m, wire.MTIReversalResp, r.STAN)
}

func (c *Client) ack(ctx context.Context, m *iso8583.Message, wantMTI, stan string) error {
	resp, err := c.exchange(ctx, m)
	if err != nil {
		return err
	}
	var a wire.Advice // 0230 and 0430 share the fields read here
	if err := wire.Parse(resp, &a); err != nil {
		return fmt.Errorf("%w: %s stan %s: %w", host.ErrOutcomeUnknown, wantMTI, stan, err)
	}
	if a.MTI != wantMTI {
		return fmt.Errorf("%w: answer to stan %s has MTI %s, want %s", host.ErrOutcomeUnknown, stan, a.MTI, wantMTI)
	}
	c.log.Info("host: "+wantMTI, "stan", stan, "rc", a.ResponseCode)
	if a.ResponseCode != wire.RCApproved {
		return &host.RejectedError{MTI: a.MTI, STAN: stan, ResponseCode: a.ResponseCode}
	}
	return nil
}

func (c *Client) terminal(id string) string {
	if id == "" {
		return c.cfg.TerminalID
	}
	return id
}

func (c *Client) original(o host.OriginalData) (string, error) {
	mti := o.MTI
	if mti == "" {
		mti = wire.MTIFinancialRequest
	}
	if o.Time.IsZero() {
		return "", errors.New("original transmission time is required")
	}
	od := wire.OriginalData{MTI: mti, STAN: o.STAN, TransmitDT: wire.FormatTransmissionDT(o.Time), AcquirerID: c.cfg.AcquirerID}
	if err := od.Validate(); err != nil {
		return "", err
	}
	return od.String(), nil
}

func checkCommon(stan, currency, terminal string) error {
	switch {
	case len(stan) != 6 || !wire.IsDigits(stan):
		return fmt.Errorf("STAN %q must be 6 digits", stan)
	case len(currency) != 3 || !wire.IsDigits(currency):
		return fmt.Errorf("currency %q must be a 3-digit ISO 4217 numeric code", currency)
	case terminal == "" || len(terminal) > 8:
		return fmt.Errorf("terminal ID %q must be 1-8 characters", terminal)
	}
	return nil
}
