package wire

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
)

// Reversal reason codes, carried in field 39 of a 0420 (ISO 8583:1987
// response code values). The 0430 carries the host's answer in field 39.
const (
	ReasonCustomerCancel  = "17" // customer cancellation (notes not dispensed)
	ReasonMalfunction     = "22" // suspected malfunction (device fault)
	ReasonPartialDispense = "32" // completed partially (field 95 = amount paid)
	ReasonSuspectFraud    = "59" // suspected fraud
	ReasonMACFailure      = "63" // security violation (response failed MAC)
	ReasonLateResponse    = "68" // response received too late (timeout)
	ReasonReplay          = "94" // duplicate transmission (message replay)
)

// ErrFieldFormat is returned by the field helpers (Parse*) on a value that
// does not have the documented format.
var ErrFieldFormat = errors.New("wire: field value has the wrong format")

// NetMgmt is a network management message: 0800 request, 0810 response.
// See docs/protocol.md for which fields each code uses.
type NetMgmt struct {
	MTI                  string `iso8583:"0"`
	TransmissionDateTime string `iso8583:"7"`  // MMDDhhmmss UTC
	STAN                 string `iso8583:"11"` // 6 digits
	ResponseCode         string `iso8583:"39"` // 0810 only
	TerminalID           string `iso8583:"41"`
	AdditionalData       string `iso8583:"48"` // key block (KeyBlock) in 0810/001,161 and 0800/162
	Challenge            string `iso8583:"53"` // sign-on challenge: 0810/001 (NewChallenge) and the 0800/301 that confirms the sign-on
	NetMgmtCode          string `iso8583:"70"` // NetSignOn, NetSignOff, NetKeyRequest, NetKeyChange, NetEcho
	MACKeyKCV            string `iso8583:"96"` // set by Protector.Seal; read-only for callers
}

// Withdrawal is the financial request and response: 0200 and 0210. The same
// struct serves the proxy link (dispense command) and the host link
// (authorization); docs/protocol.md lists which fields each link uses.
type Withdrawal struct {
	MTI                  string `iso8583:"0"`
	ProcessingCode       string `iso8583:"3"`  // ProcCashWithdrawal
	Amount               string `iso8583:"4"`  // 12 digits, minor units: FormatAmount
	TransmissionDateTime string `iso8583:"7"`  // MMDDhhmmss UTC: FormatTransmissionDT
	STAN                 string `iso8583:"11"` // 6 digits
	LocalTime            string `iso8583:"12"` // hhmmss
	LocalDate            string `iso8583:"13"` // MMDD
	AcquirerID           string `iso8583:"32"`
	RRN                  string `iso8583:"37"`
	AuthCode             string `iso8583:"38"` // 0210 only
	ResponseCode         string `iso8583:"39"` // 0210 only
	TerminalID           string `iso8583:"41"`
	TerminalLocation     string `iso8583:"43"`
	Currency             string `iso8583:"49"`  // ISO 4217 numeric, e.g. "156"
	PINBlock             []byte `iso8583:"52"`  // 8 opaque bytes, end-to-end phone->host
	QRPayload            string `iso8583:"62"`  // clear text here; encrypted on the wire
	Receipt              string `iso8583:"63"`  // approved 0210 ATM->proxy->phone: receipt.Encode
	ReplacementAmounts   string `iso8583:"95"`  // 0210 to the proxy after a partial dispense
	MACKeyKCV            string `iso8583:"96"`  // set by Protector.Seal
	CustomerID           string `iso8583:"120"` // clear text here; encrypted on the wire
	DispenseNonce        string `iso8583:"121"` // 0200 ATM->host: dispenser command nonce
	DispenseToken        string `iso8583:"122"` // 0210 host->ATM: XFS4IoT dispense token
	DeviceID             string `iso8583:"123"` // 0200: the phone's device ID (NewDeviceID); clear text here; encrypted on the wire
}

