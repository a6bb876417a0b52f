package xfs4iotsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
)

// A tiny XFS4IoT test client working at the raw JSON level.

var testKey = []byte("0123456789abcdef0123456789abcdef")

const takeDelay = 5 * time.Second

func testUnits() []dispenser.CashUnit {
	return []dispenser.CashUnit{
		{ID: "unit1", Denomination: 10000, Currency: "CNY", Count: 50},
		{ID: "unit2", Denomination: 5000, Currency: "CNY", Count: 12},
	}
}

type rig struct {
	t     *testing.T
	srv   *Server
	fake  *clock.Fake
	state string
}

func newRig(t *testing.T, mod func(*Config)) *rig {
	t.Helper()
	fake := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	state := filepath.Join(t.TempDir(), "state.json")
	cfg := Config{Addr: "127.0.0.1:0", Units: testUnits(), MaxNotes: 40, LowThreshold: 10, TokenKey: testKey,
		Exponent: 2, TakeDelay: takeDelay, StateFile: state, Clock: fake}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, srv: srv, fake: fake, state: state}
	t.Cleanup(func() { r.srv.Close() })
	return r
}

type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func dial(t *testing.T, url string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return &client{t: t, ws: ws}
}

func (r *rig) service() *client { return dial(r.t, r.srv.ServiceURL()) }

func (c *client) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// msg is a received message, decoded.
type msg struct {
	raw     []byte
	Header  Header          `json:"header"`
	Payload json.RawMessage `json:"payload"`
}

func (m msg) String() string { return m.Header.Type + " " + m.Header.Name }

func (c *client) recv() (msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return msg{}, err
	}
	var m msg
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // the simulator must send only what the contract names
	if err := dec.Decode(&m); err != nil {
		c.t.Fatalf("undecodable message %s: %v", b, err)
	}
	m.raw = b
	return m, nil
}

func (c *client) mustRecv() msg {
	c.t.Helper()
	m, err := c.recv()
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// command sends a command and returns every message up to and including
// its completion (at most 20).
func (c *client) command(name string, id int, payload string) []msg {
	c.t.Helper()
	if payload == "" {
		payload = "null"
	}
	c.sendRaw(fmt.Sprintf(`{"header":{"name":%q,"requestId":%d,"type":"command","version":"2.0"},"payload":%s}`, name, id, payload))
	return c.until(id)
}

func (c *client) until(id int) []msg {
	c.t.Helper()
	var out []msg
	for range 20 {
		m := c.mustRecv()
		out = append(out, m)
		if m.Header.Type == TypeCompletion && m.Header.RequestID != nil && *m.Header.RequestID == int64(id) {
			return out
		}
	}
	c.t.Fatalf("no completion for %d in %v", id, out)
	return nil
}

// kinds lists "type name" of each message.
func kinds(ms []msg) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}

func wantKinds(t *testing.T, ms []msg, want ...string) {
	t.Helper()
	if got := kinds(ms); !reflect.DeepEqual(got, want) {
		t.Fatalf("messages\n%q\nwant\n%q\nraw: %s", got, want, rawList(ms))
	}
}

func rawList(ms []msg) string {
	var b strings.Builder
	for _, m := range ms {
		b.Write(m.raw)
		b.WriteByte('\n')
	}
	return b.String()
}

// jsonEqual compares JSON texts semantically.
func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("bad JSON %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad wanted JSON %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func last(ms []msg) msg { return ms[len(ms)-1] }

// completion checks the last message is the completion with code and, if
// payload != "", that payload.
func completion(t *testing.T, ms []msg, code, payload string) msg {
	t.Helper()
	m := last(ms)
	if m.Header.Type != TypeCompletion || m.Header.CompletionCode != code {
		t.Fatalf("completion %s, want code %s\n%s", m.raw, code, rawList(ms))
	}
	if payload != "" {
		jsonEqual(t, m.Payload, payload)
	}
	return m
}

func (c *client) nonce(id int) string {
	c.t.Helper()
	ms := c.command("Common.GetCommandNonce", id, "")
	m := completion(c.t, ms, "success", "")
	var p struct {
		CommandNonce string `json:"commandNonce"`
	}
	json.Unmarshal(m.Payload, &p)
	if len(p.CommandNonce) != 32 {
		c.t.Fatalf("nonce %q", p.CommandNonce)
	}
	return p.CommandNonce
}

func signToken(t *testing.T, nonce string, amount int64) string {
	t.Helper()
	tok, err := dispenser.BuildToken(nonce, amount, "CNY", 2, dispenser.HMACSHA256(testKey))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func dispenseJSON(counts string, amount string, token string) string {
	return fmt.Sprintf(`{"denomination":{"denomination":{"app":{"currencies":{"CNY":%s},"counts":%s}}},"position":"outDefault","token":%q}`, amount, counts, token)
}

func counters(s *Server) map[string]dispensersim.UnitCounters {
	m := map[string]dispensersim.UnitCounters{}
	for _, c := range s.Counters() {
		m[c.ID] = c
	}
	return m
}

// waitArmed waits until the fake clock has a timer armed after ch was taken.
func waitArmed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no timer armed")
	}
}
