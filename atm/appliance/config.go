package appliance

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/wire"
)

// Duration is a time.Duration written as text in JSON ("120s", "1m30s").
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Config is the appliance's configuration file (configs/atm.json).
type Config struct {
	Comment       string `json:"_comment,omitempty"`
	TerminalID    string `json:"terminalId"`
	Location      string `json:"location"`
	Currency      string `json:"currency"`      // ISO 4217 numeric
	CurrencyAlpha string `json:"currencyAlpha"` // ISO 4217 alphabetic
	Exponent      int    `json:"exponent"`
	DataDir       string `json:"dataDir"`
	// NewStore allows New to create atm.db when it does not exist: only
	// on a new terminal's first start (cmd/atm --new-store). Without it a
	// missing store stops the start (ErrNoStore) instead of starting over
	// with empty daily totals, STANs and counters.
	NewStore    bool      `json:"-"`
	SessionTTL  Duration  `json:"sessionTtl"`
	TakeTimeout Duration  `json:"takeTimeout"`
	Limits      Limits    `json:"limits"`
	Presets     []int64   `json:"presets"`
	Keys        Keys      `json:"keys"`
	Proxy       Link      `json:"proxy"`
	Host        Link      `json:"host"`
	Dispenser   Dispenser `json:"dispenser"`
	Screen      Screen    `json:"screen"`
	Control     Control   `json:"control"`
	Journal     Journal   `json:"journal,omitempty"`
	Printer     *Printer  `json:"printer,omitempty"`
	NFC         *NFC      `json:"nfc,omitempty"`
	Audio       *Audio    `json:"audio,omitempty"`
	LogLevel    string    `json:"logLevel"`
	// DayZone is the IANA time zone (e.g. "Asia/Shanghai") whose calendar
	// day a withdrawal counts for (daily limit, /totals); empty means UTC.
	// It must match the host's (hostsim's dayZone): both book a withdrawal
	// by the transmission time of its authorization request.
	DayZone string `json:"dayZone,omitempty"`
}

// NFC is the contactless reader the phone taps (docs/nfc.md): absent, the
// screen offers only the QR code.
type NFC struct {
	// Reader picks the PC/SC reader whose name contains it ("" the first).
	Reader string `json:"reader"`
	// AID is the bank app's application identifier, 5-16 bytes in hex.
	AID string `json:"aid"`
}

// AIDBytes returns the AID (validated by Config.Validate).
func (n NFC) AIDBytes() []byte {
	b, _ := hex.DecodeString(n.AID)
	return b
}

// Printer is the receipt printer: an ESC/POS printer on a serial port.
type Printer struct {
	Driver string `json:"driver"` // "escpos"
	Port   string `json:"port"`   // e.g. /dev/ttyUSB1
	Baud   int    `json:"baud,omitempty"`
}

// Audio is the audio guidance for the headphone jack (ADA 2010 §707):
// the keypad's 5 held down for two seconds (or Key) turns on speech that
// reads each customer screen, and the screen goes dark for privacy.
type Audio struct {
	Enabled bool `json:"enabled"`
	// Command is the synthesizer (default "espeak-ng", Debian package
	// espeak-ng).
	Command string `json:"command,omitempty"`
	// Player plays the synthesizer's WAV stream read on its standard
	// input, e.g. ["aplay", "-q"] or ["paplay"]; empty: espeak-ng plays
	// on the default audio output itself.
	Player []string `json:"player,omitempty"`
	// Key, when set, also toggles the guidance: "F9", "F10" or "F11" (the
	// key the headphone jack's driver reports on insertion, or a key of
	// its own).
	Key string `json:"key,omitempty"`
	// Voices overrides espeak-ng's voice per language: {"en": "en-us",
	// "zh": "cmn-latn-pinyin"}.
	Voices map[string]string `json:"voices,omitempty"`
}

// Journal configures where the electronic journal goes besides the store.
type Journal struct {
	// ExportDir, when set, receives every closed day (in dayZone) of the
	// journal as a segment file that verifies offline (atmctl journal
	// verify); the bank collects them for its archive and disputes.
	ExportDir string `json:"exportDir,omitempty"`
	// RetentionDays: entries older than this, once exported, move out of
	// the live store (default 90; only with exportDir: nothing leaves the
	// store before it is exported). The file keeps its size until
	// atmctl store compact runs (appliance stopped).
	RetentionDays int `json:"retentionDays,omitempty"`
}

