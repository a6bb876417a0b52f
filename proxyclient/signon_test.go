package proxyclient_test

import (
	"encoding/hex"
	"net"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/proxyclient"
)

// attacker holds what a wiretap on the ATM's link gives: messages the
// terminal MAC'd with its network-management key, replayed byte for byte
// (the test makes them with that key, as the terminal did), and nothing
// else: it cannot MAC a message it has not seen.
type attacker struct {
	t     *testing.T
	conn  net.Conn
	codec *wire.Codec
}

func dialAttacker(t *testing.T, e *env) *attacker {
	t.Helper()
	m := hsm.NewSoft()
	t.Cleanup(func() { m.Close() })
	k, _ := hex.DecodeString(e.tmk)
	if _, err := m.ImportClearKey(hsm.TMK, k); err != nil {
		t.Fatal(err)
	}
	if err := m.DeriveVariant(hsm.TMK, proxyclient.NetMgmtKey, wire.NetMgmtVariant); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", e.proxy.ATMAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // a watchdog, not a wait
	return &attacker{t: t, conn: c, codec: &wire.Codec{Protector: wire.NewProtector(m, wire.KeySet{NetMgmtMAC: proxyclient.NetMgmtKey})}}
}

// replay sends a recorded 0800 with code and challenge and returns the answer.
func (a *attacker) replay(stan, code, challenge string) wire.NetMgmt {
	a.t.Helper()
	m, err := wire.Build(&wire.NetMgmt{MTI: wire.MTINetMgmtRequest, TransmissionDateTime: wire.FormatTransmissionDT(time.Now()),
		STAN: stan, TerminalID: "ATM1", NetMgmtCode: code, Challenge: challenge})
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.codec.WriteMessage(a.conn, m); err != nil {
		a.t.Fatal(err)
	}
	var resp *iso8583.Message
	for resp == nil { // the codec skips what it refuses
		if resp, err = a.codec.ReadMessage(a.conn); err != nil {
			a.t.Fatalf("reading the answer to %s: %v", code, err)
		}
	}
	var nm wire.NetMgmt
	if err := wire.Parse(resp, &nm); err != nil {
		a.t.Fatal(err)
	}
	return nm
}

// TestReplayedSignOnTakesNothingOver: a sign-on recorded off the wire and
// replayed from another connection gets its 0810 (with keys the replayer
// cannot decrypt and a challenge it cannot answer), but the terminal's
// working link stays up and keeps receiving the commands; a replayed
// confirmation with another challenge is refused with 63 and the
// replayer's connection closed.
func TestReplayedSignOnTakesNothingOver(t *testing.T) {
	e := newEnv(t)
	a := startATM(t, e.proxy.ATMAddr(), "ATM1", e.tmk, nil)
	waitFor(t, "sign-on", signedOn(a))

	evil := dialAttacker(t, e)
	ans := evil.replay("000001", wire.NetSignOn, "")
	// The terminal's link still carries the commands.
	if out := withdraw(t, e, 10000); !out.PaidInFull() {
		t.Fatalf("withdrawal while a replayed sign-on is pending: %+v", out)
	}
	if n := len(a.h.calls()); n != 1 {
		t.Fatalf("the terminal got %d commands, want 1", n)
	}
	if ans.ResponseCode != wire.RCApproved || !wire.ValidChallenge(ans.Challenge) {
		t.Fatalf("0810 to the replayed sign-on: rc %q challenge %q", ans.ResponseCode, ans.Challenge)
	}
	// A confirmation recorded earlier carries an older challenge.
	if ans := evil.replay("000002", wire.NetEcho, "0123456789ABCDEF"); ans.ResponseCode != wire.RCSecurityViolation {
		t.Fatalf("replayed confirmation answered %q, want 63", ans.ResponseCode)
	}
	if _, err := evil.codec.ReadMessage(evil.conn); err == nil {
		t.Fatal("the proxy kept the replayer's connection open")
	}
	if out := withdraw(t, e, 10000); !out.PaidInFull() {
		t.Fatalf("withdrawal after the replay: %+v", out)
	}
	if st := a.c.Status(); st.SignOns != 1 {
		t.Fatalf("the terminal signed on %d times: its link was taken over", st.SignOns)
	}
	if st := e.proxy.Stats(); st.SignOns != 1 {
		t.Fatalf("proxy counted %d sign-ons, want the terminal's one", st.SignOns)
	}
}
