package hostsim

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

// Config configures a Server. It is loaded from JSON by LoadConfig (unknown
// fields are refused); Logger and Now are set in code.
type Config struct {
	// Comment is free text; configuration files use it to mark development
	// keys ("DEVELOPMENT KEY - NOT FOR PRODUCTION").
	Comment string `json:"_comment,omitempty"`
	// DBPath is the host's own bbolt file (accounts, authorizations, totals).
	DBPath string `json:"dbPath"`
	// Terminals admitted, by terminal ID (field 41), with their host-link keys.
	Terminals map[string]HostTerminal `json:"terminals"`
	// AppPINKey decrypts field 52 (3DES, 32 or 48 hex digits, development only).
	AppPINKey string `json:"appPinKey"`
	// TokenKey is the HMAC-SHA256 key of the dispense tokens (at least 32 hex digits).
	TokenKey string `json:"tokenKey"`
	// Customers are written to the database on its first start only.
	Customers []Customer `json:"customers"`
	// Currencies by ISO 4217 numeric code, e.g. "156": {"alpha":"CNY","exponent":2}.
	Currencies map[string]Currency `json:"currencies"`
	// TPDU, when set, is the 5-byte TPDU (10 hex digits, first byte 60)
	// expected before every message and written before every answer.
	TPDU string `json:"tpdu,omitempty"`
	// Faults to inject from the start; SetFaults changes them at run time.
	Faults Faults `json:"faults"`
	// Logger receives the host's log; nil discards it.
	Logger *slog.Logger `json:"-"`
	// Now is the clock (RRNs, the year of field 7); nil means time.Now.
	Now func() time.Time `json:"-"`
	// DayZone is the IANA time zone (e.g. "Asia/Shanghai") whose calendar
	// day an authorization counts for in the totals and daily limits; empty
	// means UTC. The day is that of the 0200's transmission time (field 7),
	// the instant the ATM books the withdrawal by too.
	DayZone string `json:"dayZone,omitempty"`
	// Limits bound the listener: connections in total and per source
	// address, and how long a connection may stay silent, take over one
	// frame, or idle between frames (empty: connlimit's defaults). The
	// bind endpoint takes the same caps on connections.
	Limits connlimit.FileLimits `json:"limits,omitempty"`
	// Binding is phone binding (docs/binding.md): whether a withdrawal
	// must come from a phone bound to the customer, the verification
	// codes, and the phones bound from the start.
	Binding Binding `json:"binding"`
}

// Binding configures phone binding (docs/binding.md).
type Binding struct {
	Comment string `json:"_comment,omitempty"`
	// Optional lets a withdrawal through from a phone that is not bound
	// to its customer, or that sends no device ID (field 123): for a bank
	// whose apps predate binding. The default, false, declines it 57.
	Optional bool `json:"optional,omitempty"`
	// CodeTTL is how long a verification code is valid (1m-30m; default
	// DefaultCodeTTL).
	CodeTTL time.Duration `json:"codeTtl"`
	// MaxTries is how many wrong codes void a code (1-10; default
	// DefaultMaxTries).
	MaxTries int `json:"maxTries"`
	// MaxCodesPerDay is how many codes one customer may be sent in a day
	// (in DayZone; 1-100; default DefaultMaxCodesPerDay).
	MaxCodesPerDay int `json:"maxCodesPerDay"`
	// Devices are bound when the database's bindings are created (its
	// first start with binding): the development phone of
	// configs/phonesim.json, for the demo customers.
	Devices []BoundDevice `json:"devices"`
}

// BoundDevice is a phone bound to a customer from the start.
type BoundDevice struct {
	Customer string `json:"customer"`
	Device   string `json:"device"` // wire.DeviceIDLength upper-case hex digits
}

// Defaults of Binding.
const (
	DefaultCodeTTL        = 5 * time.Minute
	DefaultMaxTries       = 3
	DefaultMaxCodesPerDay = 10
)

// withDefaults returns b with its zero fields set to the defaults.
func (b Binding) withDefaults() Binding {
	if b.CodeTTL == 0 {
		b.CodeTTL = DefaultCodeTTL
	}
	if b.MaxTries == 0 {
		b.MaxTries = DefaultMaxTries
	}
	if b.MaxCodesPerDay == 0 {
		b.MaxCodesPerDay = DefaultMaxCodesPerDay
	}
	return b
}

