package phonesim

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm/host/bindapi"
	"github.com/cardless-atm/cardless/atm/wire"
)

// Phone binding (docs/binding.md): the first time a customer uses the app
// on a phone, the app binds the phone's device ID to the customer with
// the customer's PIN and a one-time code the bank sends by SMS. The app
// talks to its bank (the host simulator's bind endpoint), not to the
// proxy.

// BindTimeout bounds each request of the bind flow.
const BindTimeout = 10 * time.Second

// ErrBind: the bank's answer was not one the bind protocol allows (an
// unknown result, a result that does not go with its HTTP status), or
// the code could not be read from the simulated SMS inbox.
var ErrBind = errors.New("phonesim: bind")

// checkBindURL accepts an http(s) URL with a host; plain http only to a
// loopback host, since the PIN block and the code would otherwise cross a
// network unprotected.
func checkBindURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("must be an http(s) URL such as \"http://127.0.0.1:6101\"")
	}
	if u.Scheme == "http" {
		h := strings.TrimSuffix(strings.TrimPrefix(u.Hostname(), "["), "]")
		ip := net.ParseIP(h)
		if !strings.EqualFold(h, "localhost") && (ip == nil || !ip.IsLoopback()) {
			return errors.New("plain http only to a loopback host (use https)")
		}
	}
	return nil
}

// endpoint returns the URL of path on cfg's bind endpoint.
func endpoint(cfg Config, path string) (string, error) {
	if cfg.BindURL == "" {
		return "", fmt.Errorf("%w: no bind endpoint configured (bindUrl)", ErrBind)
	}
	if err := checkBindURL(cfg.BindURL); err != nil {
		return "", fmt.Errorf("%w: bindUrl: %w", ErrBind, err)
	}
	return strings.TrimSuffix(cfg.BindURL, "/") + path, nil
}

var bindClient = &http.Client{Timeout: BindTimeout}

// call sends req to path as JSON and reads the bank's answer.
func call(ctx context.Context, cfg Config, path string, req any) (bindapi.Answer, error) {
	u, err := endpoint(cfg, path)
	if err != nil {
		return bindapi.Answer{}, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return bindapi.Answer{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, BindTimeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return bindapi.Answer{}, fmt.Errorf("%w: %w", ErrBind, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := bindClient.Do(hr)
	if err != nil {
		return bindapi.Answer{}, fmt.Errorf("phonesim: bind endpoint: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, bindapi.MaxBody+1))
	if err != nil {
		return bindapi.Answer{}, fmt.Errorf("phonesim: bind endpoint: %w", err)
	}
	a, err := bindapi.ParseAnswer(b)
	if err != nil {
		return bindapi.Answer{}, fmt.Errorf("%w: answer (HTTP %d): %w", ErrBind, resp.StatusCode, err)
	}
	if (resp.StatusCode == http.StatusOK) != a.OK() {
		return a, fmt.Errorf("%w: result %q with HTTP status %d", ErrBind, a.Result, resp.StatusCode)
	}
	return a, nil
}

// BindStart asks the bank to bind the phone (cfg.DeviceID) to customerID:
// the PIN goes only into an encrypted PIN block, as in a withdrawal. With
// bindapi.CodeSent the bank has sent a code to the customer by SMS; any
// other result is the bank's answer (AlreadyBound, Refused with its
// response code, TooManyCodes, ...). An error means no usable answer.
func BindStart(ctx context.Context, cfg Config, customerID, pin string) (bindapi.Answer, error) {
	if err := bindapi.CheckCustomer(customerID); err != nil {
		return bindapi.Answer{}, fmt.Errorf("phonesim: customer ID: %w", err)
	}
	if !wire.ValidDeviceID(cfg.DeviceID) {
		return bindapi.Answer{}, errDeviceID
	}
	ph, err := NewPhone(cfg)
	if err != nil {
		return bindapi.Answer{}, err
	}
	defer ph.Close()
	block, err := ph.PINBlock(pin)
	if err != nil {
		return bindapi.Answer{}, err
	}
	return call(ctx, cfg, bindapi.PathStart, bindapi.StartRequest{Customer: customerID, Device: cfg.DeviceID,
		PINBlock: strings.ToUpper(hex.EncodeToString(block))})
}

// BindConfirm sends the code the customer received: bindapi.Bound when
// the phone is now bound; WrongCode (with the tries left), TooManyTries,
// CodeExpired or NoCode otherwise.
func BindConfirm(ctx context.Context, cfg Config, customerID, code string) (bindapi.Answer, error) {
	if !wire.ValidDeviceID(cfg.DeviceID) {
		return bindapi.Answer{}, errDeviceID
	}
	if !bindapi.ValidCode(code) {
		return bindapi.Answer{}, fmt.Errorf("phonesim: the code must be %d digits", bindapi.CodeLength)
	}
	return call(ctx, cfg, bindapi.PathConfirm, bindapi.ConfirmRequest{Customer: customerID, Device: cfg.DeviceID, Code: code})
}

// ReadSMSCode reads the code of the newest message in the host
// simulator's SMS inbox for customerID. SIMULATOR ONLY: the inbox is the
// simulator's stand-in for the SMS the customer's phone receives, which a
// real app reads (or the customer types in); no bank serves it.
func ReadSMSCode(ctx context.Context, cfg Config, customerID string) (string, error) {
	u, err := endpoint(cfg, bindapi.PathSimSMS)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, BindTimeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"?to="+url.QueryEscape(customerID), nil)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBind, err)
	}
	resp, err := bindClient.Do(hr)
	if err != nil {
		return "", fmt.Errorf("phonesim: SMS inbox: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, bindapi.MaxInboxBody+1))
	if err != nil {
		return "", fmt.Errorf("phonesim: SMS inbox: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: SMS inbox answered HTTP %d", ErrBind, resp.StatusCode)
	}
	in, err := bindapi.ParseInbox(b)
	if err != nil {
		return "", fmt.Errorf("%w: SMS inbox: %w", ErrBind, err)
	}
	if len(in.Messages) == 0 {
		return "", fmt.Errorf("%w: no SMS for this customer in the simulated inbox", ErrBind)
	}
	code, err := bindapi.CodeIn(in.Messages[len(in.Messages)-1].Text)
	if err != nil {
		return "", fmt.Errorf("%w: SMS: %w", ErrBind, err)
	}
	return code, nil
}

// Bind runs the whole flow: BindStart, then (with CodeSent) the code from
// code (ReadSMSCode in the simulator; a prompt for a person) and
// BindConfirm. It returns the last answer: Bound or AlreadyBound when the
// phone is bound, otherwise why not.
func Bind(ctx context.Context, cfg Config, customerID, pin string, code func(context.Context, bindapi.Answer) (string, error)) (bindapi.Answer, error) {
	a, err := BindStart(ctx, cfg, customerID, pin)
	if err != nil || a.Result != bindapi.CodeSent {
		return a, err
	}
	c, err := code(ctx, a)
	if err != nil {
		return a, err
	}
	return BindConfirm(ctx, cfg, customerID, c)
}
