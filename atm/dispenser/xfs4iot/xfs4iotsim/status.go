package xfs4iotsim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

func (s *Server) deviceState() dispenser.DeviceState {
	st, err := s.sim.Status(s.ctx)
	if err != nil {
		return dispenser.StateOffline
	}
	return st.Device
}

func (s *Server) cashUnits() []dispenser.CashUnit {
	st, _ := s.sim.Status(s.ctx)
	return st.Units
}

func (s *Server) capabilities() any {
	versions := map[string]any{"versions": []string{Version}}
	var ifaces []any
	for _, ic := range interfaceCommands {
		cmds, evs := map[string]any{}, map[string]any{}
		for _, c := range ic.commands {
			cmds[c] = versions
		}
		for _, e := range ic.events {
			evs[e] = versions
		}
		ifaces = append(ifaces, map[string]any{"name": ic.name, "commands": cmds, "events": evs, "maximumRequests": s.cfg.QueueLimit})
	}
	no := false
	return map[string]any{
		"interfaces": ifaces,
		"common": map[string]any{
			"serviceVersion": "1.0",
			"deviceInformation": []any{map[string]any{"modelName": "xfs4iotsim", "serialNumber": "SIM00001",
				"revisionNumber": "1", "modelDescription": "simulated self-service cash dispenser"}},
			"powerSaveControl": no,
			"antiFraudModule":  no,
			"endToEndSecurity": map[string]any{"required": "always", "hardwareSecurityElement": true,
				"responseSecurityEnabled": "always", "commands": []string{"CashDispenser.Dispense"}, "commandNonceTimeout": 0},
		},
		"cashDispenser": map[string]any{
			"type": "selfServiceBill", "maxDispenseItems": s.cfg.MaxNotes, "shutterControl": no,
			"retractAreas":            map[string]bool{"retract": true, "transport": false, "stacker": false, "reject": true, "itemCassette": false, "cashIn": false},
			"retractTransportActions": map[string]bool{"present": false, "retract": false, "reject": false, "itemCassette": false, "cashIn": false},
			"retractStackerActions":   map[string]bool{"present": true, "retract": true, "reject": true, "itemCassette": false, "cashIn": false},
			"intermediateStacker":     true, "itemsTakenSensor": true,
			"positions": map[string]bool{"left": false, "right": false, "center": true, "top": false, "bottom": false, "front": false, "rear": false},
		},
		"cashManagement": map[string]any{"cashBox": no, "exchangeType": map[string]bool{"byHand": true}, "classificationList": no},
	}
}

func (s *Server) status() any {
	st, _ := s.sim.Status(s.ctx)
	stacker, exit := s.sim.Stacked()
	inter, posStatus, shutter := "empty", "empty", "closed"
	if stacker.Notes() > 0 {
		inter = "notEmpty"
	}
	if exit.Notes() > 0 {
		posStatus, shutter = "notEmpty", "open"
	}
	disp := "ok"
	usable := false
	for _, u := range st.Units {
		if u.Usable() {
			usable = true
		}
		if u.Status != dispenser.UnitOK {
			disp = "attention"
		}
	}
	if !usable || !st.Ready() {
		disp = "stop"
	}
	return map[string]any{
		"common": map[string]any{"device": st.Device, "devicePosition": "inPosition", "powerSaveRecoveryTime": 0,
			"antiFraudModule": "ok", "exchange": "inactive", "endToEndSecurity": "enforced"},
		"cashDispenser": map[string]any{"intermediateStacker": inter, "positions": []any{map[string]any{
			"position": "outDefault", "shutter": shutter, "positionStatus": posStatus, "transport": "ok", "transportStatus": "empty"}}},
		"cashManagement": map[string]any{"dispenser": disp},
	}
}

// itemCounts is the standard's StorageCashCountsClass for one note type.
type itemCounts struct {
	typ string
	fit int
}

func (c itemCounts) MarshalJSON() ([]byte, error) {
	t, _ := json.Marshal(c.typ)
	return fmt.Appendf(nil, `{"unrecognized":0,%s:{"fit":%d}}`, t, c.fit), nil
}

type storageUnit struct {
	ID           string      `json:"id"`
	PositionName string      `json:"positionName"`
	Capacity     int         `json:"capacity"`
	Status       string      `json:"status"`
	SerialNumber string      `json:"serialNumber"`
	Cash         storageCash `json:"cash"`
}