// Advice is the completion advice and its acknowledgement: 0220 and 0230.
type Advice struct {
	MTI                  string `iso8583:"0"`
	ProcessingCode       string `iso8583:"3"`
	Amount               string `iso8583:"4"` // amount authorized (original 0200)
	TransmissionDateTime string `iso8583:"7"`
	STAN                 string `iso8583:"11"`
	LocalTime            string `iso8583:"12"`
	LocalDate            string `iso8583:"13"`
	AcquirerID           string `iso8583:"32"`
	RRN                  string `iso8583:"37"`
	AuthCode             string `iso8583:"38"`
	ResponseCode         string `iso8583:"39"`
	TerminalID           string `iso8583:"41"`
	Currency             string `iso8583:"49"`
	OriginalData         string `iso8583:"90"` // OriginalData.String()
	ReplacementAmounts   string `iso8583:"95"` // ReplacementAmounts.String(): amount paid out
	MACKeyKCV            string `iso8583:"96"`
}

// Reversal is the reversal advice and its acknowledgement: 0420 and 0430.
// In a 0420, ResponseCode carries the reason (Reason* constants).
type Reversal struct {
	MTI                  string `iso8583:"0"`
	ProcessingCode       string `iso8583:"3"`
	Amount               string `iso8583:"4"` // amount of the original 0200
	TransmissionDateTime string `iso8583:"7"`
	STAN                 string `iso8583:"11"`
	LocalTime            string `iso8583:"12"`
	LocalDate            string `iso8583:"13"`
	AcquirerID           string `iso8583:"32"`
	RRN                  string `iso8583:"37"`
	AuthCode             string `iso8583:"38"`
	ResponseCode         string `iso8583:"39"`
	TerminalID           string `iso8583:"41"`
	Currency             string `iso8583:"49"`
	OriginalData         string `iso8583:"90"`
	ReplacementAmounts   string `iso8583:"95"` // partial reversal: amount actually paid out
	MACKeyKCV            string `iso8583:"96"`
}

// Response returns the 0810 answering n (an 0800) with response code rc:
// it echoes fields 7, 11, 41 and 70 of the request (docs/protocol.md 7.1)
// and carries nothing else. Callers add field 48 when the answer carries
// keys.
func (n NetMgmt) Response(rc string) NetMgmt {
	return NetMgmt{
		MTI:                  MTINetMgmtResponse,
		TransmissionDateTime: n.TransmissionDateTime,
		STAN:                 n.STAN,
		ResponseCode:         rc,
		TerminalID:           n.TerminalID,
		NetMgmtCode:          n.NetMgmtCode,
	}
}

// Response returns the 0210 answering w (a 0200) without a result: it
// echoes fields 3, 4, 7, 11, 41 and 49 of the request (the fields every
// 0210 carries on both links, docs/protocol.md 7.2). Callers set field 39
// and the result fields, and whatever else their link echoes.
func (w Withdrawal) Response() Withdrawal {
	return Withdrawal{
		MTI:                  MTIFinancialResp,
		ProcessingCode:       w.ProcessingCode,
		Amount:               w.Amount,
		TransmissionDateTime: w.TransmissionDateTime,
		STAN:                 w.STAN,
		TerminalID:           w.TerminalID,
		Currency:             w.Currency,
	}
}

// Build returns a new message on Spec filled from v, a pointer to one of
// the message structs (or any struct with iso8583 tags).
func Build(v any) (*iso8583.Message, error) {
	m := iso8583.NewMessage(Spec)
	if err := m.Marshal(v); err != nil {
		return nil, fmt.Errorf("wire: build message: %w", err)
	}
	if _, err := m.GetMTI(); err != nil {
		return nil, fmt.Errorf("wire: build message: no MTI: %w", err)
	}
	return m, nil
}

// Parse fills v (a pointer to a message struct) from m.
func Parse(m *iso8583.Message, v any) error {
	if err := m.Unmarshal(v); err != nil {
		return fmt.Errorf("wire: parse message: %w", err)
	}
	return nil
}

