package xfs4iot

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// Payloads the driver reads and writes (XFS4IoT 2023-2 field names). Only
// the members the driver uses are declared: a service may send more.

type getServicesCompletion struct {
	VendorName string `json:"vendorName"`
	Services   []struct {
		ServiceURI string `json:"serviceURI"`
	} `json:"services"`
}

type capabilitiesCompletion struct {
	Common *struct {
		EndToEndSecurity *struct {
			Required                string   `json:"required"`
			ResponseSecurityEnabled string   `json:"responseSecurityEnabled"`
			Commands                []string `json:"commands"`
		} `json:"endToEndSecurity"`
	} `json:"common"`
	CashDispenser *struct {
		Type             string `json:"type"`
		MaxDispenseItems int    `json:"maxDispenseItems"`
		ItemsTakenSensor bool   `json:"itemsTakenSensor"`
	} `json:"cashDispenser"`
}

type statusCompletion struct {
	Common struct {
		Device           string `json:"device"`
		EndToEndSecurity string `json:"endToEndSecurity"`
	} `json:"common"`
	CashDispenser *struct {
		IntermediateStacker string `json:"intermediateStacker"`
		Positions           []struct {
			Position       string `json:"position"`
			PositionStatus string `json:"positionStatus"`
		} `json:"positions"`
	} `json:"cashDispenser"`
}

// storageUnit is one unit of Storage.GetStorage.
type storageUnit struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Cash   *struct {
		Configuration struct {
			Currency string      `json:"currency"`
			Value    json.Number `json:"value"`
		} `json:"configuration"`
		Status struct {
			Initial map[string]json.RawMessage `json:"initial"`
			Out     struct {
				Presented map[string]json.RawMessage `json:"presented"`
				Rejected  map[string]json.RawMessage `json:"rejected"`
				Stacked   map[string]json.RawMessage `json:"stacked"`
			} `json:"out"`
			Accuracy            string `json:"accuracy"`
			ReplenishmentStatus string `json:"replenishmentStatus"`
		} `json:"status"`
	} `json:"cash"`
}

type getStorageCompletion struct {
	Storage map[string]storageUnit `json:"storage"`
}

// denomination is the XFS4IoT denomination object: amounts per currency
// and notes per storage unit.
type denomination struct {
	Currencies map[string]json.Number `json:"currencies,omitempty"`
	Values     map[string]int         `json:"values,omitempty"`
}

type dispenseCommand struct {
	Denomination struct {
		Denomination struct {
			App struct {
				Currencies map[string]json.Number `json:"currencies"`
				Counts     map[string]int         `json:"counts"`
			} `json:"app"`
		} `json:"denomination"`
	} `json:"denomination"`
	Position string `json:"position"`
	Token    string `json:"token"`
}

type denominationCompletion struct {
	ErrorCode    string        `json:"errorCode"`
	Denomination *denomination `json:"denomination"`
}

type positionPayload struct {
	Position string `json:"position"`
}

type retractCommand struct {
	Location struct {
		OutputPosition string `json:"outputPosition"`
		RetractArea    string `json:"retractArea"`
	} `json:"location"`
}

type presentStatusCommand struct {
	Position string `json:"position"`
	Nonce    string `json:"nonce"`
}

type presentStatusCompletion struct {
	Denomination *denomination `json:"denomination"`
	PresentState string        `json:"presentState"`
	Token        string        `json:"token"`
}

type nonceCompletion struct {
	CommandNonce string `json:"commandNonce"`
}

// fit reads the count of a cash item type object ({"fit": n, ...}).
func fit(m map[string]json.RawMessage) (int, error) {
	n := 0
	for k, v := range m {
		if k == "unrecognized" {
			continue
		}
		var c struct {
			Fit int `json:"fit"`
		}
		if err := json.Unmarshal(v, &c); err != nil {
			return 0, fmt.Errorf("count %s: %w", k, err)
		}
		n += c.Fit
	}
	return n, nil
}

// minorUnits converts an XFS4IoT amount (a JSON number in major units) to
// minor units of exponent; it must be exact.
func minorUnits(n json.Number, exponent int) (int64, error) {
	s := n.String()
	if strings.ContainsAny(s, "eE") {
		return 0, fmt.Errorf("amount %s in exponent notation", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("amount %q", s)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exponent)), nil)))
	if !r.IsInt() || !r.Num().IsInt64() || r.Sign() < 0 {
		return 0, fmt.Errorf("amount %s is not a whole number of minor units", s)
	}
	return r.Num().Int64(), nil
}

// majorUnits writes minor units as an XFS4IoT amount with the exponent's
// decimals.
func majorUnits(minor int64, exponent int) json.Number {
	s := fmt.Sprint(minor)
	if exponent == 0 {
		return json.Number(s)
	}
	if len(s) <= exponent {
		s = strings.Repeat("0", exponent-len(s)+1) + s
	}
	return json.Number(s[:len(s)-exponent] + "." + s[len(s)-exponent:])
}