type storageCash struct {
	Capabilities  cashCapabilities  `json:"capabilities"`
	Configuration cashConfiguration `json:"configuration"`
	Status        cashStatus        `json:"status"`
}

type cashCapabilities struct {
	Types map[string]bool `json:"types"`
	Items map[string]bool `json:"items"`
}

type cashConfiguration struct {
	Types        map[string]bool `json:"types"`
	Items        map[string]bool `json:"items"`
	Currency     string          `json:"currency"`
	Value        json.Number     `json:"value"`
	LowThreshold int             `json:"lowThreshold"`
	AppLockOut   bool            `json:"appLockOut"`
}

type cashStatus struct {
	Index   int `json:"index"`
	Initial any `json:"initial"`
	Out     struct {
		Presented itemCounts `json:"presented"`
		Rejected  itemCounts `json:"rejected"`
		Stacked   itemCounts `json:"stacked"`
	} `json:"out"`
	In                  struct{} `json:"in"`
	Accuracy            string   `json:"accuracy"`
	ReplenishmentStatus string   `json:"replenishmentStatus"`
}

// storage returns the units as Storage.GetStorage reports them.
func (s *Server) storage() map[string]storageUnit {
	stacker, _ := s.sim.Stacked()
	s.mu.Lock()
	unknown := maps.Clone(s.countUnknown)
	s.mu.Unlock()
	out := map[string]storageUnit{}
	for i, c := range s.sim.Counters() {
		typ := cashItemType(c.Currency, c.Denomination, s.cfg.Exponent)
		u := storageUnit{
			ID: fmt.Sprintf("CST%d", i+1), PositionName: fmt.Sprintf("slot %d", i+1),
			Capacity: max(c.Loaded, 2500), Status: "ok", SerialNumber: "SIM-" + c.ID,
		}
		if len(u.ID) > 5 {
			u.ID = u.ID[:5]
		}
		if c.Inoperative {
			u.Status = "inoperative"
		}
		cashOut := map[string]bool{"cashOut": true}
		fit := map[string]bool{"fit": true}
		u.Cash.Capabilities = cashCapabilities{Types: cashOut, Items: fit}
		u.Cash.Configuration = cashConfiguration{Types: cashOut, Items: fit, Currency: c.Currency,
			Value: majorNumber(c.Denomination, s.cfg.Exponent), LowThreshold: s.cfg.LowThreshold}
		st := &u.Cash.Status
		st.Index = i + 1
		st.Initial = itemCounts{typ, c.Loaded}
		st.Out.Stacked = itemCounts{typ, stacker[c.ID]}
		st.Out.Rejected = itemCounts{typ, c.Rejected}
		st.Out.Presented = itemCounts{typ, c.Dispensed - c.Rejected - stacker[c.ID]}
		st.Accuracy = "accurate"
		if unknown[c.ID] {
			st.Accuracy = "unknown"
		}
		switch {
		case c.Count == 0:
			st.ReplenishmentStatus = "empty"
		case c.Count <= s.cfg.LowThreshold:
			st.ReplenishmentStatus = "low"
		default:
			st.ReplenishmentStatus = "ok"
		}
		out[c.ID] = u
	}
	return out
}

// snapshot is the state whose changes produce unsolicited events.
type snapshot struct {
	device   dispenser.DeviceState
	units    map[string]storageUnit
	hadNonce bool
}

func (s *Server) snapshot() snapshot {
	return snapshot{device: s.deviceState(), units: s.storage(), hadNonce: s.sim.HasCommandNonce()}
}

// unsolicited returns the events a command's state changes call for, in the
// documented order: NonceCleared, CountsChanged, StorageThreshold,
// StatusChanged.
func (s *Server) unsolicited(name string, before, after snapshot) [][]byte {
	var out [][]byte
	if before.hadNonce && !after.hadNonce && name != "Common.ClearCommandNonce" {
		reason := "cleared by " + name
		if name == "CashDispenser.Dispense" {
			reason = "used by " + name
		}
		out = append(out, s.unsolicitedMsg("Common.NonceClearedEvent", map[string]string{"reasonDescription": reason}))
	}
	counts, threshold := map[string]storageUnit{}, map[string]storageUnit{}
	for id, a := range after.units {
		b, ok := before.units[id]
		if !ok {
			continue
		}
		bj, _ := json.Marshal(b.Cash.Status)
		aj, _ := json.Marshal(a.Cash.Status)
		if !bytes.Equal(bj, aj) {
			counts[id] = a
		}
		if a.Cash.Status.ReplenishmentStatus != b.Cash.Status.ReplenishmentStatus {
			threshold[id] = a
		}
	}
	if len(counts) > 0 {
		out = append(out, s.unsolicitedMsg("Storage.CountsChangedEvent", counts))
	}
	if len(threshold) > 0 {
		out = append(out, s.unsolicitedMsg("Storage.StorageThresholdEvent", threshold))
	}
	if after.device != before.device {
		out = append(out, s.unsolicitedMsg("Common.StatusChangedEvent", map[string]any{"common": map[string]any{"device": after.device}}))
	}
	return out
}

