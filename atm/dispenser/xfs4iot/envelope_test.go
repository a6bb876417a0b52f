package xfs4iot

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseMessage(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" = valid
	}{
		{`{"header":{"name":"Common.Status","requestId":1,"type":"acknowledge","version":"2.0","status":null},"payload":null}`, ""},
		{`{"header":{"name":"Common.Status","requestId":1,"type":"completion","version":"2.0","completionCode":"success"},"payload":{"common":{"device":"online"}}}`, ""},
		{`{"header":{"name":"Common.StatusChangedEvent","type":"unsolicited","version":"2.0"},"payload":{}}`, ""},
		{`{"header":{"name":"Common.Status","requestId":1,"type":"acknowledge","version":"2.0","status":"invalidRequestID"}}`, ""},
		{`{"header":{"name":"Common.Status","requestId":1,"type":"completion","version":"2.0"}}`, "xfs4iot: malformed message: completion of Common.Status without a completion code"},
		{`{"header":{"name":"Common.Status","requestId":0,"type":"event","version":"2.0"}}`, "xfs4iot: malformed message: event Common.Status without a request ID"},
		{`{"header":{"name":"X.Y","requestId":3,"type":"unsolicited","version":"2.0"}}`, "xfs4iot: malformed message: unsolicited X.Y with request ID 3"},
		{`{"header":{"name":"X.Y","requestId":3,"type":"command","version":"2.0"}}`, `xfs4iot: malformed message: type "command" from a service`},
		{`{"header":{"name":"X.Y","requestId":3,"type":"event"}}`, "xfs4iot: malformed message: X.Y has no version"},
		{`{"header":{"requestId":3,"type":"event","version":"2.0"}}`, "xfs4iot: malformed message: no name"},
		{`{"header":{"name":"X.Y","requestId":3,"type":"event","version":"2.0","status":"ok"}}`, "xfs4iot: malformed message: status in a event"},
		{`{"header":{"name":"X.Y","requestId":3,"type":"event","version":"2.0"},"payload":[1]}`, "xfs4iot: malformed message: X.Y payload is not an object"},
		{`{"header":{"name":"X.Y","requestId":3,"type":"event","version":"2.0","extra":1}}`, `xfs4iot: malformed message: json: unknown field "extra"`},
		{`{"header":{"name":"X.Y","requestId":3,"type":"event","version":"2.0"}} {}`, "xfs4iot: malformed message: data after the message"},
		{`{"header":{"name":"X.Y","requestId":"3","type":"event","version":"2.0"}}`, "xfs4iot: malformed message: json: cannot unmarshal string into Go struct field Header.header.requestId of type int64"},
	} {
		_, err := ParseMessage([]byte(tc.in))
		got := ""
		if err != nil {
			got = err.Error()
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: %v is not ErrMalformed", tc.in, err)
			}
		}
		if got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseMessage: no input panics, and an accepted message encodes back
// to one that parses the same.
func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`{"header":{"name":"CashDispenser.Dispense","requestId":7,"type":"completion","version":"2.0","completionCode":"commandErrorCode","errorDescription":"x"},"payload":{"errorCode":"notDispensable"}}`))
	f.Add([]byte(`{"header":{"name":"CashManagement.ItemsTakenEvent","type":"unsolicited","version":"2.0"},"payload":{"position":"outDefault"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseMessage(again)
		if err != nil || m2.Header != m.Header && !sameHeader(m.Header, m2.Header) {
			t.Fatalf("re-encoded %s: %+v, %v", again, m2, err)
		}
	})
}

func sameHeader(a, b Header) bool {
	eq := func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqi := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Name == b.Name && a.RequestID == b.RequestID && a.Type == b.Type && a.Version == b.Version &&
		eqi(a.Timeout, b.Timeout) && eq(a.Status, b.Status) && a.CompletionCode == b.CompletionCode && a.ErrorDescription == b.ErrorDescription
}
