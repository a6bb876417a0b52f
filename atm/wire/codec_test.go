package wire

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	connection "github.com/moov-io/iso8583-connection"
	iso8583errors "github.com/moov-io/iso8583/errors"
)

type rejection struct {
	mti, stan string
	err       error
}

// TestCodecOverTCP runs iso8583-connection's client against a loopback
// server that uses the same Codec by hand.
func TestCodecOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	framer := Framer{TPDU: testTPDU}
	serverP := NewProtector(newModule(t), gen1)
	server := &Codec{Framer: framer, Protector: serverP}
	serverDone := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			serverDone <- err
			return
		}
		defer conn.Close()
		for i := 0; ; i++ {
			req, err := server.ReadMessage(conn)
			if err != nil || req == nil {
				serverDone <- err
				return
			}
			var nm NetMgmt
			if err := Parse(req, &nm); err != nil {
				serverDone <- err
				return
			}
			if nm.NetMgmtCode == NetSignOff {
				// Break the stream: a length header above MaxSize.
				conn.Write([]byte{0xFF, 0xFF})
				serverDone <- nil
				return
			}
			resp := mustBuild(t, &NetMgmt{MTI: MTINetMgmtResponse, TransmissionDateTime: nm.TransmissionDateTime, STAN: nm.STAN,
				ResponseCode: RCApproved, TerminalID: nm.TerminalID, NetMgmtCode: nm.NetMgmtCode})
			if i == 0 {
				// First a forged answer (bad MAC), then the real one.
				raw, _ := serverP.Seal(resp)
				raw[len(raw)-1] ^= 1
				framer.WriteFrame(conn, raw)
			}
			if err := server.WriteMessage(conn, resp); err != nil {
				serverDone <- err
				return
			}
		}
	}()

	rejects := make(chan rejection, 4)
	closed := make(chan struct{})
	client := &Codec{Framer: framer, Protector: NewProtector(newModule(t), gen1),
		OnReject: func(mti, stan string, err error) { rejects <- rejection{mti, stan, err} }}
	c, err := connection.New(ln.Addr().String(), Spec, nil, nil,
		connection.SetMessageReader(client), connection.SetMessageWriter(client),
		connection.SendTimeout(10*time.Second),
		connection.ConnectionClosedHandler(func(*connection.Connection) { close(closed) }),
		connection.ErrorHandler(func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	send := func(stan, code string) *NetMgmt {
		t.Helper()
		resp, err := c.Send(mustBuild(t, &NetMgmt{MTI: MTINetMgmtRequest, TransmissionDateTime: "1121063015", STAN: stan, TerminalID: "ATM00001", NetMgmtCode: code}))
		if err != nil {
			t.Fatalf("send %s: %v", code, err)
		}
		var nm NetMgmt
		if err := Parse(resp, &nm); err != nil {
			t.Fatal(err)
		}
		return &nm
	}
	if nm := send("000001", NetSignOn); nm.ResponseCode != RCApproved || nm.STAN != "000001" {
		t.Fatalf("sign-on answer %+v", nm)
	}
	r := <-rejects
	if r.mti != MTINetMgmtResponse || r.stan != "000001" || !errors.Is(r.err, ErrMAC) {
		t.Fatalf("rejection %+v", r)
	}
	// The link survived the forged message.
	if nm := send("000002", NetEcho); nm.ResponseCode != RCApproved {
		t.Fatalf("echo answer %+v", nm)
	}

	// A message that cannot be sealed is a PackError for the sender only.
	bad := mustBuild(t, &Withdrawal{MTI: MTIFinancialRequest, STAN: "000003", CustomerID: strings.Repeat("x", MaxEncryptedPlain+1)})
	_, err = c.Send(bad)
	var pe *iso8583errors.PackError
	if !errors.As(err, &pe) || !errors.Is(err, ErrFieldTooLong) {
		t.Fatalf("unsealable message: %v", err)
	}
	if nm := send("000004", NetEcho); nm.ResponseCode != RCApproved {
		t.Fatalf("echo after pack error %+v", nm)
	}

	// A framing error closes the connection.
	go c.Send(mustBuild(t, &NetMgmt{MTI: MTINetMgmtRequest, TransmissionDateTime: "1121063015", STAN: "000005", TerminalID: "ATM00001", NetMgmtCode: NetSignOff}))
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("connection not closed after a framing error")
	}
	if err := <-serverDone; err != nil {
		t.Fatal(err)
	}
	if len(rejects) != 0 {
		t.Fatalf("unexpected rejections: %d", len(rejects))
	}
}