// MTI returns the message type indicator of m, or "" if it has none.
func MTI(m *iso8583.Message) string {
	s, err := m.GetMTI()
	if err != nil {
		return ""
	}
	return s
}

// STAN returns field 11 of m, or "" if it is absent.
func STAN(m *iso8583.Message) string {
	s, _ := m.GetString(FieldSTAN) // "" and no error when absent
	return s
}

// FormatAmount formats an amount in minor units as field 4 (n12).
func FormatAmount(minor int64) string {
	if minor < 0 {
		minor = 0
	}
	return fmt.Sprintf("%012d", minor)
}

// ParseAmount parses an n12 amount (field 4, or a part of field 95).
func ParseAmount(s string) (int64, error) {
	if len(s) != 12 || !IsDigits(s) {
		return 0, fmt.Errorf("%w: amount must be 12 digits", ErrFieldFormat)
	}
	return strconv.ParseInt(s, 10, 64)
}

// FormatSTAN formats a trace number as field 11 (n6, modulo 1,000,000).
func FormatSTAN(n uint32) string { return fmt.Sprintf("%06d", n%1000000) }

// NextSTAN advances the trace counter n and returns the next STAN: from
// 000001 to 999999, then 000001 again; never 000000. It is safe for
// concurrent use.
func NextSTAN(n *atomic.Uint32) string { return FormatSTAN(n.Add(1)%999999 + 1) }

// FormatTransmissionDT formats t as field 7: MMDDhhmmss in UTC.
func FormatTransmissionDT(t time.Time) string { return t.UTC().Format("0102150405") }

