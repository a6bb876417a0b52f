package phonesim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/cardless-atm/cardless/atm/qr"
	"github.com/cardless-atm/cardless/atm/receipt"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/pinblock"
)

// Key slots of the phone's own software HSM.
const (
	MACKey  hsm.KeyName = "phone.mac"
	DataKey hsm.KeyName = "phone.data"
)

// DefaultTimeout bounds a withdrawal request: longer than the proxy's
// default wait for the ATM (90 s).
const DefaultTimeout = 150 * time.Second

// Config configures the phone.
type Config struct {
	ProxyAddr string
	TPDU      []byte // optional 5-byte TPDU
	// MACKey and DataKey are the phone channel keys (hex), AppPINKey the
	// key that encrypts the PIN block for the host (hex). Development keys.
	MACKey, DataKey, AppPINKey string
	Timeout                    time.Duration // 0: DefaultTimeout
	Logger                     *slog.Logger
	// DeviceID is the phone's device ID (wire.DeviceIDLength upper-case
	// hex digits, wire.NewDeviceID), sent in field 123 of every
	// withdrawal; "" sends none (a bank that requires binding declines
	// such a request 57).
	DeviceID string
	// BindURL is the bank's bind endpoint (docs/binding.md), e.g.
	// "http://127.0.0.1:6101"; only Bind and its steps use it.
	BindURL string
}

// Outcome is the proxy's answer to a withdrawal request.
type Outcome struct {
	ResponseCode string `json:"response_code"`
	Meaning      string `json:"meaning,omitempty"` // the code in plain words (wire.ResponseText)
	Approved     bool   `json:"approved"`
	Amount       int64  `json:"amount"`    // requested, minor units
	Dispensed    int64  `json:"dispensed"` // paid out, minor units
	Currency     string `json:"currency"`
	AuthCode     string `json:"auth_code,omitempty"`
	RRN          string `json:"rrn,omitempty"`
	Terminal     string `json:"terminal"`
	STAN         string `json:"stan"`
	// Receipt is the receipt the ATM sent with an approved answer (field
	// 63), as the bank's app shows it (English lines).
	Receipt []string `json:"receipt,omitempty"`
}

// PaidInFull reports an approved withdrawal paid out entirely.
func (o Outcome) PaidInFull() bool { return o.Approved && o.Dispensed == o.Amount }

// ErrQR: the scanned text is not a cardless-withdrawal QR payload.
var ErrQR = errors.New("phonesim: not a cardless withdrawal QR code")

var stanCounter atomic.Uint32

func init() {
	var b [2]byte
	_, _ = rand.Read(b[:])
	stanCounter.Store(uint32(b[0])<<8 | uint32(b[1]))
}

// Phone holds the phone app's keys (MACKey, DataKey and hsm.AppPINKey) in
// its own software HSM and builds its withdrawal requests. Withdraw uses
// one per request; a caller that keeps its own connection to the proxy
// (a benchmark) can use one for many.
type Phone struct {
	m      *hsm.Soft
	device string
}

// NewPhone imports the keys of cfg (MACKey, DataKey, AppPINKey) and takes
// its DeviceID; the other fields are not used. Errors name the bad key,
// never its value.
func NewPhone(cfg Config) (*Phone, error) {
	if cfg.DeviceID != "" && !wire.ValidDeviceID(cfg.DeviceID) {
		return nil, errDeviceID
	}
	m := hsm.NewSoft()
	for _, k := range []struct {
		name hsm.KeyName
		hex  string
		what string
	}{{MACKey, cfg.MACKey, "MAC key"}, {DataKey, cfg.DataKey, "data key"}, {hsm.AppPINKey, cfg.AppPINKey, "app PIN key"}} {
		b, err := hex.DecodeString(k.hex)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("phonesim: %s is not valid hex", k.what)
		}
		_, err = m.ImportClearKey(k.name, b)
		clear(b)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("phonesim: %s: %w", k.what, err)
		}
	}
	return &Phone{m: m, device: cfg.DeviceID}, nil
}

var errDeviceID = fmt.Errorf("phonesim: the device ID must be %d upper-case hex digits", wire.DeviceIDLength)

// Close wipes the phone's keys.
func (ph *Phone) Close() { ph.m.Close() }

// Protector returns a new Protector of the phone channel with the phone's
// keys, to seal requests and open answers (for a wire.Codec).
func (ph *Phone) Protector() *wire.Protector {
	return wire.NewProtector(ph.m, wire.KeySet{NetMgmtMAC: MACKey, MAC: MACKey, Data: DataKey})
}

