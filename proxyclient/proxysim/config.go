package proxysim

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/internal/connlimit"
)

// Terminal is an admitted ATM.
type Terminal struct {
	Comment string `json:"_comment,omitempty"`
	// TMK is the terminal master key as hex (32 or 48 digits, odd parity).
	// Clear keys in configuration are for development only.
	TMK      string `json:"tmk"`
	Location string `json:"location"` // field 43, at most 40 characters
}

// Faults are injected failures. The zero value injects none.
type Faults struct {
	// DropLinkAfter closes an ATM link after it has received this many
	// messages from the ATM (0: never). The ATM reconnects and signs on.
	DropLinkAfter int `json:"dropLinkAfter"`
	// Delay holds every dispense command for this long before it is sent
	// to the ATM.
	Delay time.Duration `json:"-"`
	// DuplicateCommand sends every dispense command twice, with the same
	// STAN; the ATM must answer the second 94 without paying.
	DuplicateCommand bool `json:"duplicateCommand"`
	// CorruptMAC flips a bit of the MAC of every dispense command (0200)
	// sent to an ATM; the ATM must refuse it and never handle it.
	CorruptMAC bool `json:"corruptMac"`
	// BadKCV puts a TAK the ATM cannot verify in key changes (PushKeys: a wrong
	// check value, or a TR-31 block with a changed MAC); the
	// ATM must refuse them and keep its keys.
	BadKCV bool `json:"badKcv"`
	// SwapKeyUsage issues the TR-31 blocks of sign-ons and key changes
	// with the usages swapped (the MAC key as a data key and the other way
	// round), each block well formed and verifiable: the ATM must refuse
	// them by their usage.
	SwapKeyUsage bool `json:"swapKeyUsage"`
}

// Config configures a Server.
type Config struct {
	Terminals map[string]Terminal
	// PhoneMACKey and PhoneDataKey are the phone channel's keys as hex
	// (development keys shared by every phone of the simulator).
	PhoneMACKey, PhoneDataKey string
	TPDU                      []byte        // optional 5-byte TPDU on both listeners
	ATMTimeout                time.Duration // wait for the ATM's 0210; then the phone gets 91
	SendTimeout               time.Duration // bound on 08xx exchanges with an ATM
	// ATMLimits and PhoneLimits bound each listener: connections in total
	// and per source address, and the first-byte, frame and idle deadlines
	// (zero fields: connlimit's defaults).
	ATMLimits, PhoneLimits connlimit.Limits
	// PhoneRefusalLimit is how many refused requests (answered 12, 13,
	// 30, 54 or 94; declines do not count) a phone source address may have
	// in PhoneWindow before its requests are answered 65 without reaching
	// an ATM (DefaultRefusalLimit when zero).
	PhoneRefusalLimit int
	// KeyFormat is how working keys are issued at sign-on and key
	// change: wire.KeyFormatTR31 (the zero value: TR-31 version B key
	// blocks under the KBPKVariant of each terminal's TMK) or
	// wire.KeyFormatLegacy (3DES-ECB under the TMK with KCVs), for
	// terminals that take only that.
	KeyFormat wire.KeyFormat
	Faults    Faults
	Logger    *slog.Logger
	// Now is the clock of fields 7, 12 and 13 in the messages the server
	// originates; nil means time.Now.
	Now func() time.Time
}

// Default timeouts.
const (
	DefaultATMTimeout  = 90 * time.Second
	DefaultSendTimeout = 15 * time.Second
)

func (c *Config) validate() error {
	var errs []error
	if len(c.Terminals) == 0 {
		errs = append(errs, errors.New("proxysim: no terminals configured"))
	}
	for id, t := range c.Terminals {
		if !validTerminalID(id) {
			errs = append(errs, fmt.Errorf("proxysim: terminal ID %q must be 1 to 8 characters 0-9 A-Z", id))
		}
		if err := checkKeyHex(t.TMK); err != nil {
			errs = append(errs, fmt.Errorf("proxysim: terminal %s: tmk %w", id, err))
		}
		if len(t.Location) > 40 {
			errs = append(errs, fmt.Errorf("proxysim: terminal %s: location longer than 40 characters", id))
		}
	}
	if err := checkKeyHex(c.PhoneMACKey); err != nil {
		errs = append(errs, fmt.Errorf("proxysim: phone MAC key %w", err))
	}
	if err := checkKeyHex(c.PhoneDataKey); err != nil {
		errs = append(errs, fmt.Errorf("proxysim: phone data key %w", err))
	}
	if wire.CheckTPDU(c.TPDU) != nil {
		errs = append(errs, errors.New("proxysim: TPDU must be 5 bytes starting 0x60"))
	}
	if err := c.ATMLimits.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("proxysim: ATM limits: %w", err))
	}
	if err := c.PhoneLimits.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("proxysim: phone limits: %w", err))
	}
	if c.ATMTimeout < 0 || c.SendTimeout < 0 || c.Faults.Delay < 0 || c.Faults.DropLinkAfter < 0 {
		errs = append(errs, errors.New("proxysim: timeouts, delay and drop_link_after must not be negative"))
	}
	if c.PhoneRefusalLimit == 0 {
		c.PhoneRefusalLimit = DefaultRefusalLimit
	}
	if c.ATMTimeout == 0 {
		c.ATMTimeout = DefaultATMTimeout
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = DefaultSendTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return errors.Join(errs...)
}