// UnmarshalJSON accepts codeTtl as a Go duration string ("5m") and
// refuses unknown fields.
func (b *Binding) UnmarshalJSON(raw []byte) error {
	type plain Binding
	var aux struct {
		plain
		CodeTTL string `json:"codeTtl"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	*b = Binding(aux.plain)
	if aux.CodeTTL != "" {
		d, err := time.ParseDuration(aux.CodeTTL)
		if err != nil {
			return fmt.Errorf("binding.codeTtl %q is not a duration such as \"5m\"", aux.CodeTTL)
		}
		b.CodeTTL = d
	}
	return nil
}

// Zone returns the location of DayZone (UTC when empty).
func (c *Config) Zone() (*time.Location, error) {
	if c.DayZone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(c.DayZone)
}

// HostTerminal holds one admitted terminal's host-link keys as clear hex
// (development configuration): MACKey is the MAC key for every message,
// DataKey the key of the encrypted fields.
type HostTerminal struct {
	Comment string `json:"_comment,omitempty"`
	MACKey  string `json:"macKey"`
	DataKey string `json:"dataKey"`
}

// Customer is an account holder. PIN is only used to seed the database,
// which keeps a salted hash of it.
type Customer struct {
	ID          string `json:"id"`
	PIN         string `json:"pin"`
	Name        string `json:"name"`
	Balance     int64  `json:"balance"`     // minor units
	DailyLimit  int64  `json:"dailyLimit"`  // minor units; 0 = no limit
	PerTxnLimit int64  `json:"perTxnLimit"` // minor units; 0 = no limit
	Blocked     bool   `json:"blocked"`
}

// Currency is what the dispense token needs to know of a currency.
type Currency struct {
	Alpha    string `json:"alpha"`    // ISO 4217 alphabetic code, e.g. "CNY"
	Exponent int    `json:"exponent"` // minor unit digits, e.g. 2
}

// Faults are injected failures (see the package documentation for the
// magic customer IDs that choose them per message).
type Faults struct {
	// SlowAnswer delays every answer by this long (after processing).
	SlowAnswer time.Duration `json:"slowAnswer"`
	// NoAnswer drops every financial request unprocessed and unanswered.
	NoAnswer bool `json:"noAnswer"`
	// Decline, when set, answers every 0200 with this response code.
	Decline string `json:"decline"`
	// DropAfterApprove closes the connection instead of sending a 0210
	// that approves (the debit stands until a reversal arrives).
	DropAfterApprove bool `json:"dropAfterApprove"`
}

// UnmarshalJSON accepts slowAnswer as a Go duration string ("2s").
func (f *Faults) UnmarshalJSON(b []byte) error {
	type plain Faults
	var aux struct {
		plain
		SlowAnswer string `json:"slowAnswer"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	*f = Faults(aux.plain)
	if aux.SlowAnswer != "" {
		d, err := time.ParseDuration(aux.SlowAnswer)
		if err != nil || d < 0 {
			return fmt.Errorf("faults.slowAnswer %q is not a duration such as \"2s\"", aux.SlowAnswer)
		}
		f.SlowAnswer = d
	}
	return nil
}

// LoadConfig reads and validates a JSON configuration file.
func LoadConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("hostsim: config: %w", err)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("hostsim: config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("hostsim: config %s: %w", path, err)
	}
	return c, nil
}

// Validate checks every value and names each bad one. Key errors never
// contain the key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if _, err := c.Limits.Limits(); err != nil {
		bad("limits: %v", err)
	}
	if c.DBPath == "" {
		bad("dbPath is required")
	}
	if _, err := c.Zone(); err != nil {
		bad("dayZone %q is not a time zone: %v", c.DayZone, err)
	}
	if len(c.Terminals) == 0 {
		bad("terminals: at least one terminal is required")
	}
	for id, t := range c.Terminals {
		if id == "" || len(id) > 8 {
			bad("terminals: terminal ID %q must be 1-8 characters", id)
		}
		if !isTDESHex(t.MACKey) {
			bad("terminals.%s.macKey must be 32 or 48 hex digits", id)
		}
		if !isTDESHex(t.DataKey) {
			bad("terminals.%s.dataKey must be 32 or 48 hex digits", id)
		}
	}
	if !isTDESHex(c.AppPINKey) {
		bad("appPinKey must be 32 or 48 hex digits")
	}
	if k, err := hex.DecodeString(c.TokenKey); err != nil || len(k) < 16 {
		bad("tokenKey must be at least 32 hex digits")
	}
	seen := map[string]bool{}
	for i, cu := range c.Customers {
		switch {
		case cu.ID == "":
			bad("customers[%d].id is required", i)
		case seen[cu.ID]:
			bad("customers[%d].id %q is a duplicate", i, cu.ID)
		}
		seen[cu.ID] = true
		if !validPIN(cu.PIN) {
			bad("customers[%d].pin must be 4-12 digits", i)
		}
		if cu.Balance < 0 || cu.DailyLimit < 0 || cu.PerTxnLimit < 0 {
			bad("customers[%d]: balance and limits must not be negative", i)
		}
	}
	if len(c.Currencies) == 0 {
		bad("currencies: at least one currency is required")
	}
	for num, cur := range c.Currencies {
		if len(num) != 3 || !wire.IsDigits(num) {
			bad("currencies: key %q must be a 3-digit ISO 4217 numeric code", num)
		}
		if len(cur.Alpha) != 3 {
			bad("currencies.%s.alpha %q must be a 3-letter ISO 4217 code", num, cur.Alpha)
		}
		if cur.Exponent < 0 || cur.Exponent > 3 {
			bad("currencies.%s.exponent %d must be 0-3", num, cur.Exponent)
		}
	}
	bd := c.Binding.withDefaults()
	if bd.CodeTTL < time.Minute || bd.CodeTTL > 30*time.Minute {
		bad("binding.codeTtl %s must be 1m-30m", bd.CodeTTL)
	}
	if bd.MaxTries < 1 || bd.MaxTries > 10 {
		bad("binding.maxTries %d must be 1-10", bd.MaxTries)
	}
	if bd.MaxCodesPerDay < 1 || bd.MaxCodesPerDay > 100 {
		bad("binding.maxCodesPerDay %d must be 1-100", bd.MaxCodesPerDay)
	}
	for i, d := range c.Binding.Devices {
		if !seen[d.Customer] {
			bad("binding.devices[%d].customer is not one of customers", i)
		}
		if !wire.ValidDeviceID(d.Device) {
			bad("binding.devices[%d].device must be %d upper-case hex digits", i, wire.DeviceIDLength)
		}
	}
	if c.Faults.Decline != "" && (len(c.Faults.Decline) != 2 || c.Faults.Decline == "00") {
		bad("faults.decline %q must be a 2-character response code other than 00", c.Faults.Decline)
	}
	return errors.Join(errs...)
}

func isTDESHex(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && (len(b) == 16 || len(b) == 24)
}

func validPIN(p string) bool { return len(p) >= 4 && len(p) <= 12 && wire.IsDigits(p) }
