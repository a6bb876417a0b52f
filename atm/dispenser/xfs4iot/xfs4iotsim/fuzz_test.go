package xfs4iotsim

import (
	"encoding/json"
	"testing"
)

// FuzzParseCommand: the envelope parser never panics, accepts only what the
// contract allows, and every refusal encodes to a valid acknowledge. Seeds
// are in testdata/fuzz/FuzzParseCommand.
func FuzzParseCommand(f *testing.F) {
	f.Add([]byte(`{"header":{"name":"Common.Status","requestId":1,"type":"command","version":"2.0"},"payload":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, ref := parseCommand(data)
		if (cmd == nil) == (ref == nil) {
			t.Fatalf("parseCommand(%q) = %v, %v", data, cmd, ref)
		}
		if ref != nil {
			switch ref.Status {
			case StatusInvalidMessage, StatusInvalidRequestID:
			default:
				t.Fatalf("status %q", ref.Status)
			}
			b := encode(Header{Name: ref.Name, RequestID: ref.RequestID, Type: TypeAcknowledge, Version: Version, Status: ref.Status}, nil)
			if !json.Valid(b) {
				t.Fatalf("invalid acknowledge %s", b)
			}
			return
		}
		if !nameRE.MatchString(cmd.Name) || cmd.RequestID <= 0 || cmd.RequestID > maxRequestID ||
			!versionRE.MatchString(cmd.Version) || cmd.Timeout < 0 {
			t.Fatalf("accepted bad command %+v from %q", cmd, data)
		}
		if len(cmd.Payload) > 0 && cmd.Payload[0] != '{' {
			t.Fatalf("accepted payload %q", cmd.Payload)
		}
		for _, name := range []string{"CashDispenser.Dispense", "CashDispenser.Denominate", "CashManagement.Retract",
			"CashManagement.Reset", "CashDispenser.GetPresentStatus", "CashDispenser.Present", "Common.Status"} {
			p := payloadFor(name)
			if err := decodePayload(cmd.Payload, p); err == nil {
				// What decodes strictly re-encodes to JSON.
				if _, err := json.Marshal(p); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
		}
	})
}

func TestDecodePayloadExact(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"denomination":{"denomination":{"app":{"counts":{"unit1":1},"currencies":{"CNY":1.00}}}},"position":"outDefault","token":"t"}`, true},
		{`{"denomination":{"denomination":{"App":{"counts":{"unit1":1}}}}}`, false},
		{`{"denomination":{"denomination":{"app":{"counts":{"unit1":1,"unit1":2}}}}}`, false},
		{`{"denomination":{"denomination":{"app":{"counts":{"unit1":"1"}}}}}`, false},
		{`{"denomination":{"denomination":{"app":{"counts":{"unit1":1}},"x":{}}}}`, false},
		{`{"token":"a"} {}`, false},
		{`{"token":null}`, true},
		{`{"denomination":{"denomination":{"service":{"currencies":{"CNY":1e2}}}}}`, true}, // a number; refused later as invalidData
	} {
		err := decodePayload(json.RawMessage(tc.in), &dispensePayload{})
		if (err == nil) != tc.ok {
			t.Errorf("decodePayload(%s) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestMinorUnits(t *testing.T) {
	for _, tc := range []struct {
		in   string
		exp  int
		want int64
		ok   bool
	}{
		{"250", 2, 25000, true}, {"250.0", 2, 25000, true}, {"250.00", 2, 25000, true}, {"250.005", 2, 0, false},
		{"250.010", 2, 25001, true}, {"1e2", 2, 0, false}, {"-1", 2, 0, false}, {"500", 0, 500, true}, {"0.5", 0, 0, false},
		{"99999999999999999999", 2, 0, false},
	} {
		got, err := minorUnits(json.Number(tc.in), tc.exp)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("minorUnits(%s, %d) = %d, %v", tc.in, tc.exp, got, err)
		}
	}
	if got := cashItemType("EUR", 50, 2); got != "typeEUR0P5" {
		t.Errorf("cashItemType = %s", got)
	}
	if got := cashItemType("CNY", 10000, 2); got != "typeCNY100" {
		t.Errorf("cashItemType = %s", got)
	}
}