// DefaultRetentionDays is how long exported journal entries stay in the
// live store.
const DefaultRetentionDays = 90

// Zone returns the location of DayZone (UTC when empty).
func (c *Config) Zone() (*time.Location, error) {
	if c.DayZone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(c.DayZone)
}

// Limits in minor units.
type Limits struct {
	Min      int64 `json:"min"`
	Max      int64 `json:"max"`
	Multiple int64 `json:"multiple"`
	Daily    int64 `json:"daily"`
}

// Keys says where the terminal's keys come from: a key store file loaded by
// the key ceremony (atmctl key load-tmk), or, for development only, clear
// keys in this file.
type Keys struct {
	Store          string      `json:"store,omitempty"`          // encrypted key store file
	StorageKeyFile string      `json:"storageKeyFile,omitempty"` // its storage key
	PKCS11         *PKCS11Keys `json:"pkcs11,omitempty"`         // keys in a PKCS#11 token instead
	Dev            *DevKeys    `json:"development,omitempty"`
}

// PKCS11Keys selects a PKCS#11 token that holds the terminal's keys
// (hsm/p11). Linux builds with cgo only.
type PKCS11Keys struct {
	Module     string `json:"module"`     // the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
	TokenLabel string `json:"tokenLabel"` // the token's label
	PINFile    string `json:"pinFile"`    // a file holding the user PIN (mode 0600), never the PIN itself
	// ClearKeyFallback allows loading a key through its clear value in
	// memory where the token lacks the mechanism to do it inside (see
	// hsm/p11 and docs/keys.md). The start-up log names every such path.
	ClearKeyFallback bool `json:"clearKeyFallback,omitempty"`
}

// DevKeys are clear development keys. NEVER use them in production.
type DevKeys struct {
	Comment  string `json:"_comment,omitempty"`
	TMK      string `json:"tmk"`
	HostMAC  string `json:"hostMac"`
	HostData string `json:"hostData"`
	QRMAC    string `json:"qrMac"`
	// JournalMAC is the HMAC-SHA256 key (32 bytes, hex) authenticating the
	// electronic journal's head (hsm.JournalKey). A production key store
	// generates its own inside the module instead.
	JournalMAC string `json:"journalMac"`
}

// Link is the address and framing of the proxy or host link.
type Link struct {
	Addr         string   `json:"addr"`
	TPDU         string   `json:"tpdu,omitempty"` // 10 hex digits, empty for none
	AcquirerID   string   `json:"acquirerId,omitempty"`
	SendTimeout  Duration `json:"sendTimeout,omitempty"`
	EchoInterval Duration `json:"echoInterval,omitempty"`
	// KeyBlocks (proxy only) is the one format in which working keys are
	// accepted at sign-on: "tr31" (default: TR-31 key blocks) or "legacy"
	// (keys under the TMK with KCVs, for older proxies).
	KeyBlocks string `json:"keyBlocks,omitempty"`
}

// Dispenser selects and configures the cash dispenser driver.
type Dispenser struct {
	Driver  string            `json:"driver"` // "sim", "xfs4iot" or "lcdm"
	Sim     *DispenserSim     `json:"sim,omitempty"`
	XFS4IoT *DispenserXFS4IoT `json:"xfs4iot,omitempty"`
	LCDM    *DispenserLCDM    `json:"lcdm,omitempty"`
}

// DispenserXFS4IoT configures the XFS4IoT driver: a CEN XFS4IoT service
// (JSON over WebSocket) that checks the host's end-to-end token inside the
// device.
type DispenserXFS4IoT struct {
	// Publisher is the service publisher's URL,
	// ws(s)://HOST:PORT/xfs4iot/v1.0 (standard ports 80, 443, 5846-5856).
	Publisher string `json:"publisher"`
	// CAFile (wss:// only) is the PEM file of the CA that signed the
	// service's certificate; empty: the system's roots.
	CAFile string `json:"caFile,omitempty"`
	// CommandTimeout bounds one command (default 60s; a dispense of many
	// notes takes seconds).
	CommandTimeout Duration `json:"commandTimeout,omitempty"`
	// ResponseKeyFile holds (hex) the key the device signs its
	// present-status response tokens with. Without it recovery does not
	// believe the device's account of an interrupted dispense and leaves
	// the session to an operator.
	ResponseKeyFile string `json:"responseKeyFile,omitempty"`
}