// Request builds the withdrawal request (0200, not yet sealed) for the
// scanned QR payload with the customer's ID and PIN: the PIN goes only
// into a format 1 PIN block encrypted with the app PIN key. Each request
// has a new STAN. A payload that does not parse is an ErrQR.
func (ph *Phone) Request(payloadText, customerID, pin string) (*iso8583.Message, error) {
	p, err := qr.Parse(payloadText)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQR, err)
	}
	if customerID == "" {
		return nil, errEmptyCustomer
	}
	encBlock, err := ph.PINBlock(pin)
	if err != nil {
		return nil, err
	}

	now := time.Now()
	req, err := wire.Build(&wire.Withdrawal{
		MTI:                  wire.MTIFinancialRequest,
		ProcessingCode:       wire.ProcCashWithdrawal,
		Amount:               wire.FormatAmount(p.Amount),
		TransmissionDateTime: wire.FormatTransmissionDT(now),
		STAN:                 wire.NextSTAN(&stanCounter),
		LocalTime:            wire.FormatLocalTime(now),
		LocalDate:            wire.FormatLocalDate(now),
		TerminalID:           p.TerminalID,
		Currency:             p.Currency,
		PINBlock:             encBlock,
		QRPayload:            payloadText,
		CustomerID:           customerID,
		DeviceID:             ph.device,
	})
	if err != nil {
		return nil, fmt.Errorf("phonesim: %w", err)
	}
	return req, nil
}

// PINBlock returns the customer's PIN as the host reads it (field 52 of a
// withdrawal, and the pinBlock of a bind request): an ISO 9564 format 1
// block with random fill, encrypted with the app PIN key. The clear block
// is wiped.
func (ph *Phone) PINBlock(pin string) ([]byte, error) {
	clearBlock, err := pinblock.Format1(pin, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("phonesim: PIN: %w", err)
	}
	encBlock, err := ph.m.Encrypt(hsm.AppPINKey, clearBlock)
	clear(clearBlock)
	if err != nil {
		return nil, fmt.Errorf("phonesim: encrypt PIN block: %w", err)
	}
	return encBlock, nil
}

var errEmptyCustomer = errors.New("phonesim: customer ID is empty")

// Withdraw sends the withdrawal request for the scanned QR payload with
// the customer's ID and PIN (the PIN goes only into an encrypted format 1
// PIN block) and waits for the answer.
func Withdraw(ctx context.Context, cfg Config, payloadText, customerID, pin string) (Outcome, error) {
	p, err := qr.Parse(payloadText)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %w", ErrQR, err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if customerID == "" {
		return Outcome{}, errEmptyCustomer
	}
	ph, err := NewPhone(cfg)
	if err != nil {
		return Outcome{}, err
	}
	defer ph.Close()
	req, err := ph.Request(payloadText, customerID, pin)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Amount: p.Amount, Currency: p.Currency, Terminal: p.TerminalID, STAN: wire.STAN(req)}

	codec := &wire.Codec{Framer: wire.Framer{TPDU: cfg.TPDU}, Protector: ph.Protector(),
		OnReject: func(mti, stan string, err error) {
			cfg.Logger.Warn("answer refused", "mti", mti, "stan", stan, "reason", err)
		}}
	conn, err := connection.New(cfg.ProxyAddr, wire.Spec, nil, nil,
		connection.SetMessageReader(codec), connection.SetMessageWriter(codec),
		connection.SendTimeout(cfg.Timeout), connection.ConnectTimeout(min(cfg.Timeout, 10*time.Second)),
		connection.ErrorHandler(func(err error) { cfg.Logger.Debug("proxy link", "err", err) }))
	if err != nil {
		return out, fmt.Errorf("phonesim: %w", err)
	}
	if err := conn.ConnectCtx(ctx); err != nil {
		return out, fmt.Errorf("phonesim: connect: %w", err)
	}
	defer conn.Close()
	cfg.Logger.Debug("request", "msg", wire.Loggable(req))

	type res struct {
		m   *iso8583.Message
		err error
	}
	ch := make(chan res, 1)
	go func() {
		r, err := conn.Send(req)
		ch <- res{r, err}
	}()
	var resp *iso8583.Message
	select {
	case r := <-ch:
		if r.err != nil {
			return out, fmt.Errorf("phonesim: request: %w", r.err)
		}
		resp = r.m
	case <-ctx.Done():
		return out, ctx.Err()
	}
	cfg.Logger.Debug("answer", "msg", wire.Loggable(resp))
	var ans wire.Withdrawal
	if err := wire.Parse(resp, &ans); err != nil {
		return out, err
	}
	out.ResponseCode, out.AuthCode, out.RRN = ans.ResponseCode, ans.AuthCode, ans.RRN
	out.Meaning = wire.ResponseText(ans.ResponseCode)
	out.Approved = ans.ResponseCode == wire.RCApproved
	if ans.ReplacementAmounts != "" && !out.Approved {
		return out, fmt.Errorf("phonesim: answer %s carries field 95, which only an approved partial payout may (protocol.md §7.2)", ans.ResponseCode)
	}
	if ans.ReplacementAmounts != "" {
		ra, err := wire.ParseReplacementAmounts(ans.ReplacementAmounts)
		if err != nil {
			return out, fmt.Errorf("phonesim: answer field 95: %w", err)
		}
		out.Dispensed = ra.Transaction
	} else if out.Approved {
		out.Dispensed = p.Amount
	}
	if ans.Receipt != "" {
		if !out.Approved {
			return out, fmt.Errorf("phonesim: answer %s carries a receipt (field 63), which only an approval may", ans.ResponseCode)
		}
		r, err := receipt.Decode(ans.Receipt)
		if err != nil {
			return out, fmt.Errorf("phonesim: answer field 63: %w", err)
		}
		if r.Amount != out.Dispensed || r.RRN != out.RRN || r.AuthCode != out.AuthCode {
			return out, fmt.Errorf("phonesim: the receipt (paid %d, RRN %s) disagrees with the answer (paid %d, RRN %s)", r.Amount, r.RRN, out.Dispensed, out.RRN)
		}
		lines, _ := r.Lines("en")
		for _, l := range lines {
			out.Receipt = append(out.Receipt, l.Text)
		}
	}
	return out, nil
}