func validTerminalID(id string) bool {
	if id == "" || len(id) > 8 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !(id[i] >= '0' && id[i] <= '9' || id[i] >= 'A' && id[i] <= 'Z') {
			return false
		}
	}
	return true
}

// checkKeyHex checks the form of a hex key without ever quoting it.
func checkKeyHex(s string) error {
	if len(s) != 32 && len(s) != 48 {
		return fmt.Errorf("must be 32 or 48 hex digits (got %d characters)", len(s))
	}
	if _, err := hex.DecodeString(s); err != nil {
		return errors.New("is not valid hex")
	}
	return nil
}

// FileConfig is the JSON form of the configuration (configs/proxysim.json).
type FileConfig struct {
	Comment      string               `json:"_comment,omitempty"`
	ATMListen    string               `json:"atmListen"`
	PhoneListen  string               `json:"phoneListen"`
	TPDU         string               `json:"tpdu,omitempty"` // 10 hex digits, e.g. "6000010000"
	ATMTimeout   string               `json:"atmTimeout,omitempty"`
	SendTimeout  string               `json:"sendTimeout,omitempty"`
	ATMLimits    connlimit.FileLimits `json:"atmLimits,omitempty"`
	PhoneLimits  connlimit.FileLimits `json:"phoneLimits,omitempty"`
	Terminals    map[string]Terminal  `json:"terminals"`
	PhoneMACKey  string               `json:"phoneMacKey"`
	PhoneDataKey string               `json:"phoneDataKey"`
	KeyBlocks    string               `json:"keyBlocks,omitempty"` // "tr31" (default) or "legacy"
	Faults       struct {
		Faults
		Delay string `json:"delay,omitempty"`
	} `json:"faults"`
}

// LoadConfig reads a JSON configuration file. Unknown fields and bad
// values are errors that name the field (never a key's value).
func LoadConfig(path string) (cfg Config, atmListen, phoneListen string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, "", "", fmt.Errorf("proxysim: config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var fc FileConfig
	if err := dec.Decode(&fc); err != nil {
		return Config{}, "", "", fmt.Errorf("proxysim: config %s: %w", path, err)
	}
	var errs []error
	dur := func(name, s string) time.Duration {
		if s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("proxysim: config %s: %s must be a duration such as \"90s\"", path, name))
		}
		return d
	}
	cfg = Config{
		Terminals:    fc.Terminals,
		PhoneMACKey:  fc.PhoneMACKey,
		PhoneDataKey: fc.PhoneDataKey,
		ATMTimeout:   dur("atmTimeout", fc.ATMTimeout),
		SendTimeout:  dur("sendTimeout", fc.SendTimeout),
		Faults:       fc.Faults.Faults,
	}
	cfg.Faults.Delay = dur("faults.delay", fc.Faults.Delay)
	if cfg.KeyFormat, err = wire.ParseKeyFormat(fc.KeyBlocks); err != nil {
		errs = append(errs, fmt.Errorf("proxysim: config %s: keyBlocks: %w", path, err))
	}
	if cfg.ATMLimits, err = fc.ATMLimits.Limits(); err != nil {
		errs = append(errs, fmt.Errorf("proxysim: config %s: atmLimits: %w", path, err))
	}
	if cfg.PhoneLimits, err = fc.PhoneLimits.Limits(); err != nil {
		errs = append(errs, fmt.Errorf("proxysim: config %s: phoneLimits: %w", path, err))
	}
	if t, err := wire.ParseTPDU(fc.TPDU); err != nil {
		errs = append(errs, fmt.Errorf("proxysim: config %s: tpdu must be 10 hex digits starting 60", path))
	} else {
		cfg.TPDU = t
	}
	if fc.ATMListen == "" {
		fc.ATMListen = "127.0.0.1:0"
	}
	if fc.PhoneListen == "" {
		fc.PhoneListen = "127.0.0.1:0"
	}
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, "", "", err
	}
	return cfg, fc.ATMListen, fc.PhoneListen, nil
}
