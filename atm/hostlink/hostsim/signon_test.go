package hostsim_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/cardless-atm/cardless/atm/hostlink"
	"github.com/cardless-atm/cardless/atm/hostlink/internal/linktest"
	"github.com/cardless-atm/cardless/atm/wire"
)

// replayer holds messages recorded off the host link (the test MACs them
// with the terminal's keys, as the terminal did) and sends them from a
// connection of its own; it cannot MAC anything it has not seen.
type replayer struct {
	t     *testing.T
	conn  net.Conn
	codec *wire.Codec
}

func dialReplayer(t *testing.T, f *linktest.Fixture) *replayer {
	t.Helper()
	c, err := net.Dial("tcp", f.Host.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // a watchdog, not a wait
	return &replayer{t: t, conn: c, codec: &wire.Codec{Protector: wire.NewProtector(linktest.ATMModule(t, f.Keys), hostlink.Keys)}}
}

func (r *replayer) send(v any) {
	r.t.Helper()
	m, err := wire.Build(v)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.codec.WriteMessage(r.conn, m); err != nil {
		r.t.Fatal(err)
	}
}

func (r *replayer) read() (*iso8583.Message, error) {
	for {
		m, err := r.codec.ReadMessage(r.conn)
		if err != nil || m != nil {
			return m, err
		}
	}
}

func netMgmt(code, challenge string) *wire.NetMgmt {
	m := &wire.NetMgmt{MTI: wire.MTINetMgmtRequest, TransmissionDateTime: wire.FormatTransmissionDT(time.Now()),
		STAN: nextSTAN(), TerminalID: linktest.TerminalID, NetMgmtCode: code, Challenge: challenge}
	if code == wire.NetSignOn {
		m.AdditionalData = wire.Anchor{}.String() // as the terminal recorded it
	}
	return m
}

// TestReplayedSignOnServesNothing: a sign-on replayed from another
// connection is answered with a challenge the replayer cannot return; a
// financial message on that connection closes it unanswered, and so does
// a replayed confirmation carrying an older challenge (after 63).
func TestReplayedSignOnServesNothing(t *testing.T) {
	f, _ := setup(t) // the terminal's own link is up

	r := dialReplayer(t, f)
	r.send(netMgmt(wire.NetSignOn, ""))
	m, err := r.read()
	if err != nil {
		t.Fatal(err)
	}
	var ans wire.NetMgmt
	if err := wire.Parse(m, &ans); err != nil || ans.ResponseCode != wire.RCApproved || !wire.ValidChallenge(ans.Challenge) {
		t.Fatalf("answer to the replayed sign-on: %+v %v", ans, err)
	}
	r.send(&wire.Withdrawal{MTI: wire.MTIFinancialRequest, ProcessingCode: wire.ProcCashWithdrawal, Amount: "000000010000",
		TransmissionDateTime: wire.FormatTransmissionDT(time.Now()), STAN: nextSTAN(), TerminalID: linktest.TerminalID, Currency: "156"})
	if m, err := r.read(); err == nil {
		t.Fatalf("the host answered a financial message on an unconfirmed connection: %s", wire.MTI(m))
	}

	r = dialReplayer(t, f)
	r.send(netMgmt(wire.NetSignOn, ""))
	if _, err := r.read(); err != nil {
		t.Fatal(err)
	}
	r.send(netMgmt(wire.NetEcho, "0123456789ABCDEF"))
	m, err = r.read()
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := m.GetString(wire.FieldResponseCode); rc != wire.RCSecurityViolation {
		t.Fatalf("replayed confirmation answered %q, want 63", rc)
	}
	if _, err := r.read(); err == nil {
		t.Fatal("the host kept the replayer's connection open")
	}
}

// TestRolledBackStoreRefusedAtSignOn: the host records the journal
// sequence a terminal reports at sign-on; a later sign-on reporting less
// (the ATM's store put back to an older copy) is refused with 63 and the
// client says why (ErrRollback), and a sign-on at or past the record goes
// through.
func TestRolledBackStoreRefusedAtSignOn(t *testing.T) {
	f := linktest.NewFixture(t)
	f.JournalSeq.Store(120)
	linktest.Start(t, f.ClientConfig(t), true) // records 120

	f.JournalSeq.Store(80) // an older copy of the store
	cfg := f.ClientConfig(t)
	c, err := hostlink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	defer c.Close()
	linktest.WaitFor(t, "the refusal in the client's log", func() bool {
		return strings.Contains(f.ATMLog.String(), "ALARM the host refused the sign-on")
	})
	if c.Connected() {
		t.Fatal("a rolled-back store signed on")
	}

	f.JournalSeq.Store(121)
	c2 := linktest.Start(t, f.ClientConfig(t), true)

	// The host's other half of the anchor: the last STAN it received. A
	// store whose journal is ahead but whose STAN counter is behind it was
	// put back too (the journal can be forged ahead, the host's STANs not).
	r := req(t, f, "C-ALICE", "1234", 10000)
	r.STAN = "000050"
	authorize(t, c2, r)
	f.JournalSeq.Store(500)
	f.LastSTAN.Store(40)
	before := strings.Count(f.ATMLog.String(), "ALARM the host refused the sign-on")
	c3, err := hostlink.New(f.ClientConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	go c3.Run(ctx)
	defer c3.Close()
	linktest.WaitFor(t, "the refusal of a STAN behind the host's", func() bool {
		return strings.Count(f.ATMLog.String(), "ALARM the host refused the sign-on") > before
	})
	f.LastSTAN.Store(50)
	linktest.Start(t, f.ClientConfig(t), true)
}