// DecodePNG reads a QR code from a PNG image (from its pixels, as a
// phone camera would) and returns its text.
func DecodePNG(r io.Reader) (string, error) {
	img, err := png.Decode(r)
	if err != nil {
		return "", fmt.Errorf("phonesim: PNG: %w", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", fmt.Errorf("phonesim: image: %w", err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		return "", fmt.Errorf("phonesim: no QR code found: %w", err)
	}
	return res.GetText(), nil
}

// WaitScreenQR waits up to d until the PNG at path (a screen the ATM
// rendered) shows the QR code want, decoded from its pixels as the phone's
// camera would. It polls the file every 100 ms: it watches another
// process's output, so it runs on real time.
func WaitScreenQR(ctx context.Context, path, want string, d time.Duration) error {
	deadline := time.Now().Add(d)
	last := errors.New("no picture taken")
	for time.Now().Before(deadline) && ctx.Err() == nil {
		f, err := os.Open(path)
		if err == nil {
			var got string
			got, err = DecodePNG(f)
			f.Close()
			if err == nil && got == want {
				return nil
			}
			if err == nil {
				err = errors.New("it shows another code")
			}
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("phonesim: the screen %s does not show the session's QR code (last picture: %v)", path, last)
}

// FileConfig is the JSON configuration (configs/phonesim.json).
type FileConfig struct {
	Comment   string `json:"_comment,omitempty"`
	Proxy     string `json:"proxy,omitempty"`
	TPDU      string `json:"tpdu,omitempty"`
	MACKey    string `json:"macKey"`
	DataKey   string `json:"dataKey"`
	AppPINKey string `json:"appPinKey"`
	Timeout   string `json:"timeout,omitempty"`
	DeviceID  string `json:"deviceId,omitempty"`
	BindURL   string `json:"bindUrl,omitempty"`
}

// LoadConfig reads and validates a JSON configuration file. Errors name
// the bad field, never a key's value.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("phonesim: config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var fc FileConfig
	if err := dec.Decode(&fc); err != nil {
		return Config{}, fmt.Errorf("phonesim: config %s: %w", path, err)
	}
	var errs []error
	cfg := Config{ProxyAddr: fc.Proxy, MACKey: fc.MACKey, DataKey: fc.DataKey, AppPINKey: fc.AppPINKey,
		DeviceID: fc.DeviceID, BindURL: fc.BindURL}
	if fc.DeviceID != "" && !wire.ValidDeviceID(fc.DeviceID) {
		errs = append(errs, fmt.Errorf("phonesim: config %s: deviceId must be %d upper-case hex digits", path, wire.DeviceIDLength))
	}
	if fc.BindURL != "" {
		if err := checkBindURL(fc.BindURL); err != nil {
			errs = append(errs, fmt.Errorf("phonesim: config %s: bindUrl: %w", path, err))
		}
	}
	for name, v := range map[string]string{"macKey": fc.MACKey, "dataKey": fc.DataKey, "appPinKey": fc.AppPINKey} {
		if _, err := hex.DecodeString(v); err != nil || (len(v) != 32 && len(v) != 48) {
			errs = append(errs, fmt.Errorf("phonesim: config %s: %s must be 32 or 48 hex digits", path, name))
		}
	}
	if t, err := wire.ParseTPDU(fc.TPDU); err != nil {
		errs = append(errs, fmt.Errorf("phonesim: config %s: tpdu must be 10 hex digits starting 60", path))
	} else {
		cfg.TPDU = t
	}
	if fc.Timeout != "" {
		d, err := time.ParseDuration(fc.Timeout)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("phonesim: config %s: timeout must be a positive duration such as \"150s\"", path))
		}
		cfg.Timeout = d
	}
	return cfg, errors.Join(errs...)
}