// ParseTransmissionDT reads field 7 (MMDDhhmmss, UTC), which carries no
// year: it takes the year that puts the instant nearest to now (a message
// sent on 31 December and read on 1 January belongs to the old year). A
// 29 February is only accepted in a leap year near now.
func ParseTransmissionDT(s string, now time.Time) (time.Time, error) {
	if len(s) != 10 || !IsDigits(s) {
		return time.Time{}, fmt.Errorf("wire: field 7 %q is not MMDDhhmmss", s)
	}
	now = now.UTC()
	var best time.Time
	for _, y := range []int{now.Year() - 1, now.Year(), now.Year() + 1} {
		t, err := time.Parse("20060102150405", fmt.Sprintf("%04d", y)+s)
		if err != nil {
			continue // e.g. 0229 in a common year
		}
		if best.IsZero() || absDuration(t.Sub(now)) < absDuration(best.Sub(now)) {
			best = t
		}
	}
	if best.IsZero() {
		return time.Time{}, fmt.Errorf("wire: field 7 %q is not a valid date and time", s)
	}
	return best, nil
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// FormatLocalTime and FormatLocalDate format fields 12 (hhmmss) and 13
// (MMDD) in t's own location.
func FormatLocalTime(t time.Time) string { return t.Format("150405") }

// FormatLocalDate formats field 13 (MMDD).
func FormatLocalDate(t time.Time) string { return t.Format("0102") }

// OriginalData is field 90 (n42) of a 0420 or 0220: the identity of the
// original 0200.
type OriginalData struct {
	MTI          string // n4, e.g. "0200"
	STAN         string // n6
	TransmitDT   string // n10, field 7 of the original
	AcquirerID   string // up to 11 digits, right-justified, zero-filled
	ForwardingID string // up to 11 digits, right-justified, zero-filled
}

// String formats o as field 90. It does not validate; use Validate.
func (o OriginalData) String() string {
	return fmt.Sprintf("%4s%6s%10s%011s%011s", o.MTI, o.STAN, o.TransmitDT, o.AcquirerID, o.ForwardingID)
}

// Validate checks every part's length and digits.
func (o OriginalData) Validate() error {
	parts := []struct {
		v    string
		n    int
		name string
		max  bool
	}{{o.MTI, 4, "MTI", false}, {o.STAN, 6, "STAN", false}, {o.TransmitDT, 10, "transmission date-time", false},
		{o.AcquirerID, 11, "acquirer ID", true}, {o.ForwardingID, 11, "forwarding ID", true}}
	for _, p := range parts {
		ok := IsDigits(p.v) && (len(p.v) == p.n || (p.max && len(p.v) <= p.n))
		if p.max && p.v == "" {
			ok = true
		}
		if !ok {
			return fmt.Errorf("%w: field 90 %s", ErrFieldFormat, p.name)
		}
	}
	return nil
}

// ParseOriginalData parses field 90. The institution IDs keep their
// leading zeros.
func ParseOriginalData(s string) (OriginalData, error) {
	if len(s) != 42 || !IsDigits(s) {
		return OriginalData{}, fmt.Errorf("%w: field 90 must be 42 digits", ErrFieldFormat)
	}
	return OriginalData{MTI: s[0:4], STAN: s[4:10], TransmitDT: s[10:20], AcquirerID: s[20:31], ForwardingID: s[31:42]}, nil
}

// ReplacementAmounts is field 95 (an42): actual transaction amount n12,
// actual settlement amount n12, actual transaction fee x+n8, actual
// settlement fee x+n8 (x is C for credit or D for debit).
type ReplacementAmounts struct {
	Transaction int64 // minor units actually paid out
	Settlement  int64 // minor units to settle; normally equal to Transaction
}

// String formats r as field 95 with both fees zero ("C00000000").
func (r ReplacementAmounts) String() string {
	return FormatAmount(r.Transaction) + FormatAmount(r.Settlement) + "C00000000C00000000"
}

// ParseReplacementAmounts parses field 95; the fees must be well formed
// and are ignored.
func ParseReplacementAmounts(s string) (ReplacementAmounts, error) {
	bad := fmt.Errorf("%w: field 95 must be n12 n12 x+n8 x+n8", ErrFieldFormat)
	if len(s) != 42 || !IsDigits(s[:24]) {
		return ReplacementAmounts{}, bad
	}
	for _, fee := range []string{s[24:33], s[33:42]} {
		if (fee[0] != 'C' && fee[0] != 'D') || !IsDigits(fee[1:]) {
			return ReplacementAmounts{}, bad
		}
	}
	t, _ := strconv.ParseInt(s[:12], 10, 64)
	st, _ := strconv.ParseInt(s[12:24], 10, 64)
	return ReplacementAmounts{Transaction: t, Settlement: st}, nil
}

// KeyBlock is the key exchange block carried in field 48 of a 0810
// answering sign-on (001) or key request (161), and of a 0800 key change
// (162): the new working keys encrypted under the terminal master key
// (3DES-ECB, as hsm.Module.ImportKey expects) with their check values.
//
//	TAK=<32 or 48 hex>;TAKKCV=<6 hex>;TEK=<32 or 48 hex>;TEKKCV=<6 hex>
type KeyBlock struct {
	TAK    []byte // MAC key, encrypted under the TMK
	TAKKCV string
	TEK    []byte // data key, encrypted under the TMK
	TEKKCV string
}

// String formats k for field 48 (upper-case hex).
func (k KeyBlock) String() string {
	return "TAK=" + strings.ToUpper(hex.EncodeToString(k.TAK)) + ";TAKKCV=" + k.TAKKCV +
		";TEK=" + strings.ToUpper(hex.EncodeToString(k.TEK)) + ";TEKKCV=" + k.TEKKCV
}

// ParseKeyBlock parses field 48. It is strict: exactly the four tags, in
// order, encrypted keys of 16 or 24 bytes, KCVs of six upper-case hex
// digits. Errors never contain the field's content.
func ParseKeyBlock(s string) (KeyBlock, error) {
	parts := strings.Split(s, ";")
	tags := []string{"TAK=", "TAKKCV=", "TEK=", "TEKKCV="}
	if len(parts) != len(tags) {
		return KeyBlock{}, fmt.Errorf("%w: field 48 key block needs 4 parts", ErrFieldFormat)
	}
	vals := make([]string, len(tags))
	for i, t := range tags {
		v, ok := strings.CutPrefix(parts[i], t)
		if !ok {
			return KeyBlock{}, fmt.Errorf("%w: field 48 part %d must start with %s", ErrFieldFormat, i+1, t)
		}
		vals[i] = v
	}
	var k KeyBlock
	var err error
	for i, dst := range []*[]byte{&k.TAK, &k.TEK} {
		v := vals[i*2]
		if (len(v) != 32 && len(v) != 48) || !isUpperHex(v) {
			return KeyBlock{}, fmt.Errorf("%w: field 48 %s must be 32 or 48 upper-case hex digits", ErrFieldFormat, strings.TrimSuffix(tags[i*2], "="))
		}
		if *dst, err = hex.DecodeString(v); err != nil {
			return KeyBlock{}, fmt.Errorf("%w: field 48 key hex", ErrFieldFormat)
		}
		kcv := vals[i*2+1]
		if len(kcv) != 6 || !isUpperHex(kcv) {
			return KeyBlock{}, fmt.Errorf("%w: field 48 %s must be 6 upper-case hex digits", ErrFieldFormat, strings.TrimSuffix(tags[i*2+1], "="))
		}
	}
	k.TAKKCV, k.TEKKCV = vals[1], vals[3]
	return k, nil
}

// IsDigits reports whether s consists of ASCII digits only; it is true
// for an empty s.
func IsDigits[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isUpperHex[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// NewChallenge returns a fresh sign-on challenge for field 53: 16 upper-case
// hex digits from crypto/rand. A peer that answers a sign-on with keys sends
// one; the terminal proves that it holds the network-management key by
// returning it in an 0800/301 MAC'd with that key (docs/protocol.md §5).
func NewChallenge() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("wire: challenge: %w", err)
	}
	return strings.ToUpper(hex.EncodeToString(b[:])), nil
}

// ValidChallenge reports whether s has the form of a sign-on challenge.
func ValidChallenge(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Anchor is field 48 of the sign-on on link H (0800/001 and its 0810),
// "JSEQ=" and 12 digits, ";STAN=" and 6 digits: a terminal's newest
// electronic-journal sequence number and the last host STAN it allocated.
// The ATM sends its own; the host answers with what it has recorded for the
// terminal (the highest journal sequence reported, the last STAN it
// received), and refuses (63) a sign-on behind either: the terminal's
// store was put back to an older copy.
type Anchor struct {
	JournalSeq uint64
	STAN       string // "000000" when none was allocated yet
}

// String formats a as field 48.
func (a Anchor) String() string {
	stan := a.STAN
	if stan == "" {
		stan = "000000"
	}
	return fmt.Sprintf("JSEQ=%012d;STAN=%s", a.JournalSeq, stan)
}

// ParseAnchor parses field 48 of a sign-on on link H.
func ParseAnchor(s string) (Anchor, error) {
	bad := fmt.Errorf("%w: field 48 must be JSEQ= and 12 digits, then ;STAN= and 6 digits", ErrFieldFormat)
	j, st, ok := strings.Cut(s, ";")
	v, ok1 := strings.CutPrefix(j, "JSEQ=")
	stan, ok2 := strings.CutPrefix(st, "STAN=")
	if !ok || !ok1 || !ok2 || len(v) != 12 || !IsDigits(v) || len(stan) != 6 || !IsDigits(stan) {
		return Anchor{}, bad
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return Anchor{}, bad
	}
	return Anchor{JournalSeq: seq, STAN: stan}, nil
}

// STANBehind reports whether STAN a comes before STAN b in the cycle
// 000001..999999 (by less than half the cycle): a terminal reporting a as
// its last STAN when the host has already received b went back in time.
func STANBehind(a, b string) bool {
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || x == 0 || y == 0 {
		return false
	}
	d := (y - x + 999999) % 999999
	return d > 0 && d < 999999/2
}