// DispenserLCDM configures the Puloon LCDM serial driver. A serial
// dispenser cannot check an end-to-end token: the driver checks it, with
// the host's token key on this PC (prefer XFS4IoT in production).
type DispenserLCDM struct {
	Port         string               `json:"port"`  // e.g. /dev/ttyUSB0
	Model        string               `json:"model"` // "lcdm2000"
	Units        []dispenser.CashUnit `json:"units"` // upper, then lower cassette
	MaxNotes     int                  `json:"maxNotes"`
	LowThreshold int                  `json:"lowThreshold"`
	// TokenKeyFile holds (hex) the host's end-to-end token key.
	TokenKeyFile string `json:"tokenKeyFile"`
}

// DispenserSim configures the simulated dispenser.
type DispenserSim struct {
	Units        []dispenser.CashUnit `json:"units"`
	MaxNotes     int                  `json:"maxNotes"`
	LowThreshold int                  `json:"lowThreshold"`
	TokenKey     string               `json:"tokenKey"` // DEVELOPMENT: the device's token key, hex
	Latency      Duration             `json:"latency"`
	TakeDelay    Duration             `json:"takeDelay"`
	Faults       SimFaults            `json:"faults"`
}

// SimFaults selects simulated dispenser faults.
type SimFaults struct {
	Offline        bool `json:"offline,omitempty"`
	JamAfter       int  `json:"jamAfter,omitempty"` // jam after this many notes (0: no jam)
	ShortDispense  int  `json:"shortDispense,omitempty"`
	CountUnknown   bool `json:"countUnknown,omitempty"`
	NotesNotTaken  bool `json:"notesNotTaken,omitempty"`
	ShutterFailure bool `json:"shutterFailure,omitempty"`
}

// Control is the localhost control and status endpoint (GET /status,
// POST /withdraw...). Empty Addr: none.
type Control struct {
	Addr string `json:"addr"`
	// CustomerInput enables POST /withdraw and POST /cancel: the customer's
	// input for headless runs and the laptop simulator. Off on a real ATM,
	// where only the screen and keypad speak for the customer.
	CustomerInput bool `json:"customerInput"`
}

// Screen says how the customer's screen is shown.
type Screen struct {
	Mode string `json:"mode"` // "headless", "window" or "kiosk"
	PNG  string `json:"png"`  // headless: the screen is written to this PNG file
}

var terminalRE = regexp.MustCompile(`^[0-9A-Z]{1,8}$`)

// Load reads and validates a configuration file. Every bad value is named in
// the returned error.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// durationFields are the configuration's durations, by their path in the
// file: checkDurations reads them all before decoding, so that every bad
// one is reported with its name (the decoder stops at the first).
var durationFields = [][]string{{"sessionTtl"}, {"takeTimeout"}, {"proxy", "sendTimeout"}, {"proxy", "echoInterval"},
	{"host", "sendTimeout"}, {"host", "echoInterval"}, {"dispenser", "sim", "latency"}, {"dispenser", "sim", "takeDelay"}}

func checkDurations(b []byte) error {
	var raw map[string]any
	if json.Unmarshal(b, &raw) != nil {
		return nil // the decoder reports it, with its position
	}
	var errs []error
	for _, path := range durationFields {
		var v any = raw
		for _, k := range path {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[k]
		}
		if v == nil {
			continue
		}
		s, ok := v.(string)
		if _, err := time.ParseDuration(s); !ok || err != nil {
			errs = append(errs, fmt.Errorf("%s: %s is not a duration: write it like \"30s\", \"2m\" or \"1m30s\"", strings.Join(path, "."), jsonText(v)))
		}
	}
	return errors.Join(errs...)
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// decodeError says where in the file a decoding error is (line and
// column) and, for a value of the wrong type, which field, in the file's
// own spelling.
func decodeError(b []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := position(b, se.Offset-1) // Offset counts the bad byte
		return fmt.Errorf("line %d, column %d: JSON syntax: %v", line, col, se)
	case errors.As(err, &te):
		line, col := position(b, te.Offset)
		return fmt.Errorf("line %d, column %d: %s: a JSON %s where %s is expected", line, col, te.Field, te.Value, kindOf(te.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the file ends in the middle of the JSON (a missing } or ])")
	}
	return err
}

