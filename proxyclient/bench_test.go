package proxyclient_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"github.com/moov-io/iso8583-connection/server"

	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
)

// benchMessage is a realistic dispense command: QR payload, customer ID
// and PIN block.
func benchMessage(b *testing.B, stan int) *iso8583.Message {
	m, err := wire.Build(&wire.Withdrawal{MTI: "0200", ProcessingCode: wire.ProcCashWithdrawal,
		Amount: wire.FormatAmount(50000), TransmissionDateTime: "0101120000", STAN: wire.FormatSTAN(uint32(stan)),
		LocalTime: "120000", LocalDate: "0101", TerminalID: "ATM1", TerminalLocation: "Bench Branch", Currency: "156",
		PINBlock:   []byte{1, 2, 3, 4, 5, 6, 7, 8},
		QRPayload:  "CLW1:ATM1:50000:156:0123456789ABCDEF0123456789ABCDEF:1893456000:0123456789ABCDEF",
		CustomerID: "CUSTOMER-000123"})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// plainCodec is wire.Codec without protection: the same Framer (2-byte
// length, the whole frame in one Write) around a plain Pack and Unpack on
// wire.Spec. Against wire.Codec it differs only by the MAC, field 96 and
// the encryption, so it is the like-for-like baseline of "protected".
type plainCodec struct{ framer wire.Framer }

func (c plainCodec) ReadMessage(r io.Reader) (*iso8583.Message, error) {
	raw, err := c.framer.ReadFrame(r)
	if err != nil {
		return nil, err
	}
	m := iso8583.NewMessage(wire.Spec)
	if err := m.Unpack(raw); err != nil {
		return nil, err
	}
	return m, nil
}

func (c plainCodec) WriteMessage(w io.Writer, m *iso8583.Message) error {
	raw, err := m.Pack()
	if err != nil {
		return err
	}
	frame, err := c.framer.AppendFrame(make([]byte, 0, 2+len(raw)), raw)
	if err != nil {
		return err
	}
	_, err = w.Write(frame)
	return err
}

func plainLenReader(r io.Reader) (int, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, err
	}
	return int(binary.BigEndian.Uint16(h[:])), nil
}

func plainLenWriter(w io.Writer, n int) (int, error) {
	return w.Write(binary.BigEndian.AppendUint16(nil, uint16(n)))
}

// echoReply answers a 0200 with a 0210 carrying the same fields.
func echoReply(c *connection.Connection, m *iso8583.Message) {
	m.MTI("0210")
	_ = m.Field(wire.FieldResponseCode, "00")
	m.UnsetField(wire.FieldMACKeyKCV)
	m.UnsetField(wire.FieldMAC128)
	_ = c.Reply(m)
}

func runRoundTrips(b *testing.B, srvOpts, cliOpts []connection.Option, mlr connection.MessageLengthReader, mlw connection.MessageLengthWriter) {
	srv := server.New(wire.Spec, mlr, mlw, append(srvOpts, connection.InboundMessageHandler(echoReply))...)
	if mlr == nil {
		_ = srv.SetOptions(server.WithConnectionFactory(func(nc net.Conn) (*connection.Connection, error) {
			return connection.NewFrom(nc, wire.Spec, nil, nil, append(srvOpts, connection.InboundMessageHandler(echoReply))...)
		}))
	}
	if err := srv.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	c, err := connection.New(srv.Addr, wire.Spec, mlr, mlw, append(cliOpts, connection.SendTimeout(10*time.Second))...)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Connect(); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msgs := make([]*iso8583.Message, 1000)
	for i := range msgs {
		msgs[i] = benchMessage(b, i+1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := c.Send(msgs[i%len(msgs)])
		if err != nil {
			b.Fatal(err)
		}
		if rc, _ := resp.GetString(wire.FieldResponseCode); rc != "00" {
			b.Fatal("bad answer")
		}
	}
}

// BenchmarkRoundTrip compares a protected round trip (wire.Codec: MAC,
// encryption of fields 62 and 120, verification and decryption on both
// ends) with plain round trips of the same message, all over loopback TCP
// with iso8583-connection and the same echoing server:
//
//   - plain: the library's own framing (2-byte length written by a
//     MessageLengthWriter, then the packed message: two Writes per message);
//   - plain-framed: plainCodec, the same framing and I/O as wire.Codec
//     (one Write per message) with no protection. This is the like-for-like
//     baseline: protected minus plain-framed is the cost of protection.
func BenchmarkRoundTrip(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		runRoundTrips(b, nil, nil, plainLenReader, plainLenWriter)
	})
	b.Run("plain-framed", func(b *testing.B) {
		codec := func() []connection.Option {
			c := plainCodec{}
			return []connection.Option{connection.SetMessageReader(c), connection.SetMessageWriter(c)}
		}
		runRoundTrips(b, codec(), codec(), nil, nil)
	})
	b.Run("protected", func(b *testing.B) {
		mod := hsm.NewSoft()
		defer mod.Close()
		runProtected(b, mod)
	})
	for _, m := range benchModules {
		b.Run("protected-"+m.name, func(b *testing.B) { runProtected(b, m.open(b)) })
	}
}

// benchModules are further security modules to run the protected round
// trip with (keys in SoftHSM2 where the build has cgo).
var benchModules []struct {
	name string
	open func(b *testing.B) benchModule
}

type benchModule interface {
	hsm.Module
	hsm.ClearKeyImporter
}

// runProtected runs protected round trips with the keys in mod.
func runProtected(b *testing.B, mod benchModule) {
	for _, n := range []hsm.KeyName{"tak", "tek", "tmk.mac"} {
		k := make([]byte, 16)
		for i := range k {
			k[i] = byte(len(n)*31 + i*7)
		}
		hsm.AdjustParity(k)
		if _, err := mod.ImportClearKey(n, k); err != nil {
			b.Fatal(err)
		}
	}
	ks := wire.KeySet{NetMgmtMAC: "tmk.mac", MAC: "tak", Data: "tek"}
	codec := func() []connection.Option {
		c := &wire.Codec{Protector: wire.NewProtector(mod, ks),
			OnReject: func(mti, stan string, err error) { panic(fmt.Sprint("rejected: ", err)) }}
		return []connection.Option{connection.SetMessageReader(c), connection.SetMessageWriter(c)}
	}
	runRoundTrips(b, codec(), codec(), nil, nil)
}
