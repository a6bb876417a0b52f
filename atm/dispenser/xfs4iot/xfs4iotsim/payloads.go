package xfs4iotsim

import (
	"encoding/json"
	"errors"
	"math/big"
	"regexp"
	"strings"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

// Incoming payloads (XFS4IoT 2023-2, version 2.0 messages). Decoded with
// decodePayload: exact member names, no unknown members.

type emptyPayload struct{}

type appMix struct {
	Currencies map[string]json.Number `json:"currencies"`
	Counts     map[string]int         `json:"counts"`
	CashBox    json.RawMessage        `json:"cashBox"`
}

type serviceMix struct {
	Currencies map[string]json.Number `json:"currencies"`
	Partial    map[string]int         `json:"partial"`
	Mix        *string                `json:"mix"`
	CashBox    json.RawMessage        `json:"cashBox"`
}

// denominateRequest is the standard's DenominateRequestClass.
type denominateRequest struct {
	Denomination *struct {
		App     *appMix     `json:"app"`
		Service *serviceMix `json:"service"`
	} `json:"denomination"`
	TellerID *int `json:"tellerID"`
}

type denominatePayload struct {
	Request *denominateRequest `json:"request"`
}

type dispensePayload struct {
	Denomination *denominateRequest `json:"denomination"`
	Position     *string            `json:"position"`
	Token        *string            `json:"token"`
}

type positionPayload struct {
	Position *string `json:"position"`
}

type retractPayload struct {
	Location *struct {
		OutputPosition *string `json:"outputPosition"`
		RetractArea    *string `json:"retractArea"`
		Index          *int    `json:"index"`
	} `json:"location"`
}

type resetPayload struct {
	Position *struct {
		Target *string `json:"target"`
		Unit   *string `json:"unit"`
		Index  *int    `json:"index"`
	} `json:"position"`
}

type presentStatusPayload struct {
	Position *string `json:"position"`
	Nonce    *string `json:"nonce"`
}

// Enumerations of the standard, for telling a value outside the standard
// (invalidMessage) from one the simulator does not support (an error code).
var (
	outputPositions = set("outDefault", "outLeft", "outRight", "outCenter", "outTop", "outBottom", "outFront", "outRear")
	retractAreas    = set("retract", "transport", "stacker", "reject", "itemCassette", "cashIn")
	itemTargets     = set("singleUnit", "retract", "transport", "stacker", "reject", "itemCassette", "cashIn",
		"outDefault", "outLeft", "outRight", "outCenter", "outTop", "outBottom", "outFront", "outRear")
)

func set(v ...string) map[string]bool {
	m := map[string]bool{}
	for _, s := range v {
		m[s] = true
	}
	return m
}

// enumOK reports whether an optional enum value is absent or standard.
func enumOK(v *string, allowed map[string]bool) bool { return v == nil || allowed[*v] }

var (
	unitNameRE      = regexp.MustCompile(`^unit[0-9A-Za-z]+$`)
	currencyRE      = regexp.MustCompile(`^[A-Z]{3}$`)
	clientNonceRE   = regexp.MustCompile(`^[0-9A-F]{32}$|^[0-9]{1,32}$`)
	decimalNumberRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
)

// errNotExact: an amount is not a whole number of minor units.
var errNotExact = errors.New("amount is not a whole number of minor units")

// minorUnits converts a JSON number in major units to minor units of a
// currency with exponent exp: "250.00" -> 25000. Exponent notation,
// negative values, more significant decimals than exp and values beyond
// int64 are refused.
func minorUnits(n json.Number, exp int) (int64, error) {
	s := string(n)
	if !decimalNumberRE.MatchString(s) || len(s) > 30 {
		return 0, errNotExact
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, errNotExact
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)))
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, errNotExact
	}
	return r.Num().Int64(), nil
}

// majorNumber writes minor units as a JSON number with exactly exp
// decimals: 25000, 2 -> 250.00.
func majorNumber(minor int64, exp int) json.Number {
	return json.Number(dispenser.FormatAmount(minor, exp))
}

// denomination is the standard's DenominationClass (output).
type denomination struct {
	Currencies map[string]json.Number `json:"currencies"`
	Values     map[string]int         `json:"values"`
}

func (s *Server) denominationOf(m dispenser.Mix, currency string, units []dispenser.CashUnit) *denomination {
	amount, _ := m.Amount(units)
	d := &denomination{Currencies: map[string]json.Number{currency: majorNumber(amount, s.cfg.Exponent)}, Values: map[string]int{}}
	for id, n := range m {
		if n != 0 {
			d.Values[id] = n
		}
	}
	return d
}

// cashItemType is the standard's cash item name of a note: "typeCNY100",
// "typeEUR0P5".
func cashItemType(currency string, value int64, exp int) string {
	v := dispenser.FormatAmount(value, exp)
	if strings.Contains(v, ".") {
		v = strings.TrimSuffix(strings.TrimRight(v, "0"), ".")
	}
	return "type" + currency + strings.ReplaceAll(v, ".", "P")
}

// enumChecker is implemented by payloads with enumerations: a value outside
// the standard's enumeration makes the message invalid (acknowledge
// invalidMessage), while a standard value the simulator does not support is
// an error code in the completion.
type enumChecker interface{ enumsOK() bool }

func (p *dispensePayload) enumsOK() bool      { return enumOK(p.Position, outputPositions) }
func (p *positionPayload) enumsOK() bool      { return enumOK(p.Position, outputPositions) }
func (p *presentStatusPayload) enumsOK() bool { return enumOK(p.Position, outputPositions) }
func (p *retractPayload) enumsOK() bool {
	return p.Location == nil || enumOK(p.Location.OutputPosition, outputPositions) && enumOK(p.Location.RetractArea, retractAreas)
}
func (p *resetPayload) enumsOK() bool {
	return p.Position == nil || enumOK(p.Position.Target, itemTargets)
}
func (p *denominatePayload) enumsOK() bool { return true }