func (s *Server) presentStatus(p *presentStatusPayload) outcome {
	if !enumOK(p.Position, outputPositions) {
		return failure("invalidData", "position")
	}
	if p.Nonce != nil && !clientNonceRE.MatchString(*p.Nonce) {
		return failure("invalidData", "nonce must be 32 upper-case hex digits or 1-32 decimal digits")
	}
	if p.Position != nil && *p.Position != "outDefault" {
		return commandError("unsupportedPosition", "only outDefault")
	}
	ps, err := s.sim.PresentStatus(s.ctx)
	if err != nil {
		return s.mapError(err)
	}
	units := s.cashUnits()
	currency := ps.Currency
	if currency == "" && len(units) > 0 {
		currency = units[0].Currency
	}
	res := map[string]any{"presentState": "notPresented"}
	if ps.Presented.Notes() > 0 {
		res["presentState"] = "presented"
	}
	if ps.Seq > 0 && ps.CountKnown {
		res["denomination"] = s.denominationOf(ps.Dispensed, currency, units)
	}
	if p.Nonce != nil {
		res["token"] = s.responseToken(*p.Nonce, ps, s.sim.LastDispenseID(), currency)
	}
	return success(res)
}

// responseToken builds the signed present-status token (see the wire
// contract, 4.12).
func (s *Server) responseToken(nonce string, ps dispenser.PresentStatus, dispenseID, currency string) string {
	amount := func(m int64) string { return dispenser.FormatAmount(m, s.cfg.Exponent) + currency }
	yes := func(b bool) string {
		if b {
			return "YES"
		}
		return "NO"
	}
	fields := []string{"NONCE=" + nonce, "TOKENFORMAT=1", "TOKENLENGTH=0000"}
	if ps.Seq > 0 && dispenseID != "" {
		fields = append(fields, "DISPENSEID="+dispenseID)
	}
	if ps.CountKnown {
		fields = append(fields, "DISPENSED1="+amount(ps.DispensedAmount))
	} else {
		fields = append(fields, "DISPENSED1=?")
	}
	presented := ps.Presented.Notes() > 0
	fields = append(fields, "PRESENTED1="+yes(presented))
	if presented {
		fields = append(fields, "PRESENTEDAMOUNT1="+amount(ps.PresentedAmount))
	}
	retracted := ps.Retracted.Notes() > 0
	fields = append(fields, "RETRACTED1="+yes(retracted))
	if retracted {
		fields = append(fields, "RETRACTEDAMOUNT1="+amount(ps.RetractedAmount))
	}
	fields = append(fields, "HMACSHA256=")
	signed := strings.Join(fields, ",")
	signed = strings.Replace(signed, "TOKENLENGTH=0000", fmt.Sprintf("TOKENLENGTH=%04d", len(signed)+2*sha256.Size), 1)
	m := hmac.New(sha256.New, s.cfg.TokenKey)
	m.Write([]byte(signed))
	return signed + strings.ToUpper(hex.EncodeToString(m.Sum(nil)))
}

// watchTake lets the simulated customer take the presented notes after
// TakeDelay and announces it with CashManagement.ItemsTakenEvent.
func (s *Server) watchTake() {
	ctx, cancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	if s.takeCancel != nil {
		s.takeCancel()
	}
	s.takeCancel = cancel
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		taken, err := s.sim.WaitTaken(ctx, takeWait)
		if err == nil && taken {
			s.broadcast(s.unsolicitedMsg("CashManagement.ItemsTakenEvent", map[string]string{"position": "outDefault", "additionalBunches": "0"}), nil, false)
		}
	}()
}
