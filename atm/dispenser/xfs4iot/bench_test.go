package xfs4iot

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// The benchmarks compare one CashDispenser.Dispense command round trip
// through the driver's connection (marshal, send, acknowledge, completion,
// strict parse and dispatch) with a plain WebSocket exchange of the same
// bytes: the client writes the command and reads two messages, which the
// server writes back as soon as it has read the command. The goal is at
// most 1.5 times the plain exchange (docs/performance.md).

const (
	benchAck  = `{"header":{"name":"CashDispenser.Dispense","requestId":%d,"type":"acknowledge","version":"2.0"},"payload":null}`
	benchDone = `{"header":{"name":"CashDispenser.Dispense","requestId":%d,"type":"completion","version":"2.0","completionCode":"success"},"payload":{"denomination":{"currencies":{"CNY":250.00},"values":{"unit1":2,"unit2":1}}}}`
)

var benchPayload = func() dispenseCommand {
	var p dispenseCommand
	p.Position = position
	p.Token = "NONCE=254611E63B2531576314E86527338D61,TOKENFORMAT=1,TOKENLENGTH=0165,DISPENSE1=250.00CNY,HMACSHA256=99A437DCF19F3D041BF6F632227D5248E299A5B9376BEAA3608BD0D8E7136002"
	p.Denomination.Denomination.App.Counts = map[string]int{"unit1": 2, "unit2": 1}
	p.Denomination.Denomination.App.Currencies = map[string]json.Number{"CNY": "250.00"}
	return p
}()

// answerServer answers every message with an acknowledge and a completion
// carrying its request ID (read from a fixed place: the benchmark's
// commands all start the same way).
func answerServer(b *testing.B, echo bool) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx := context.Background()
		n := 0
		for {
			_, msg, err := ws.Read(ctx)
			if err != nil {
				return
			}
			n++
			id := itoa(n)
			ack, done := strings.ReplaceAll(benchAck, "%d", id), strings.ReplaceAll(benchDone, "%d", id)
			if echo {
				_ = msg // the plain exchange: the same answer bytes, nothing parsed
			}
			if ws.Write(ctx, websocket.MessageText, []byte(ack)) != nil || ws.Write(ctx, websocket.MessageText, []byte(done)) != nil {
				return
			}
		}
	}))
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for n > 0 || i == len(b) {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

func wsURL(s *httptest.Server) string { return "ws" + strings.TrimPrefix(s.URL, "http") }

// BenchmarkDispenseRoundTrip: the driver's connection.
func BenchmarkDispenseRoundTrip(b *testing.B) {
	srv := answerServer(b, false)
	defer srv.Close()
	ctx := context.Background()
	c, err := dial(ctx, wsURL(srv), nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.close(nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.do(ctx, "CashDispenser.Dispense", benchPayload, 60000, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlainWebSocketExchange: the same bytes over a bare connection.
func BenchmarkPlainWebSocketExchange(b *testing.B) {
	srv := answerServer(b, true)
	defer srv.Close()
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, wsURL(srv), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.CloseNow()
	cmd := []byte(`{"header":{"name":"CashDispenser.Dispense","requestId":1,"type":"command","version":"2.0","timeout":60000},"payload":{"denomination":{"denomination":{"app":{"currencies":{"CNY":250.00},"counts":{"unit1":2,"unit2":1}}}},"position":"outDefault","token":"NONCE=254611E63B2531576314E86527338D61,TOKENFORMAT=1,TOKENLENGTH=0165,DISPENSE1=250.00CNY,HMACSHA256=99A437DCF19F3D041BF6F632227D5248E299A5B9376BEAA3608BD0D8E7136002"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := ws.Write(ctx, websocket.MessageText, cmd); err != nil {
			b.Fatal(err)
		}
		for range 2 {
			if _, _, err := ws.Read(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}