func kindOf(k string) string {
	switch k {
	case "string":
		return "a string"
	case "int", "int64", "uint", "uint64", "int32":
		return "a whole number"
	case "bool":
		return "true or false"
	case "slice":
		return "a list"
	case "struct", "map":
		return "an object"
	}
	return "a " + k
}

// position turns a byte offset into a 1-based line and column.
func position(b []byte, off int64) (line, col int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	line, col = 1, 1
	for _, c := range b[:off] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// Parse decodes and validates a configuration; unknown fields are errors.
func Parse(b []byte) (*Config, error) {
	c := &Config{SessionTTL: Duration(120 * time.Second), TakeTimeout: Duration(30 * time.Second), Exponent: 2}
	if err := checkDurations(b); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("config: %w", decodeError(b, err))
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks every field and reports all problems at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", field, fmt.Sprintf(format, a...)))
	}
	if !terminalRE.MatchString(c.TerminalID) {
		bad("terminalId", "%q must be 1-8 characters 0-9A-Z", c.TerminalID)
	}
	if len(c.Currency) != 3 || strings.Trim(c.Currency, "0123456789") != "" {
		bad("currency", "%q must be an ISO 4217 numeric code (3 digits)", c.Currency)
	}
	if len(c.CurrencyAlpha) != 3 || strings.Trim(c.CurrencyAlpha, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		bad("currencyAlpha", "%q must be an ISO 4217 alphabetic code", c.CurrencyAlpha)
	}
	if c.Exponent < 0 || c.Exponent > 3 {
		bad("exponent", "%d must be 0-3", c.Exponent)
	}
	if c.DataDir == "" {
		bad("dataDir", "required")
	}
	if _, err := c.Zone(); err != nil {
		bad("dayZone", "%q is not a time zone: %v", c.DayZone, err)
	}
	if c.SessionTTL.D() < 10*time.Second || c.SessionTTL.D() > 10*time.Minute {
		bad("sessionTtl", "%s must be between 10s and 10m", c.SessionTTL.D())
	}
	if c.TakeTimeout.D() < time.Second || c.TakeTimeout.D() > 2*time.Minute {
		bad("takeTimeout", "%s must be between 1s and 2m", c.TakeTimeout.D())
	}
	l := c.Limits
	if l.Max <= 0 || l.Min < 0 || l.Min > l.Max {
		bad("limits", "need 0 <= min <= max and max > 0 (min %d, max %d)", l.Min, l.Max)
	}
	if l.Multiple < 0 || l.Daily < 0 {
		bad("limits", "multiple and daily must not be negative")
	}
	for i, p := range c.Presets {
		if p < l.Min || p > l.Max || (l.Multiple > 0 && p%l.Multiple != 0) {
			bad(fmt.Sprintf("presets[%d]", i), "%d is outside the limits or not a multiple of %d", p, l.Multiple)
		}
	}
	persistent := c.Keys.Store != "" || c.Keys.PKCS11 != nil // keys that outlive the process
	switch p := c.Keys.PKCS11; {
	case c.Keys.Store != "" && p != nil:
		bad("keys", "set keys.store or keys.pkcs11, not both")
	case c.Keys.Store != "" && c.Keys.StorageKeyFile == "":
		bad("keys.storageKeyFile", "required with keys.store")
	case !persistent && c.Keys.Dev == nil:
		bad("keys", "set keys.pkcs11 or keys.store (production) or keys.development")
	case p != nil && p.Module == "":
		bad("keys.pkcs11.module", "the PKCS#11 library is required")
	case p != nil && p.TokenLabel == "":
		bad("keys.pkcs11.tokenLabel", "the token's label is required")
	case p != nil && p.PINFile == "":
		bad("keys.pkcs11.pinFile", "a file holding the user PIN is required")
	}
	if d := c.Keys.Dev; d != nil {
		for name, v := range map[string]string{"tmk": d.TMK, "hostMac": d.HostMAC, "hostData": d.HostData, "qrMac": d.QRMAC} {
			if v == "" && persistent {
				continue
			}
			if v == "" {
				bad("keys.development."+name, "missing (32 or 48 hex digits)")
			} else if k, err := hex.DecodeString(v); err != nil || (len(k) != 16 && len(k) != 24) {
				bad("keys.development."+name, "must be 32 or 48 hex digits")
			}
		}
		if d.JournalMAC != "" || !persistent {
			if k, err := hex.DecodeString(d.JournalMAC); err != nil || len(k) != 32 {
				bad("keys.development.journalMac", "must be 64 hex digits (a 32-byte HMAC-SHA256 key)")
			}
		}
	}
	if _, err := wire.ParseKeyFormat(c.Proxy.KeyBlocks); err != nil {
		bad("proxy.keyBlocks", "%v", err)
	}
	if c.Host.KeyBlocks != "" {
		bad("host.keyBlocks", "the host link exchanges no keys")
	}
	for name, l := range map[string]Link{"proxy": c.Proxy, "host": c.Host} {
		if _, port, err := net.SplitHostPort(l.Addr); err != nil {
			bad(name+".addr", "%q must be host:port", l.Addr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			bad(name+".addr", "%q: the port must be a number from 1 to 65535", l.Addr)
		}
		if _, err := wire.ParseTPDU(l.TPDU); err != nil {
			bad(name+".tpdu", "%q must be 10 hex digits starting 60", l.TPDU)
		}
	}
	switch c.Dispenser.Driver {
	case "sim":
		s := c.Dispenser.Sim
		if s == nil {
			bad("dispenser.sim", "required with driver \"sim\"")
			break
		}
		if len(s.Units) == 0 {
			bad("dispenser.sim.units", "at least one cash unit")
		}
		for i, u := range s.Units {
			if u.ID == "" || u.Denomination <= 0 || u.Count < 0 || u.Currency != c.CurrencyAlpha {
				bad(fmt.Sprintf("dispenser.sim.units[%d]", i), "needs an id, a positive denomination, a count >= 0 and currency %q", c.CurrencyAlpha)
			}
		}
		if s.MaxNotes <= 0 {
			bad("dispenser.sim.maxNotes", "must be positive")
		}
		if k, err := hex.DecodeString(s.TokenKey); err != nil || len(k) < 16 {
			bad("dispenser.sim.tokenKey", "must be at least 32 hex digits")
		}
	case "xfs4iot":
		x := c.Dispenser.XFS4IoT
		if x == nil {
			bad("dispenser.xfs4iot", "required with driver \"xfs4iot\"")
			break
		}
		u, err := url.Parse(x.Publisher)
		switch {
		case err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "":
			bad("dispenser.xfs4iot.publisher", "%q must be ws://HOST:PORT/xfs4iot/v1.0 or wss://...", x.Publisher)
		case !strings.HasSuffix(u.Path, "/xfs4iot/v1.0"):
			bad("dispenser.xfs4iot.publisher", "%q: the path must end in /xfs4iot/v1.0", x.Publisher)
		case x.CAFile != "" && u.Scheme != "wss":
			bad("dispenser.xfs4iot.caFile", "only for a wss:// publisher")
		}
		if x.CommandTimeout.D() < 0 || x.CommandTimeout.D() > 10*time.Minute {
			bad("dispenser.xfs4iot.commandTimeout", "%s must be between 0 (default 60s) and 10m", x.CommandTimeout.D())
		}
	case "lcdm":
		l := c.Dispenser.LCDM
		if l == nil {
			bad("dispenser.lcdm", "required with driver \"lcdm\"")
			break
		}
		if l.Port == "" {
			bad("dispenser.lcdm.port", "required (e.g. /dev/ttyUSB0)")
		}
		if l.Model != "lcdm2000" {
			bad("dispenser.lcdm.model", "%q: only \"lcdm2000\" is supported", l.Model)
		}
		if len(l.Units) < 1 || len(l.Units) > 2 {
			bad("dispenser.lcdm.units", "one or two cassettes (upper, lower)")
		}
		for i, u := range l.Units {
			if u.ID == "" || u.Denomination <= 0 || u.Count < 0 || u.Currency != c.CurrencyAlpha {
				bad(fmt.Sprintf("dispenser.lcdm.units[%d]", i), "needs an id, a positive denomination, a count >= 0 and currency %q", c.CurrencyAlpha)
			}
		}
		if l.MaxNotes <= 0 {
			bad("dispenser.lcdm.maxNotes", "must be positive")
		}
		if l.TokenKeyFile == "" {
			bad("dispenser.lcdm.tokenKeyFile", "required: the driver checks the host's token itself")
		}
	default:
		bad("dispenser.driver", "%q is not a known driver (known: sim, xfs4iot, lcdm)", c.Dispenser.Driver)
	}
	if c.Journal.RetentionDays < 0 || c.Journal.RetentionDays > 3650 {
		bad("journal.retentionDays", "%d must be between 1 and 3650 (0: the default, %d)", c.Journal.RetentionDays, DefaultRetentionDays)
	}
	if c.Journal.RetentionDays != 0 && c.Journal.ExportDir == "" {
		bad("journal.retentionDays", "needs journal.exportDir: entries leave the store only once exported")
	}
	if n := c.NFC; n != nil {
		if b, err := hex.DecodeString(n.AID); err != nil || len(b) < 5 || len(b) > 16 {
			bad("nfc.aid", "%q must be 5-16 bytes in hex (e.g. F0434C57310001)", n.AID)
		}
	}
	if p := c.Printer; p != nil {
		if p.Driver != "escpos" {
			bad("printer.driver", "%q is not a known printer driver (known: escpos)", p.Driver)
		}
		if p.Port == "" {
			bad("printer.port", "required (e.g. /dev/ttyUSB1)")
		}
		if p.Baud < 0 {
			bad("printer.baud", "%d must be positive (0: 9600)", p.Baud)
		}
	}
	if au := c.Audio; au != nil {
		for i, p := range au.Player {
			if strings.TrimSpace(p) == "" {
				bad(fmt.Sprintf("audio.player[%d]", i), "must not be empty")
			}
		}
		switch au.Key {
		case "", "F9", "F10", "F11":
		default:
			bad("audio.key", "%q must be F9, F10 or F11 (F1-F8 choose on screen, F12 is the supervisor's)", au.Key)
		}
		for l, v := range au.Voices {
			if l != "en" && l != "zh" {
				bad("audio.voices", "%q is not a language of the kiosk (en, zh)", l)
			}
			if v == "" || strings.HasPrefix(v, "-") {
				bad("audio.voices."+l, "%q is not a voice name", v)
			}
		}
	}
	switch c.Screen.Mode {
	case "headless":
		if c.Screen.PNG == "" {
			bad("screen.png", "required in headless mode")
		}
	case "window", "kiosk":
	default:
		bad("screen.mode", "%q must be headless, window or kiosk", c.Screen.Mode)
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		bad("logLevel", "%q must be debug, info, warn or error", c.LogLevel)
	}
	return errors.Join(errs...)
}

// ErrNotForKiosk: the configuration holds something a real ATM must not
// run with (development keys, simulated customer input).
var ErrNotForKiosk = errors.New("config: not for a kiosk")

// CheckKiosk refuses what a configuration for the laptop may hold and an
// ATM in a bank's branch must not: development keys (in a file anyone can
// read) and customer input through the control endpoint (anyone on the
// PC could withdraw). Each problem says how to fix it.
func (c *Config) CheckKiosk() error {
	var errs []error
	if c.Keys.Dev != nil {
		errs = append(errs, fmt.Errorf("%w: keys.development holds development keys; run the key ceremony (atmctl key load-tmk) and configure keys.store or keys.pkcs11 instead", ErrNotForKiosk))
	}
	if c.Control.CustomerInput {
		errs = append(errs, fmt.Errorf("%w: control.customerInput lets any program on this PC withdraw through the control endpoint; set it to false (the customer uses the screen and keypad)", ErrNotForKiosk))
	}
	if c.Dispenser.Driver == "sim" {
		errs = append(errs, fmt.Errorf("%w: dispenser.driver \"sim\" is the simulated dispenser; configure the real one (xfs4iot or lcdm)", ErrNotForKiosk))
	}
	return errors.Join(errs...)
}
